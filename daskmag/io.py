"""Video input: probe, lazy parallel decode of files and Zarr stores.

Decoding uses PyAV (FFmpeg).  :func:`open_video` turns a file into a lazy Dask
array whose every time chunk is one task that seeks to the key frame before
its first frame and decodes forward, keeping frames by their presentation
timestamps, so chunks decode in parallel and frame-accurately (B-frames
included).  Ingested Zarr stores open the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import dask
import dask.array as da
import numpy as np

from .errors import UserError
from .region import frame_range

STORE_SUFFIX = ".zarr"
#: Target size of one Zarr chunk (whole frames along time).
CHUNK_BYTES = 64 * 2**20


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe` learns of a video file or store."""

    path: str
    n_frames: int
    height: int
    width: int
    fps: Fraction
    codec: str
    kind: str = "file"  # "file" or "zarr"
    variable_frame_rate: bool = False

    @property
    def duration(self) -> float:
        """Length in seconds at the stored frame rate."""
        return float(self.n_frames / self.fps) if self.fps else float("nan")

    def describe(self) -> str:
        """Human-readable summary (``daskmag info``)."""
        lines = [
            f"path:      {self.path}",
            f"kind:      {self.kind}",
            f"frames:    {self.n_frames}",
            f"size:      {self.width}x{self.height}",
            f"fps:       {float(self.fps):.6g} ({self.fps.numerator}/{self.fps.denominator})",
            f"duration:  {self.duration:.3f} s",
            f"codec:     {self.codec}",
        ]
        if self.variable_frame_rate:
            lines.append("timing:    variable frame rate (frames are indexed by timestamp)")
        return "\n".join(lines)


@dataclass
class Video:
    """A lazily decoded video: ``frames`` (T, H, W, 3) uint8 Dask array and its ``fps``.

    Unpacks as ``frames, fps = open_video(path)``.
    """

    frames: da.Array
    fps: Fraction
    info: VideoInfo = field(repr=False)

    def __iter__(self):
        return iter((self.frames, self.fps))


def _is_store(path: Path) -> bool:
    return path.suffix == STORE_SUFFIX or (path.is_dir() and (path / "zarr.json").exists())


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


def _reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


def _stream_rate(stream) -> Fraction:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate:
            return Fraction(rate)
    return Fraction(0)


def probe(path) -> VideoInfo:
    """Frames, size, frame rate and codec of a video file or an ingested store.

    The frame count is taken from the container and, when the container does
    not record it, counted from the packets (no decoding).
    """
    path = Path(path)
    if _is_store(path):
        return _probe_store(path)
    container = _open_container(path)
    try:
        stream = container.streams.video[0]
        fps = _stream_rate(stream)
        # Count packets (no decoding): exact even for containers that record
        # no frame count, and gives the timestamps that reveal a variable rate.
        timestamps = []
        try:
            for packet in container.demux(stream):
                if packet.size and packet.pts is not None:
                    timestamps.append(packet.pts)
        except Exception as exc:
            raise UserError(f"{path} is corrupt ({_reason(exc)})") from None
        n_frames = len(timestamps)
        vfr = _variable_rate(timestamps, stream.time_base, fps)
        codec = stream.codec_context.name
        height, width = stream.codec_context.height, stream.codec_context.width
    finally:
        container.close()
    if n_frames == 0:
        raise UserError(f"{path} has no frames")
    if not fps or fps <= 0:
        raise UserError(f"{path} does not record a frame rate")
    return VideoInfo(str(path), n_frames, height, width, fps, codec, "file", vfr)


def _variable_rate(timestamps, time_base, fps) -> bool:
    if not timestamps or len(timestamps) < 3 or not time_base or not fps:
        return False
    ordered = np.sort(np.asarray(timestamps, dtype=np.float64)) * float(time_base)
    steps = np.diff(ordered) * float(fps)
    return bool(np.any(np.abs(steps - 1.0) > 0.25))


def _probe_store(path: Path) -> VideoInfo:
    array = _open_store_array(path)
    attrs = dict(array.attrs)
    fps = Fraction(attrs.get("fps", "0"))
    n_frames, height, width = array.shape[:3]
    if n_frames == 0:
        raise UserError(f"{path} has no frames")
    return VideoInfo(
        str(path), n_frames, height, width, fps, str(attrs.get("codec", "zarr")), "zarr"
    )


def _open_store_array(path: Path):
    import zarr

    if not path.exists():
        raise UserError(f"input not found: {path}")
    try:
        node = zarr.open(str(path), mode="r")
    except Exception as exc:
        raise UserError(f"cannot open {path} as a Zarr store ({_reason(exc)})") from None
    if isinstance(node, zarr.Group):
        if "frames" not in node:
            raise UserError(f"{path} is a Zarr group without a 'frames' array")
        node = node["frames"]
    if node.ndim != 4 or node.shape[-1] != 3 or node.dtype != np.uint8:
        raise UserError(f"{path} does not hold (frames, height, width, 3) uint8 video")
    return node


def default_chunk_frames(height: int, width: int) -> int:
    """Frames per chunk so that one chunk of RGB uint8 frames is ~64 MiB."""
    return max(1, CHUNK_BYTES // (height * width * 3))


def open_video(path, chunk_frames: int | None = None, max_frames: int | None = None, *,
               start=None, end=None) -> Video:
    """Open a video file or an ingested ``.zarr`` store as a lazy Dask array.

    Parameters
    ----------
    path : str or Path
        A video file (anything FFmpeg reads) or a store made by :func:`ingest`.
    chunk_frames : int, optional
        Frames per chunk (default: ~64 MiB per chunk).  For a file, each chunk
        is decoded by its own task.
    max_frames : int, optional
        Keep only the first ``max_frames`` frames (from ``start``).
    start, end : int or str, optional
        Keep frames ``[start, end)`` only: frame numbers, or seconds of the
        stored time line as ``"2.5s"`` (:func:`daskmag.region.frame_range`).
        Only those frames are decoded.

    Returns
    -------
    Video
        ``frames``, a (T, H, W, 3) uint8 Dask array, and ``fps``.
    """
    path = Path(path)
    info = probe(path)
    first, stop = frame_range(info.n_frames, info.fps, start, end, max_frames)
    if _is_store(path):
        frames = da.from_zarr(_open_store_array(path))[first:stop]
        if chunk_frames:
            frames = frames.rechunk({0: chunk_frames})
        return Video(frames, info.fps, info)
    chunk_frames = chunk_frames or default_chunk_frames(info.height, info.width)
    # the file's size and time stamp enter the graph's keys: a changed input
    # is never mistaken for the one an interrupted run was working on
    stamp = file_stamp(path)
    blocks = []
    for begin in range(first, stop, chunk_frames):
        end_of_block = min(begin + chunk_frames, stop)
        block = dask.delayed(read_frames, pure=True)(str(path), begin, end_of_block, stamp)
        blocks.append(
            da.from_delayed(block, (end_of_block - begin, info.height, info.width, 3), dtype=np.uint8)
        )
    frames = da.concatenate(blocks, axis=0)
    return Video(frames, info.fps, info)


def file_stamp(path) -> tuple[int, int]:
    """(size, modification time in ns) of a file."""
    stat = Path(path).stat()
    return stat.st_size, stat.st_mtime_ns


def read_frames(path, start: int, stop: int, stamp: tuple[int, int] | None = None) -> np.ndarray:
    """Decode frames ``[start, stop)`` of a video file as (n, H, W, 3) uint8 RGB.

    Seeks to the key frame at or before ``start`` and decodes forward; each
    decoded frame is placed by its presentation timestamp, so the result is
    identical to a sequential decode.  With ``stamp`` (from
    :func:`file_stamp`), a file changed since it was opened is an error.
    """
    import av

    if stamp is not None and file_stamp(path) != tuple(stamp):
        raise UserError(f"{path} changed while it was being read")
    container = av.open(str(path))
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        fps = _stream_rate(stream)
        time_base = stream.time_base
        first_pts = stream.start_time or 0
        height, width = stream.codec_context.height, stream.codec_context.width
        out = np.empty((stop - start, height, width, 3), dtype=np.uint8)
        filled = np.zeros(stop - start, dtype=bool)
        use_pts = time_base is not None
        if start > 0 and use_pts:
            target = first_pts + int(math.floor(start / fps / time_base))
            container.seek(max(target - 1, first_pts), stream=stream, backward=True)
        index = 0 if (start == 0 or not use_pts) else None
        for frame in container.decode(stream):
            if use_pts and frame.pts is not None:
                index = int(round((frame.pts - first_pts) * time_base * fps))
            elif index is None:
                raise UserError(f"{path}: frame has no timestamp after a seek")
            if index >= stop:
                break
            if index >= start:
                out[index - start] = frame.to_ndarray(format="rgb24")
                filled[index - start] = True
            index += 1
        if not filled.all():
            missing = int(np.flatnonzero(~filled)[0]) + start
            raise UserError(f"{path}: frame {missing} could not be decoded (corrupt or truncated)")
        return out
    finally:
        container.close()


