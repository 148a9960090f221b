"""Video input and output: probe, lazy parallel decode, ordered encode, Zarr stores.

Decoding uses PyAV (FFmpeg).  :func:`open_video` turns a file into a lazy Dask
array whose every time chunk is one task that seeks to the key frame before
its first frame and decodes forward, keeping frames by their presentation
timestamps, so chunks decode in parallel and frame-accurately (B-frames
included).  Ingested Zarr stores open the same way.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from collections import deque
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import dask
import dask.array as da
import numpy as np

from .errors import UserError

#: Output containers by extension: (container format, codec, pixel format).
ENCODERS = {
    ".mp4": ("mp4", "libx264", None),
    ".mov": ("mov", "libx264", None),
    ".avi": ("avi", "ffv1", "bgr0"),
    ".mkv": ("matroska", "ffv1", "bgr0"),
}
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


def open_video(path, chunk_frames: int | None = None, max_frames: int | None = None) -> Video:
    """Open a video file or an ingested ``.zarr`` store as a lazy Dask array.

    Parameters
    ----------
    path : str or Path
        A video file (anything FFmpeg reads) or a store made by :func:`ingest`.
    chunk_frames : int, optional
        Frames per chunk (default: ~64 MiB per chunk).  For a file, each chunk
        is decoded by its own task.
    max_frames : int, optional
        Keep only the first ``max_frames`` frames.

    Returns
    -------
    Video
        ``frames``, a (T, H, W, 3) uint8 Dask array, and ``fps``.
    """
    path = Path(path)
    info = probe(path)
    n_frames = info.n_frames if max_frames is None else min(info.n_frames, int(max_frames))
    if _is_store(path):
        frames = da.from_zarr(_open_store_array(path))[:n_frames]
        if chunk_frames:
            frames = frames.rechunk({0: chunk_frames})
        return Video(frames, info.fps, info)
    chunk_frames = chunk_frames or default_chunk_frames(info.height, info.width)
    starts = list(range(0, n_frames, chunk_frames))
    blocks = []
    for start in starts:
        stop = min(start + chunk_frames, n_frames)
        block = dask.delayed(read_frames, pure=True)(str(path), start, stop)
        blocks.append(
            da.from_delayed(block, (stop - start, info.height, info.width, 3), dtype=np.uint8)
        )
    frames = da.concatenate(blocks, axis=0)
    return Video(frames, info.fps, info)


def read_frames(path, start: int, stop: int) -> np.ndarray:
    """Decode frames ``[start, stop)`` of a video file as (n, H, W, 3) uint8 RGB.

    Seeks to the key frame at or before ``start`` and decodes forward; each
    decoded frame is placed by its presentation timestamp, so the result is
    identical to a sequential decode.
    """
    import av

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


# --------------------------------------------------------------------------- output


def check_output(path, overwrite: bool) -> Path:
    """Validate an output path before any work: extension, existence, writable folder."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in ENCODERS and suffix != STORE_SUFFIX:
        known = ", ".join(sorted(list(ENCODERS) + [STORE_SUFFIX]))
        raise UserError(f"unknown output extension {suffix or '(none)'!r} for {path}; use one of {known}")
    if path.exists() and not overwrite:
        raise UserError(f"output exists: {path} (use --overwrite to replace it)")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise UserError(f"output folder does not exist: {folder}")
    try:  # a real write: permissions, read-only mounts and quotas all show here
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError:
        raise UserError(f"output folder is not writable: {folder}") from None
    return path


def partial_path(path: Path) -> Path:
    """The temporary name an output is written under before the final rename."""
    return path.with_name(f".{path.stem}.partial{path.suffix}")


def _finish(tmp: Path, path: Path):
    if path.exists():
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    os.replace(tmp, path)


def _remove(path: Path):
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        path.unlink()


class VideoWriter:
    """Encode RGB uint8 frames to a file, in order, at an exact frame rate.

    ``.mp4``/``.mov``: H.264 (libx264) at constant quality ``crf`` (17 is
    visually lossless); ``.avi``/``.mkv``: FFV1, lossless RGB.  The file is
    written under a temporary name and renamed by :meth:`close`.
    """

    def __init__(self, path, fps, height: int, width: int, crf: int = 17, preset: str = "medium"):
        import av

        self.path = Path(path)
        self.tmp = partial_path(self.path)
        container_format, codec, pix_fmt = ENCODERS[self.path.suffix.lower()]
        self.container = av.open(str(self.tmp), mode="w", format=container_format)
        rate = Fraction(fps).limit_denominator(1_000_000)
        self.stream = self.container.add_stream(codec, rate=rate)
        self.stream.width, self.stream.height = width, height
        if codec == "libx264":
            # 4:2:0 needs even sizes; odd-sized frames keep full chroma.
            even = width % 2 == 0 and height % 2 == 0
            self.stream.pix_fmt = "yuv420p" if even else "yuv444p"
            self.stream.options = {"crf": str(int(crf)), "preset": preset}
        else:
            self.stream.pix_fmt = pix_fmt
        self.stream.codec_context.time_base = 1 / rate
        self.frames_written = 0

    def write(self, frames: np.ndarray):
        """Append frames (n, H, W, 3) uint8 RGB."""
        import av

        for rgb in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            frame.pts = self.frames_written
            frame.time_base = self.stream.codec_context.time_base
            for packet in self.stream.encode(frame):
                self.container.mux(packet)
            self.frames_written += 1

    def close(self):
        """Flush the encoder and move the file to its final name."""
        for packet in self.stream.encode():
            self.container.mux(packet)
        self.container.close()
        _finish(self.tmp, self.path)

    def abort(self):
        """Drop the partial file."""
        try:
            self.container.close()
        except Exception:
            pass
        _remove(self.tmp)


def write_video(
    frames: da.Array,
    path,
    fps,
    *,
    crf: int = 17,
    overwrite: bool = False,
    client=None,
    progress=None,
    attrs: dict | None = None,
):
    """Compute ``frames`` and write them to ``path`` (video file or ``.zarr`` store).

    Time blocks are computed in parallel (on ``client`` if given, else on the
    current Dask scheduler) and encoded in order; at most a few blocks are held
    at once, so memory does not grow with the video's length.  The output
    appears under its final name only when complete.

    Parameters
    ----------
    frames : dask.array.Array
        (T, H, W, 3) uint8 RGB, chunked by whole frames along time.
    path : str or Path
        ``.mp4``/``.mov`` (H.264), ``.avi``/``.mkv`` (FFV1, lossless) or ``.zarr``.
    fps : Fraction or float
        Frame rate written to the output.
    crf : int
        H.264 constant-rate factor.
    overwrite : bool
        Replace an existing output.
    client : distributed.Client, optional
    progress : callable, optional
        Called with the number of frames finished after each block.
    attrs : dict, optional
        Extra attributes for a ``.zarr`` output.
    """
    path = check_output(path, overwrite)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise UserError("frames must be a (T, H, W, 3) array")
    frames = frames.rechunk({1: -1, 2: -1, 3: -1})
    if path.suffix == STORE_SUFFIX:
        return _write_store(frames, path, fps, client, progress, attrs or {})
    _, height, width, _ = frames.shape
    writer = VideoWriter(path, fps, height, width, crf=crf)
    try:
        for block in iter_blocks(frames, client):
            writer.write(block)
            if progress:
                progress(len(block))
    except BaseException:
        writer.abort()
        raise
    writer.close()
    return path


def iter_blocks(frames: da.Array, client=None, window: int | None = None):
    """Yield the time blocks of ``frames`` as NumPy arrays, in order.

    Up to ``window`` blocks are computed at once (default: two per worker
    thread); the next is submitted as each one is handed out.
    """
    blocks = [b for b in frames.to_delayed().ravel()]
    if client is None:
        for block in blocks:
            yield np.asarray(block.compute())
        return
    if window is None:
        window = max(2, 2 * sum(client.nthreads().values()))
    pending = deque()
    submitted = 0
    while submitted < len(blocks) and len(pending) < window:
        pending.append(client.compute(blocks[submitted]))
        submitted += 1
    try:
        while pending:
            future = pending.popleft()
            result = future.result()
            del future
            if submitted < len(blocks):
                pending.append(client.compute(blocks[submitted]))
                submitted += 1
            yield np.asarray(result)
    finally:
        for future in pending:
            future.cancel()


def _write_store(frames, path, fps, client, progress, attrs):
    import zarr

    tmp = partial_path(path)
    _remove(tmp)
    chunks = (frames.chunks[0][0],) + frames.shape[1:]
    array = zarr.create_array(
        str(tmp), name=None, shape=frames.shape, chunks=chunks, dtype=np.uint8, overwrite=True
    )
    fps = Fraction(fps).limit_denominator(1_000_000)
    array.attrs.update({"fps": f"{fps.numerator}/{fps.denominator}", "frames": frames.shape[0], **attrs})
    try:
        frames = frames.rechunk({0: chunks[0]})
        stored = da.store(frames, array, lock=False, compute=False, return_stored=False)
        if client is not None:
            future = client.compute(stored)
            if progress:
                _watch(future, progress, frames.shape[0])
            future.result()
        else:
            stored.compute()
            if progress:
                progress(frames.shape[0])
    except BaseException:
        _remove(tmp)
        raise
    _finish(tmp, path)
    return path


def _watch(future, progress, total):
    from distributed import wait

    wait(future)
    progress(total)


def ingest(video, store, *, chunk_frames: int | None = None, overwrite: bool = False, client=None, progress=None):
    """Decode a video file into a chunked Zarr v3 store (streaming, in parallel).

    Parameters
    ----------
    video : str or Path or Video
        The video file (or an already opened :class:`Video`).
    store : str or Path
        Output ``.zarr`` path.  Chunks hold whole frames (~64 MiB each); the
        attributes record ``fps``, ``source``, ``frames`` and ``codec``.
    """
    if not isinstance(video, Video):
        video = open_video(video, chunk_frames=chunk_frames)
    store = Path(store)
    if store.suffix != STORE_SUFFIX:
        raise UserError(f"an ingested store must end in .zarr: {store}")
    attrs = {"source": str(video.info.path), "codec": video.info.codec}
    return write_video(
        video.frames, store, video.fps, overwrite=overwrite, client=client, progress=progress, attrs=attrs
    )
