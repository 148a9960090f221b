"""The reader interface: what every kind of source provides, and how one is chosen.

A :class:`Reader` describes its source (:meth:`Reader.probe` ->
:class:`VideoInfo`) and reads any range of frames (:meth:`Reader.read`) on a
worker; :meth:`Reader.frames` turns that into a lazy Dask array, one task per
time chunk.  Readers hold only what pickles (a path and options, never an
open file), because they travel to the workers inside the graph.

A new kind of source subclasses :class:`Reader`, implements
:meth:`~Reader.accepts`, :meth:`~Reader.probe` and :meth:`~Reader.read`
(and :meth:`~Reader.frames` if the source is already chunked, like Zarr), and
is registered with :func:`register_reader`; :func:`daskmag.open_video`,
``daskmag info``, ``ingest`` and ``magnify`` then read it without any other
change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import dask
import dask.array as da
import numpy as np

from ..errors import UserError
from ..settings import ON_CORRUPT

#: Playback rate of footage that records only its recording rate (raw
#: camera files, image sequences): one players show.
DEFAULT_PLAYBACK_FPS = Fraction(30)

#: Target size of one chunk of decoded frames (whole frames along time).
CHUNK_BYTES = 64 * 2**20


@dataclass(frozen=True)
class VideoInfo:
    """What a reader learns of its source before any frame is decoded.

    Attributes
    ----------
    path : str
    n_frames : int
        Frames the source presents, in order.
    height, width : int
        Frame size in pixels.
    fps : Fraction
        Rate of the source's own time line, frames per second: the stored
        rate of a video file, the recording rate of a camera file; 0 where
        the source records none (an image sequence: ``--fps`` gives it).
    codec : str
        Codec or storage of the frames.
    kind : str
        The reader that handles it (``"file"`` for FFmpeg, ``"zarr"``).
    variable_frame_rate : bool
        The stored timestamps are not evenly spaced.
    stored_frames : int, optional
        Frames stored in the source, when it differs from ``n_frames``.
    dtype : str
        NumPy dtype of the frames as read (``"uint8"``).
    channels : int
        Samples per pixel as read (3: RGB).
    bits : int
        Significant bits per sample of the source (8 for 8-bit video).
    timing : str
        How the stream is timed, decided by the probe before any work:
        ``"constant"``, ``"variable"``, ``"coarse"`` (a timestamp clock
        coarser than the frames), ``"restart"`` (timestamps restart or jump
        back), ``"none"`` (no timestamps); see :mod:`daskmag.io.ffmpeg`.
    timing_note : str
        One line on the timing and the rule applied (empty when constant).
    timing_rule : {"keep", "resample"}
        The rule asked for a variable rate (``--timing``).
    stream : int
        The video stream read (0 = the first).
    streams : tuple of str
        Every video stream of the source, one line each.
    rotation : int
        Clockwise degrees (0, 90, 180, 270) applied to show frames upright
        (the source's display matrix); ``height``/``width`` are upright.
    sample_aspect_ratio : Fraction, optional
        Pixel aspect ratio when it is not square.
    pixel_format : str
        The decoder's pixel format (``"yuv420p"``, ``"gray16le"``).
    significant_bits : int
        Bits the data uses (12 for 12-bit data in 16-bit words, measured on
        the first frame); such data is scaled by its real range when read.
    playback_fps : Fraction, optional
        The rate an output plays at by default, where it differs from
        ``fps``: raw camera footage plays at :data:`DEFAULT_PLAYBACK_FPS`.
    """

    path: str
    n_frames: int
    height: int
    width: int
    fps: Fraction
    codec: str
    kind: str = "file"
    variable_frame_rate: bool = False
    stored_frames: int | None = None
    dtype: str = "uint8"
    channels: int = 3
    bits: int = 8
    timing: str = "constant"
    timing_note: str = ""
    timing_rule: str = "keep"
    stream: int = 0
    streams: tuple = ()
    rotation: int = 0
    sample_aspect_ratio: Fraction | None = None
    pixel_format: str = ""
    significant_bits: int = 8
    playback_fps: Fraction | None = None

    @property
    def playback_rate(self) -> Fraction:
        """The rate an output plays at unless ``--playback-fps`` is given."""
        return Fraction(self.playback_fps) if self.playback_fps else Fraction(self.fps)

    @property
    def duration(self) -> float:
        """Length in seconds at the stored frame rate."""
        return float(self.n_frames / self.fps) if self.fps else float("nan")

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """``(n_frames, height, width, channels)`` as read."""
        return (self.n_frames, self.height, self.width, self.channels)

    def describe(self) -> str:
        """Human-readable summary (``daskmag info``)."""
        lines = [
            f"path:      {self.path}",
            f"kind:      {self.kind}",
            f"frames:    {self.n_frames}",
            f"size:      {self.width}x{self.height}",
            (f"fps:       {float(self.fps):.6g} ({self.fps.numerator}/{self.fps.denominator})"
             + (" recording rate" if self.playback_fps else "")
             if self.fps else "fps:       not recorded (give the recording rate with --fps)"),
            f"playback:  {float(self.playback_rate):.6g} fps" + ("" if self.playback_rate else " (as --fps)"),
            (f"duration:  {self.duration:.3f} s" if self.fps else "duration:  unknown (no recording rate)"),
            f"codec:     {self.codec}",
            f"samples:   {'mono' if self.channels == 1 else 'RGB'} ({self.channels} x {self.dtype}), "
            f"{self.bits}-bit",
        ]
        lines.append(f"timing:    {self.timing}" + (f": {self.timing_note}" if self.timing_note else
                                                       ": every stored frame once, in order"))
        if self.variable_frame_rate and self.stored_frames is not None:
            lines.append(f"stored:    {self.stored_frames} frames (variable frame rate)")
        if len(self.streams) > 1:
            lines.append(f"streams:   {len(self.streams)} video streams; reading {self.stream} (--stream N)")
            lines.extend(f"           {line}" for line in self.streams)
        if self.rotation:
            lines.append(f"rotation:  {self.rotation} degrees clockwise, applied (frames are read upright)")
        if self.sample_aspect_ratio is not None:
            sar = self.sample_aspect_ratio
            lines.append(f"pixels:    aspect ratio {sar.numerator}:{sar.denominator} (not square)")
        if self.bits > 8 and self.pixel_format:
            full = self.dtype != "uint8"
            lines.append(f"depth:     {self.bits}-bit {self.pixel_format}"
                         + (f", data in the low {self.significant_bits} bits"
                            if 8 <= self.significant_bits < self.bits else "")
                         + ("; processed at full depth" if full else "; processed at 8 bits"))
        return "\n".join(lines)


@dataclass
class Video:
    """A lazily read video: ``frames`` (T, H, W, C) Dask array and its ``fps``.

    ``C`` is 3 (RGB) or 1 (mono), the dtype uint8 or uint16, as ``info`` says.

    Unpacks as ``frames, fps = open_video(path)``.
    """

    frames: da.Array
    fps: Fraction
    info: VideoInfo = field(repr=False)

    def __iter__(self):
        return iter((self.frames, self.fps))


def reason(exc: Exception) -> str:
    """The first line of an exception's message, for a one-line error."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


def file_stamp(path) -> tuple[int, int]:
    """(size, modification time in ns) of a file."""
    stat = Path(path).stat()
    return stat.st_size, stat.st_mtime_ns


def default_chunk_frames(height: int, width: int, channels: int = 3, itemsize: int = 1) -> int:
    """Frames per chunk so that one chunk of frames is about :data:`CHUNK_BYTES`."""
    return max(1, CHUNK_BYTES // (height * width * channels * itemsize))


def read_bounds(first: int, stop: int, chunk_frames: int, keys=None, longest: int | None = None) -> list[int]:
    """Where the read tasks of frames ``[first, stop)`` begin and end.

    About ``chunk_frames`` each.  Where the source has key frames (``keys``,
    sorted frame numbers), a task starts on the one nearest its regular
    start, within half a chunk before it and three chunks after it: a task
    seeks to the key frame before its first frame and decodes from there,
    so an unaligned start decodes up to a whole group of pictures for
    nothing (1.8x the frames of 1080p FFV1, with its 12-frame groups, in
    10-frame tasks).  A clip that ends within four chunks is read in one.
    Without ``keys`` (every frame is a key frame): regular chunks.
    ``longest``: no task longer than this many frames (default four chunks).
    """
    import bisect

    if keys is None:  # any frame starts a read as cheaply as another
        return [*range(first, stop, chunk_frames), stop]
    keys = list(keys)
    longest = 4 * chunk_frames if longest is None else max(1, int(longest))
    bounds = [first]
    while bounds[-1] < stop:
        begin = bounds[-1]
        regular = begin + chunk_frames
        if regular >= stop:
            bounds.append(stop)
            break
        low, high = begin + max(1, min(chunk_frames // 2, longest)), begin + longest
        candidates = keys[bisect.bisect_left(keys, low):bisect.bisect_right(keys, min(high, stop - 1))]
        if stop <= high:
            candidates.append(stop)
        bounds.append(min(candidates, key=lambda k: (abs(k - regular), k)) if candidates else min(regular, high))
    return bounds


class Reader:
    """One kind of source: probe it, read any range of its frames.

    Parameters
    ----------
    path : Path
        Absolute path of the source (workers may run in another folder).
    on_corrupt : {"stop", "repeat"}
        What to do with a frame that cannot be decoded (where the source can
        tell): raise a :class:`UserError` naming it, or repeat the previous one.
    """

    #: Shown by ``daskmag info`` as the source's kind.
    kind = "?"
    #: Keyword options of the reader that :func:`reader_for` passes on (``stream``, ``timing``, ``fps``).
    options: tuple[str, ...] = ()
    #: Whether :meth:`accepts` may take a path that does not exist (a
    #: printf pattern or a glob naming many files).
    patterns = False

    def __init__(self, path: Path, on_corrupt: str = "stop"):
        if on_corrupt not in ON_CORRUPT:
            raise UserError(f"on_corrupt must be one of {', '.join(ON_CORRUPT)}, got {on_corrupt!r}")
        self.path = Path(path)
        self.on_corrupt = on_corrupt

    @classmethod
    def accepts(cls, path: Path) -> bool:
        """Whether this reader handles ``path`` (by name or content, cheaply)."""
        raise NotImplementedError

    def probe(self) -> VideoInfo:
        """Describe the source.

        Raises
        ------
        UserError
            The source is missing, unreadable or empty.
        """
        raise NotImplementedError

    def read(self, start: int, stop: int) -> np.ndarray:
        """Frames ``[start, stop)`` as a (stop - start, H, W, C) array (runs on a worker)."""
        raise NotImplementedError

    def token(self) -> tuple:
        """What identifies the source's content in graph keys (a changed file gets new keys)."""
        return (type(self).__name__, str(self.path), file_stamp(self.path), self.on_corrupt)

    def __dask_tokenize__(self):
        return self.token()

    def part(self, start: int, stop: int) -> Reader:
        """The reader a task that reads frames ``[start, stop)`` carries: this one by default.

        A reader holding a large index (a file list, a packet table) returns a
        copy with only that task's share of it, so the graph stays small
        whatever the footage's length.
        """
        return self

    def key_frames(self) -> list[int] | None:
        """Frame numbers where a read starts without decoding earlier frames
        (key frames), sorted; None where every frame is one (image
        sequences, raw camera files) or where reads never seek."""
        return None

    def frames(self, info: VideoInfo, first: int, stop: int, chunk_frames: int | None = None, *,
               key_aligned: bool = False, longest: int | None = None) -> da.Array:
        """Frames ``[first, stop)`` as a lazy Dask array, one :meth:`read` task per chunk.

        ``key_aligned``: chunks start on the source's key frames where they
        are near (:func:`read_bounds`, no chunk over ``longest`` frames), so
        chunks may differ in length; for magnification, whose staged graph
        takes them as its own chunks, not for a store whose chunks are the
        array's.
        """
        chunk_frames = chunk_frames or default_chunk_frames(info.height, info.width, info.channels,
                                                            np.dtype(info.dtype).itemsize)
        # the source's identity enters every key (a short digest: a long file list stays here),
        # so a changed input is never mistaken for the one an interrupted run was working on
        token = dask.base.tokenize(self.token())
        bounds = read_bounds(first, stop, chunk_frames, self.key_frames() if key_aligned else None, longest)
        blocks = []
        for begin, end in zip(bounds[:-1], bounds[1:]):
            block = dask.delayed(_read, pure=True)(self.part(begin, end), begin, end, token)
            blocks.append(da.from_delayed(block, (end - begin,) + info.shape[1:], dtype=np.dtype(info.dtype)))
        return da.concatenate(blocks, axis=0)


def _read(reader: Reader, start: int, stop: int, token) -> np.ndarray:
    return reader.read(start, stop)


#: Registered readers, most specific first (see :func:`register_reader`).
READERS: list[type[Reader]] = []


def register_reader(cls: type[Reader], *, first: bool = True) -> type[Reader]:
    """Add a reader; :func:`reader_for` asks registered readers in order."""
    if cls in READERS:
        READERS.remove(cls)
    READERS.insert(0 if first else len(READERS), cls)
    return cls


def reader_for(path, on_corrupt: str = "stop", **options) -> Reader:
    """The reader for ``path``.

    ``options`` (``stream``, ``timing``, ``fps``) go to a reader that takes
    them (:attr:`Reader.options`); a value of None is not passed.  A name is
    always a local path (made absolute), never a URL, whatever it contains.

    Raises
    ------
    UserError
        The path does not exist, or no reader takes it.
    """
    path = Path(path).absolute()
    if not path.exists():
        for cls in READERS:
            if cls.patterns and cls.accepts(path):
                return cls(path, on_corrupt=on_corrupt)
        if "%" in path.name:
            raise UserError(f"input not found: {path} (no file matches this printf pattern)")
        raise UserError(f"input not found: {path}")
    for cls in READERS:
        if cls.accepts(path):
            given = {key: value for key, value in options.items() if value is not None and key in cls.options}
            return cls(path, on_corrupt=on_corrupt, **given)
    if path.is_dir():
        raise UserError(f"input is a folder, not a video or a .zarr store: {path}")
    raise UserError(f"no reader for {path}")


def warn_input(info: VideoInfo):
    """Warn, one line each, about what the probe found that changes how frames are read.

    Several video streams (the others are named), timing that is not
    constant (its rule; for timestamps that jump back, the frame numbers),
    a depth above 8 bits, data in the low bits of its words, pixels that
    are not square.
    """
    from ..errors import warn

    if len(info.streams) > 1:
        others = "; ".join(line for i, line in enumerate(info.streams) if i != info.stream)
        warn(f"{info.path} has {len(info.streams)} video streams; reading stream {info.stream} "
             f"(choose with --stream N); others: {others}")
    if info.timing != "constant" and info.timing_note:
        warn(f"{info.path}: {info.timing_note}")
    if info.bits > 8 and info.dtype == "uint8" and info.pixel_format:
        warn(f"{info.path} has {info.bits}-bit samples ({info.pixel_format}); they are processed at 8 bits")
    if info.sample_aspect_ratio is not None:
        sar = info.sample_aspect_ratio
        warn(f"{info.path} has non-square pixels ({sar.numerator}:{sar.denominator}); .mp4/.mov outputs carry "
             f"that aspect ratio, .mkv/.avi (FFV1), .zarr, TIFF and side-by-side outputs have square pixels")
