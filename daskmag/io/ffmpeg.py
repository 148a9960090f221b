"""Video files through FFmpeg (PyAV): probe and lazy, parallel, frame-accurate decode.

:class:`FFmpegReader` reads anything FFmpeg reads.  Each time chunk is one
task that seeks to the key frame before its first frame and decodes forward,
keeping frames by their presentation timestamps, so chunks decode in
parallel and frame-accurately (B-frames included).

Frames are placed on a constant-rate grid by timestamp (see
:func:`read_frames`), so a variable-frame-rate file is resampled to its
average rate, and a corrupt frame is found and reported by its number on that
grid, whether the file is decoded in one piece or by many seeking tasks.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import UserError, warn
from ..settings import ON_CORRUPT
from .base import Reader, VideoInfo, file_stamp, reason as _reason, register_reader

#: Threads of each decoder, encoder and colour conversion.  Dask runs one
#: task per core, so codec threads would only compete with the other tasks:
#: one thread spends the least CPU per frame (guitar.mp4 decode: 0.43
#: against 1.12 ms with FFmpeg's automatic threads; x264: 2.9 against 3.3).
CODEC_THREADS = 1


def _open_container(path: Path):
    import av

    if not path.exists():
        raise UserError(f"input not found: {path}")
    if path.is_dir():
        raise UserError(f"input is a folder, not a video or a .zarr store: {path}")
    try:
        container = av.open(str(path))
    except av.error.EOFError:
        raise UserError(f"{path} has no frames (it ends before its first frame)") from None
    except Exception as exc:  # av.error.InvalidDataError and friends
        raise UserError(f"cannot read {path} as a video ({_reason(exc)})") from None
    if not container.streams.video:
        container.close()
        raise UserError(f"{path} has no video stream")
    return container


def _stream_rate(stream) -> Fraction:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate:
            return Fraction(rate)
    return Fraction(0)


def probe(path) -> VideoInfo:
    """Frames, size, frame rate and codec of a video file or an ingested store.

    The frame count is taken from the container and, when the container does
    not record it, counted from the packets (no decoding).  A file whose
    frame intervals vary (by more than a quarter of a frame) is flagged
    ``variable_frame_rate``; its ``n_frames`` is then the length of the
    constant-rate grid it is resampled onto, ``round(duration * fps)`` (see
    :func:`read_frames`), and ``stored_frames`` the frames in the file.
    """
    path = Path(path)
    container = _open_container(path)
    try:
        stream = container.streams.video[0]
        fps = _stream_rate(stream)
        # Count packets (no decoding): exact even for containers that record
        # no frame count, and gives the timestamps that reveal a variable rate.
        timestamps = []
        last_pts, last_duration = None, 0
        try:
            for packet in container.demux(stream):
                if packet.size and packet.pts is not None:
                    timestamps.append(packet.pts)
                    if last_pts is None or packet.pts >= last_pts:
                        last_pts, last_duration = packet.pts, packet.duration or 0
        except Exception as exc:
            raise UserError(f"{path} is corrupt ({_reason(exc)})") from None
        stored = n_frames = len(timestamps)
        vfr = _variable_rate(timestamps, stream.time_base, fps)
        if vfr:
            grid = _Grid(stream, fps)
            # the last frame lasts its own duration, or one period when unrecorded
            end = last_pts + (last_duration or grid.ticks(1))
            n_frames = grid.slot(end)
        codec = stream.codec_context.name
        height, width = stream.codec_context.height, stream.codec_context.width
        _, dtype, channels, bits = sample_format(stream.codec_context.pix_fmt)
    finally:
        container.close()
    if n_frames == 0:
        raise UserError(f"{path} has no frames")
    if not fps or fps <= 0:
        raise UserError(f"{path} does not record a frame rate")
    return VideoInfo(str(path), n_frames, height, width, fps, codec, "file", vfr, stored, dtype, channels, bits)


class _Grid:
    """Frame numbers on the constant-rate grid of a stream.

    A frame with timestamp ``t`` (from the stream's start) lands on grid slot
    ``floor(t * fps + 1/2)``: the nearest slot, ties to the later one.  Exact
    integer arithmetic, so every task agrees on every frame's slot.
    """

    __slots__ = ("first", "_num", "_den")

    def __init__(self, stream, fps: Fraction):
        time_base = Fraction(stream.time_base)
        self.first = stream.start_time or 0
        # slot = floor((pts - first) * time_base * fps + 1/2) = ((pts - first) * num + den / 2) // den
        self._num = 2 * time_base.numerator * fps.numerator
        self._den = 2 * time_base.denominator * fps.denominator

    def slot(self, pts: int) -> int:
        return ((pts - self.first) * self._num + self._den // 2) // self._den

    def ticks(self, frames: int) -> int:
        """``frames`` periods in time-base units (rounded down)."""
        return frames * self._den // self._num

    def seek_target(self, slot: int) -> int:
        """A timestamp before ``slot``'s time: the key frame at or before it lands on ``slot`` or earlier."""
        return self.first + self.ticks(slot) - 1


#: Decoded sample layouts kept at full depth: FFmpeg pixel format prefix ->
#: (format to convert to, dtype, channels).  Anything else decodes to 8-bit RGB.
_DEEP_FORMATS = (
    (("gray16",), ("gray16le", "uint16", 1)),
    (("gray",), ("gray", "uint8", 1)),
    (("rgb48", "bgr48", "gbrp9", "gbrp10", "gbrp12", "gbrp14", "gbrp16", "rgba64", "bgra64", "gbrap1"),
     ("rgb48le", "uint16", 3)),
)


def sample_format(pix_fmt: str | None, bits: int | None = None) -> tuple[str, str, int, int]:
    """How frames of pixel format ``pix_fmt`` are decoded: (PyAV format, dtype, channels, bits).

    Grey stays grey (one channel) and 9 to 16-bit grey or RGB stays 16-bit:
    high-speed cameras' depth is kept.  ``gray10le``/``gray12le``... keep their
    own values (0..4095 for 12 bits, no scaling); ``gray16le`` holding 12-bit
    data keeps its 12-bit values.  Other formats decode to 8-bit RGB.
    """
    name = pix_fmt or ""
    match = re.match(r"gray(9|10|12|14)(le|be)\Z", name)
    if match:
        return name, "uint16", 1, int(match.group(1))
    for prefixes, (target, dtype, channels) in _DEEP_FORMATS:
        if name.startswith(prefixes):
            return target, dtype, channels, 8 if dtype == "uint8" else 16
    return "rgb24", "uint8", 3, 8


def _variable_rate(timestamps, time_base, fps) -> bool:
    if not timestamps or len(timestamps) < 3 or not time_base or not fps:
        return False
    ordered = np.sort(np.asarray(timestamps, dtype=np.float64)) * float(time_base)
    steps = np.diff(ordered) * float(fps)
    return bool(np.any(np.abs(steps - 1.0) > 0.25))


def check_on_corrupt(on_corrupt: str):
    """Validate an ``on_corrupt`` choice (:data:`ON_CORRUPT`) before any work."""
    if on_corrupt not in ON_CORRUPT:
        raise UserError(f"on_corrupt must be one of {', '.join(ON_CORRUPT)}, got {on_corrupt!r}")


def read_frames(path, start: int, stop: int, stamp: tuple[int, int] | None = None,
                on_corrupt: str = "stop") -> np.ndarray:
    """Decode frames ``[start, stop)`` of a video file as (n, H, W, 3) uint8 RGB.

    Seeks to the key frame before ``start`` and decodes forward, placing each
    frame by its presentation timestamp, so that the result is identical to
    the same frames of a sequential decode (B-frames included).

    **The grid.**  Frame ``i`` of the result is the frame shown at time
    ``i / fps`` from the stream's start: the last good frame whose timestamp
    is before ``(i + 1/2) / fps``.  ``fps`` is the stream's average frame
    rate as FFmpeg reports it (frames over duration for MP4; the declared
    rate for Matroska), as in :func:`probe`.  A frame thus lands on the
    nearest grid slot (ties to the later); a slot that no frame lands on
    repeats the one before (a gap in a variable-rate file), and of two frames
    on one slot the later is kept.  For a constant-rate file every frame has
    its own slot.

    **Corrupt frames** are those the decoder rejects, drops (a packet whose
    timestamp never comes out of the decoder) or flags corrupt; errors are
    caught packet by packet, so one bad packet loses one frame only.  Damage
    that the decoder conceals without a sign (e.g. an FFV1 slice CRC
    mismatch, which FFmpeg only logs) cannot be seen.

    Parameters
    ----------
    path : str or Path
        A video file.
    start, stop : int
        Grid frames to decode.
    stamp : tuple of int, optional
        From :func:`file_stamp`: a file changed since then is an error.
    on_corrupt : {"stop", "repeat"}
        ``"stop"``: a corrupt frame in ``[start, stop)`` raises a
        :class:`~daskmag.errors.UserError` with its number.  ``"repeat"``:
        it shows the previous good frame instead (the next good one before
        the clip's first good frame), and a warning with its number is
        printed on stderr.

    Returns
    -------
    numpy.ndarray
        (stop - start, H, W, 3) uint8.
    """
    check_on_corrupt(on_corrupt)
    if stamp is not None and file_stamp(path) != tuple(stamp):
        raise UserError(f"{path} changed while it was being read")
    import av

    container = av.open(str(path))
    try:
        stream = container.streams.video[0]
        stream.codec_context.thread_count = CODEC_THREADS
        fps = _stream_rate(stream)
        grid = _Grid(stream, fps)
        back = 0
        while True:
            target = grid.seek_target(start) - back
            from_start = target <= grid.first
            if start > 0:
                container.seek(max(target, grid.first), stream=stream, backward=True)
            segment = _Segment(path, start, stop, stream.codec_context)
            segment.decode(container, stream, grid, counting=start == 0)
            # Slot ``start`` shows the last good frame at or before it: when
            # the seek did not reach one (the key frame landed late, or it and
            # what follows up to ``start`` are corrupt), look further back.
            if segment.has_first or from_start:
                break
            back = max(4 * back, grid.ticks(math.ceil(fps)), 1)  # 1 s, 4 s, 16 s, ...
        return segment.result(on_corrupt)
    finally:
        container.close()


class _Segment:
    """One decoding pass of :func:`read_frames`: good frames by grid slot, and the corrupt slots."""

    def __init__(self, path, start: int, stop: int, codec):
        self.path, self.start, self.stop = path, start, stop
        self.format, dtype, channels, _ = sample_format(codec.pix_fmt)
        self.out = np.empty((stop - start, codec.height, codec.width, channels), dtype=dtype)
        self.own = np.zeros(stop - start, dtype=bool)  # slots with a good frame of their own
        self.before = None  # the last good frame before ``start``
        self.after = None  # the first good frame from ``stop`` on, when none came earlier
        self.corrupt = set()
        from av.video.reformatter import VideoReformatter

        self.reformatter = VideoReformatter()

    def rgb(self, frame) -> np.ndarray:
        """A decoded frame as (H, W, C) samples (:func:`sample_format`), converted on this thread.

        PyAV's default (``threads=0``) starts and stops a pool of scaler
        threads for every frame; see :data:`CODEC_THREADS`.
        """
        if frame.format.name == self.format:
            return frame.to_ndarray().reshape(self.out.shape[1:])
        return self.reformatter.reformat(frame, format=self.format, threads=CODEC_THREADS).to_ndarray() \
            .reshape(self.out.shape[1:])

    @property
    def has_first(self) -> bool:
        """Whether slot ``start`` has a good frame to show (its own, or an earlier one)."""
        return self.before is not None or bool(self.own[0])

    def decode(self, container, stream, grid, counting: bool):
        """Decode from where ``container`` stands until the segment is complete.

        ``counting``: the container stands at the stream's start, so frames
        without a timestamp can be counted from 0.
        """
        sent, seen = [], set()
        end = self._place(container.demux(stream), stream.codec_context, grid, sent, seen, counting)
        # A packet whose timestamp never came out of the decoder lost its
        # frame.  This finds the bad frame even when frame threading raises
        # the error some packets later, or the decoder drops it silently.
        for pts in sent:
            if pts not in seen and (end is None or pts < end):
                slot = grid.slot(pts)
                if self.start <= slot < self.stop:
                    self.corrupt.add(slot)

    def _place(self, packets, codec, grid, sent: list, seen: set, counting: bool):
        """Put decoded frames on their slots.

        Returns the timestamp of the frame that ended the segment, or None at
        the end of the stream.
        """
        import av

        start, stop, out, own = self.start, self.stop, self.out, self.own
        slot = -1 if counting else None
        try:
            for packet in packets:
                if packet.size and packet.pts is not None:
                    sent.append(packet.pts)
                try:
                    frames = codec.decode(packet)
                except av.error.FFmpegError:
                    continue  # its lost frame is found by the missing timestamp
                for frame in frames:
                    if frame.pts is not None:
                        seen.add(frame.pts)
                        slot = grid.slot(frame.pts)
                    elif slot is None:
                        raise UserError(f"{self.path}: frame has no timestamp after a seek")
                    else:
                        slot += 1
                    if frame.is_corrupt:
                        if start <= slot < stop:
                            self.corrupt.add(slot)
                    elif slot < start:
                        self.before = frame  # converted only if it is shown
                    elif slot < stop:
                        out[slot - start] = self.rgb(frame)
                        own[slot - start] = True
                    else:
                        if self.before is None and not own.any():
                            self.after = frame
                        return frame.pts
        except av.error.FFmpegError as exc:  # from the demuxer: the container is damaged
            last = start if slot is None or slot < start else slot
            raise UserError(f"cannot read {self.path} past frame {last} ({_reason(exc)})") from None
        return None

    def result(self, on_corrupt: str) -> np.ndarray:
        """The frames: slots without a good frame of their own show the one before."""
        bad = sorted(self.corrupt)
        if bad and on_corrupt == "stop":
            raise UserError(f"{self.path}: frame {bad[0]} is corrupt "
                            f"(use --on-corrupt repeat to repeat the previous frame)")
        out, own = self.out, self.own
        leading = np.zeros(len(own), dtype=bool)
        if not own.all():
            # each slot shows the last slot at or before it with a frame of its own
            source = np.where(own, np.arange(len(own)), -1)
            np.maximum.accumulate(source, out=source)
            leading = source < 0
            if leading.any():
                out[leading] = self._leading_frame()
            rest = ~own & ~leading
            out[rest] = out[source[rest]]
        for slot in bad:
            if leading[slot - self.start] and self.before is None:
                warn(f"{self.path}: frame {slot} is corrupt; showing the next good frame")
            else:
                warn(f"{self.path}: frame {slot} is corrupt; repeating the previous frame")
        return out

    def _leading_frame(self) -> np.ndarray:
        """What the slots before the segment's first good frame show."""
        if self.before is not None:
            return self.rgb(self.before)
        # no good frame since the stream's start: the clip's first frames
        # are corrupt and show the next good one
        if self.own.any():
            return self.out[np.argmax(self.own)]
        if self.after is not None:
            return self.rgb(self.after)
        raise UserError(f"{self.path}: no frame could be decoded")


class FFmpegReader(Reader):
    """Any file FFmpeg reads (through PyAV): the fallback reader.

    Frames come out as (n, H, W, 3) uint8 RGB (:func:`read_frames`), except
    grey and 9-16-bit video, kept at its depth (:func:`sample_format`).
    """

    kind = "file"

    def __init__(self, path: Path, on_corrupt: str = "stop"):
        super().__init__(path, on_corrupt)
        # a file changed after it was opened is an error, not other frames
        self.stamp = file_stamp(self.path) if self.path.exists() else None

    @classmethod
    def accepts(cls, path: Path) -> bool:
        return not path.is_dir()

    def probe(self) -> VideoInfo:
        return probe(self.path)

    def read(self, start: int, stop: int) -> np.ndarray:
        return read_frames(self.path, start, stop, self.stamp, self.on_corrupt)


register_reader(FFmpegReader, first=False)
