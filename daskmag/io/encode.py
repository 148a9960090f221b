"""Encoded video outputs through FFmpeg (PyAV): H.264 ``.mp4``/``.mov``, FFV1 ``.avi``/``.mkv``.

Every time block is encoded by its own task into a *part* (FFmpeg's NUT
container, exact for any time base); :func:`join_parts` then copies the
parts' packets, in order, into the output and stamps them frame by frame
(no re-encoding).  :class:`EncodedWriter` is this kind of output behind the
writer interface of :mod:`daskmag.io.output`.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import dask
import numpy as np

from ..settings import DEFAULT_CRF
from .ffmpeg import CODEC_THREADS
from .output import Writer, exact_rate as _rate, partial_path, register_writer, remove_path, replace_path

#: Output containers by extension: (container format, codec, pixel format).
ENCODERS = {
    ".mp4": ("mp4", "libx264", None),
    ".mov": ("mov", "libx264", None),
    ".avi": ("avi", "ffv1", "bgr0"),
    ".mkv": ("matroska", "ffv1", "bgr0"),
}
#: libx264's options besides the crf.  "fast": the same quality at a given crf
#: as "medium", a few % larger, half the time.  Trellis quantisation off: it
#: was over half of x264's time (about a sixth of a guitar.mp4 run).  Sub-pixel
#: motion refinement 4 (the preset's is 6): 0.58-0.82x the encoder's CPU on
#: magnified, phone and HD clips (1.01 on a slow-motion export).  A lower crf
#: makes up for both in luma (DEFAULT_CRF 15.8; 17 with the preset's own
#: analysis): the same or higher Y PSNR on every clip measured.  Below refinement 6 x264 also drops
#: psy-rd, and with it the chroma QP offset of -2 that psy-rd brings (1-1.6 dB
#: of Cb/Cr PSNR, 2 dB on HD texture): the offset is set here, so colour keeps
#: its old fidelity (within 0.07 dB), 1-16% larger in all
#: (docs/benchmarks.md, "H.264 output").
#: No B-frames: decode order is presentation order, so parts join by a packet
#: copy with pts = dts = frame number ("bf" is the AVCodecContext option
#: libx264 reads; "bframes" is not one of its options and is silently ignored).
X264_OPTIONS = {"preset": "fast", "bf": "0", "x264-params": "trellis=0:subme=4:chroma-qp-offset=-2"}
#: Container of the parts: FFmpeg's own, exact for any time base and codec.
PART_FORMAT = "nut"
#: Highest frame rate each output container stores exactly, in frames per second.
#: Matroska stamps frames to the millisecond (FFmpeg's muxer: TimestampScale 1 ms), so above
#: 1000 fps two frames would share a timestamp; FFmpeg's AVI muxer turns a frame period
#: shorter than 1 ms into a 1/600 s time base and then fails on the second frame.  MP4/MOV
#: (a time scale of the rate) store any rate exactly.
MAX_RATE = {".mkv": Fraction(1000), ".avi": Fraction(1000)}


def check_rate(path, fps):
    """Refuse, before any work, an output container that cannot store ``fps`` exactly.

    Raises
    ------
    UserError
        One line naming a container that can.
    """
    from ..errors import UserError

    suffix = Path(path).suffix.lower()
    limit = MAX_RATE.get(suffix)
    if limit is not None and fps and _rate(fps) > limit:
        raise UserError(f"{suffix} cannot store {float(_rate(fps)):.6g} fps exactly (at most "
                        f"{float(limit):g} fps: frames would share a timestamp); write .mp4 or .mov, "
                        f".zarr or out/%06d.tif (exact), or give a lower --playback-fps")


def _media_name(path) -> str:
    """An absolute name: FFmpeg never reads a part of it as a protocol (``12:30:05.mp4``)."""
    return str(Path(path).absolute())


#: PyAV formats of the frames given to :class:`VideoWriter`, by (channels, dtype).
INPUT_FORMATS = {(1, "uint8"): "gray", (1, "uint16"): "gray16le", (3, "uint8"): "rgb24", (3, "uint16"): "rgb48le"}
#: FFV1's pixel formats, by (channels, dtype): lossless at the frames' own depth.
FFV1_FORMATS = {(1, "uint8"): "gray", (1, "uint16"): "gray16le", (3, "uint8"): "bgr0", (3, "uint16"): "rgb48le"}


def keeps_depth(path) -> bool:
    """Whether an output with ``path``'s suffix keeps 16-bit samples (FFV1); H.264 is 8-bit."""
    entry = ENCODERS.get(Path(path).suffix.lower())
    return entry is None or entry[1] != "libx264"


def view_scale(bits: int) -> float:
    """Factor from samples of ``bits`` significant bits to an 8-bit view: ``255 / (2**bits - 1)``."""
    return 255.0 / (2 ** int(bits) - 1)


def to_view(frames: np.ndarray, bits: int) -> np.ndarray:
    """16-bit frames as 8-bit for viewing, ``bits`` significant bits scaled to [0, 255] (clipped)."""
    out = np.rint(frames.astype(np.float32) * np.float32(view_scale(bits)))
    np.clip(out, 0, 255, out=out)
    return out.astype(np.uint8)


class VideoWriter:
    """Encode frames to a file at an exact frame rate.

    ``.mp4``/``.mov``: H.264 (libx264) at constant quality ``crf`` (15.8, the
    default, is visually lossless), 4:2:0 (4:4:4 for odd sizes), no B-frames so that
    parts join exactly, 8-bit: 16-bit frames are scaled from ``bits``
    significant bits for viewing (:func:`to_view`).  ``.avi``/``.mkv``: FFV1,
    lossless at the frames' own depth and channels (``gray``, ``gray16le``,
    ``bgr0``, ``rgb48le``).  The file is written under a temporary name and
    renamed by :meth:`close`.

    Parameters
    ----------
    path : Path
        The file to write.
    codec_of : str, optional
        Encode as for an output with this suffix (e.g. a ``.nut`` part of an
        ``.mp4`` output); default: ``path``'s own suffix.
    dtype, channels : str, int
        The frames' samples: uint8 or uint16, 1 (mono) or 3 (RGB).
    bits : int, optional
        Significant bits of 16-bit frames, for H.264's 8-bit view (default 16).
    sample_aspect_ratio : str or Fraction, optional
        The pixels' aspect ratio (``"4/3"``), written to the stream so that
        a player shows the picture as the input's; default square.
    """

    def __init__(self, path, fps, height: int, width: int, crf: float = DEFAULT_CRF, codec_of: str | None = None,
                 dtype: str = "uint8", channels: int = 3, bits: int | None = None, sample_aspect_ratio=None):
        import av
        from av.video.reformatter import VideoReformatter

        self.path = Path(path)
        self.tmp = partial_path(self.path)
        container_format, codec, pix_fmt = ENCODERS[(codec_of or self.path.suffix).lower()]
        if codec_of is not None:
            container_format = PART_FORMAT
        rate = _rate(fps)
        options = {}
        dtype = str(np.dtype(dtype))
        self.view_bits = None
        if codec == "libx264" and dtype != "uint8":
            self.view_bits, dtype = int(bits or 16), "uint8"
        self.channels, self.in_format = channels, INPUT_FORMATS[(channels, dtype)]
        if codec == "ffv1":
            pix_fmt = FFV1_FORMATS[(channels, dtype)]
        if codec == "libx264":
            # 4:2:0 needs even sizes; odd-sized frames keep full chroma
            pix_fmt = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
            options = {"crf": f"{crf:g}", **X264_OPTIONS}
        self.container = av.open(_media_name(self.tmp), mode="w", format=container_format)
        self.stream = self.container.add_stream(codec, rate=rate, options=options)
        self.colour = {}
        if codec == "libx264":
            self.stream.codec_context.max_b_frames = 0
            # encode with the BT.709 matrix, limited range, and say so in the stream: a player
            # guesses the matrix of an untagged stream by its size (BT.601 below HD), so
            # untagged colours shift between players
            context = self.stream.codec_context
            context.colorspace = context.color_primaries = context.color_trc = 1  # BT.709
            context.color_range = 1  # limited ("MPEG")
            self.colour = {"dst_colorspace": "ITU709", "dst_color_range": "MPEG"}
        self.stream.width, self.stream.height, self.stream.pix_fmt = width, height, pix_fmt
        if sample_aspect_ratio:  # "num/den": the input's pixel shape, so a player shows the same picture
            self.stream.codec_context.sample_aspect_ratio = Fraction(sample_aspect_ratio)
        self.stream.codec_context.thread_count = CODEC_THREADS
        self.time_base = 1 / rate
        self.frames_written = 0
        # Frames are converted here: the encoder's own conversion starts and
        # stops a pool of scaler threads for every frame (CODEC_THREADS).
        self.reformatter = VideoReformatter()

    def write(self, frames: np.ndarray):
        """Append frames (n, H, W, C) of the writer's dtype and channels."""
        import av

        width, height, pix_fmt = self.stream.width, self.stream.height, self.stream.pix_fmt
        if self.view_bits is not None:
            frames = to_view(np.asarray(frames), self.view_bits)
        for image in frames:
            image = image[..., 0] if self.channels == 1 else image
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format=self.in_format)
            if pix_fmt != self.in_format:
                frame = self.reformatter.reformat(frame, width, height, pix_fmt, threads=CODEC_THREADS,
                                                   **self.colour)
            frame.pts, frame.time_base = self.frames_written, self.time_base
            for packet in self.stream.encode(frame):
                self.container.mux(packet)
            self.frames_written += 1

    def close(self):
        """Flush the encoder and move the file to its final name."""
        for packet in self.stream.encode():
            self.container.mux(packet)
        self.container.close()
        replace_path(self.tmp, self.path)

    def abort(self):
        """Drop the partial file."""
        try:
            self.container.close()
        except Exception:
            pass
        remove_path(self.tmp)


def write_array(frames, path, fps, crf: float = DEFAULT_CRF, codec_of: str | None = None, bits: int | None = None) -> int:
    """Encode an in-memory clip (T, H, W, C) uint8 or uint16 to ``path`` (replacing it)."""
    frames = np.asarray(frames)
    if frames.ndim == 3:
        frames = frames[..., None]
    return _write_frames(frames, path, fps, frames.shape[1], frames.shape[2], crf, codec_of,
                         str(frames.dtype), frames.shape[3], bits)


def _write_frames(frames, path, fps, height: int, width: int, crf: float, codec_of: str | None,
                  dtype: str = "uint8", channels: int = 3, bits: int | None = None, sar=None) -> int:
    """Encode an iterable of (H, W, C) frames; the file appears only when complete."""
    writer = VideoWriter(path, fps, height, width, crf=crf, codec_of=codec_of, dtype=dtype, channels=channels,
                         bits=bits, sample_aspect_ratio=sar)
    try:
        for frame in frames:
            writer.write(frame[None])
    except BaseException:
        writer.abort()
        raise
    writer.close()
    return writer.frames_written


def _assemble(tiles):
    """Whole frames, one at a time, from a grid ``[row][col]`` of (T, h, w, 3) tiles.

    Only one frame is assembled at a time: a time block of 1080p tiles never
    exists as one whole-frame array.
    """
    heights = [row[0].shape[1] for row in tiles]
    widths = [tile.shape[2] for tile in tiles[0]]
    first = tiles[0][0]
    frame = np.empty((sum(heights), sum(widths), first.shape[3]), dtype=first.dtype)
    for t in range(tiles[0][0].shape[0]):
        y = 0
        for row, height in zip(tiles, heights):
            x = 0
            for tile, width in zip(row, widths):
                frame[y : y + height, x : x + width] = tile[t]
                x += width
            y += height
        yield frame


def join_parts(parts, path: Path, fps):
    """Copy the packets of ``parts`` (in order) into one file, re-stamped frame by frame.

    The parts hold intra-only (FFV1) or I/P-only (H.264 without B-frames)
    streams, so decode order is presentation order and each packet is one
    frame: packet ``k`` of the output gets pts = dts = ``k`` in a time base of
    one frame period, strictly increasing.  A part whose packets are not in
    presentation order (B-frames) is refused rather than joined out of order.
    """
    import av

    from ..errors import UserError

    rate = _rate(fps)
    check_rate(path, rate)
    tmp = partial_path(path)
    container_format = ENCODERS[path.suffix.lower()][0]
    frame = 0
    with av.open(_media_name(tmp), mode="w", format=container_format) as out:
        stream = None
        for part in parts:
            with av.open(_media_name(part)) as source:
                template = source.streams.video[0]
                if stream is None:
                    stream = out.add_stream_from_template(template)
                    stream.time_base = 1 / rate
                    stream.codec_context.time_base = 1 / rate
                    stream.codec_context.framerate = rate
                last = None
                for packet in source.demux(template):
                    if packet.size == 0:
                        continue
                    if packet.pts is not None and last is not None and packet.pts <= last:
                        raise UserError(f"{part}: frames out of order (B-frames?); cannot join it exactly")
                    last = packet.pts
                    packet.pts = packet.dts = frame
                    packet.duration = 1
                    packet.time_base = 1 / rate
                    packet.stream = stream
                    out.mux(packet)
                    frame += 1
    replace_path(tmp, path)
    return frame


def _encode_part(tiles, part: str, fps, crf: float, suffix: str, bits: int | None = None, sar=None) -> int:
    height = sum(row[0].shape[1] for row in tiles)
    width = sum(tile.shape[2] for tile in tiles[0])
    first = tiles[0][0]
    return _write_frames(_assemble(tiles), Path(part), fps, height, width, crf, suffix, str(first.dtype),
                         first.shape[3], bits, sar)




class EncodedWriter(Writer):
    """Video files: one encoded part per time block, joined by a packet copy."""

    suffixes = tuple(ENCODERS)
    part_name = "{:06d}." + PART_FORMAT

    def block_tasks(self, frames, path: Path, fps, parts, todo, *, crf: float = DEFAULT_CRF, attrs=None) -> dict:
        # spatial tiles go to the encoder as they are: no whole-frame block
        tiles = frames.to_delayed()[..., 0]
        bits = (attrs or {}).get("bits")  # 16-bit frames' significant bits, for an 8-bit view
        sar = (attrs or {}).get("sample_aspect_ratio")  # non-square pixels are carried to the output
        return {i: dask.delayed(_encode_part)(tiles[i].tolist(), str(parts.folder / self.part_name.format(i)),
                                              fps, crf, path.suffix, bits, sar)
                for i in todo}

    def finish(self, path: Path, parts, n_blocks: int, fps):
        join_parts([parts.folder / self.part_name.format(i) for i in range(n_blocks)], path, fps)


register_writer(EncodedWriter)
