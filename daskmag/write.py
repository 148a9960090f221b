"""Video output: parallel, resumable, never half-written.

Every time block of the result is encoded by its own task, on the workers,
into a *part* file (``.<name>.parts/000042.nut``) that appears only when
complete (written under a temporary name, then renamed).  When every part is
there, the parts are joined in order into the output by copying their
packets (no re-encoding), under a temporary name that is renamed at the end.

So encoding runs in parallel, memory stays bounded, and a run that is
killed keeps its finished parts: the same command run again computes only
the missing blocks (``manifest.json`` in the parts folder holds the Dask
token of the computation; a different computation is refused unless
``restart``).  A run that fails on a :class:`UserError` (a corrupt input
frame, say) could never finish, and leaves nothing.  A ``.zarr`` output is
written block by block in place, in chunk-aligned regions (no locks), with a
marker file per finished block.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from fractions import Fraction
from itertools import islice
from pathlib import Path

import dask
import dask.array as da
import numpy as np

from .errors import UserError
from .io import CODEC_THREADS, STORE_SUFFIX, Video, open_video

#: Output containers by extension: (container format, codec, pixel format).
ENCODERS = {
    ".mp4": ("mp4", "libx264", None),
    ".mov": ("mov", "libx264", None),
    ".avi": ("avi", "ffv1", "bgr0"),
    ".mkv": ("matroska", "ffv1", "bgr0"),
}
#: Container of the parts: FFmpeg's own, exact for any time base and codec.
PART_FORMAT = "nut"


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
    path = Path(path)
    return path.with_name(f".{path.stem}.partial{path.suffix}")


def parts_folder(path: Path) -> Path:
    """Where the finished blocks of an unfinished output are kept."""
    path = Path(path)
    return path.with_name(f".{path.name}.parts")


def _replace(tmp: Path, path: Path):
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


def _rate(fps) -> Fraction:
    return Fraction(fps).limit_denominator(1_000_000)


class VideoWriter:
    """Encode RGB uint8 frames to a file at an exact frame rate.

    ``.mp4``/``.mov``: H.264 (libx264) at constant quality ``crf`` (17 is
    visually lossless), 4:2:0 (4:4:4 for odd sizes), no B-frames so that
    parts join exactly; ``.avi``/``.mkv``: FFV1, lossless RGB.  The file is
    written under a temporary name and renamed by :meth:`close`.

    Parameters
    ----------
    path : Path
        The file to write.
    codec_of : str, optional
        Encode as for an output with this suffix (e.g. a ``.nut`` part of an
        ``.mp4`` output); default: ``path``'s own suffix.
    """

    def __init__(self, path, fps, height: int, width: int, crf: int = 17, codec_of: str | None = None):
        import av
        from av.video.reformatter import VideoReformatter

        self.path = Path(path)
        self.tmp = partial_path(self.path)
        container_format, codec, pix_fmt = ENCODERS[(codec_of or self.path.suffix).lower()]
        if codec_of is not None:
            container_format = PART_FORMAT
        rate = _rate(fps)
        options = {}
        if codec == "libx264":
            # 4:2:0 needs even sizes; odd-sized frames keep full chroma
            pix_fmt = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
            # "fast": the same quality at a given crf, a few % larger, half the time
            options = {"crf": str(int(crf)), "preset": "fast", "bframes": "0"}
        self.container = av.open(str(self.tmp), mode="w", format=container_format)
        self.stream = self.container.add_stream(codec, rate=rate, options=options)
        self.stream.width, self.stream.height, self.stream.pix_fmt = width, height, pix_fmt
        self.stream.codec_context.thread_count = CODEC_THREADS
        self.time_base = 1 / rate
        self.frames_written = 0
        # Frames are converted here: the encoder's own conversion starts and
        # stops a pool of scaler threads for every frame (CODEC_THREADS).
        self.reformatter = VideoReformatter()

    def write(self, frames: np.ndarray):
        """Append frames (n, H, W, 3) uint8 RGB."""
        import av

        width, height, pix_fmt = self.stream.width, self.stream.height, self.stream.pix_fmt
        for rgb in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            frame = self.reformatter.reformat(frame, width, height, pix_fmt, threads=CODEC_THREADS)
            frame.pts, frame.time_base = self.frames_written, self.time_base
            for packet in self.stream.encode(frame):
                self.container.mux(packet)
            self.frames_written += 1

    def close(self):
        """Flush the encoder and move the file to its final name."""
        for packet in self.stream.encode():
            self.container.mux(packet)
        self.container.close()
        _replace(self.tmp, self.path)

    def abort(self):
        """Drop the partial file."""
        try:
            self.container.close()
        except Exception:
            pass
        _remove(self.tmp)


def write_array(frames, path, fps, crf: int = 17, codec_of: str | None = None) -> int:
    """Encode an in-memory clip (T, H, W, 3) uint8 to ``path`` (replacing it)."""
    return _write_frames(frames, path, fps, frames.shape[1], frames.shape[2], crf, codec_of)


def _write_frames(frames, path, fps, height: int, width: int, crf: int, codec_of: str | None) -> int:
    """Encode an iterable of (H, W, 3) frames; the file appears only when complete."""
    writer = VideoWriter(path, fps, height, width, crf=crf, codec_of=codec_of)
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
    frame = np.empty((sum(heights), sum(widths), 3), dtype=np.uint8)
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
    frame.
    """
    import av

    rate = _rate(fps)
    tmp = partial_path(path)
    container_format = ENCODERS[path.suffix.lower()][0]
    frame = 0
    with av.open(str(tmp), mode="w", format=container_format) as out:
        stream = None
        for part in parts:
            with av.open(str(part)) as source:
                template = source.streams.video[0]
                if stream is None:
                    stream = out.add_stream_from_template(template)
                    stream.time_base = 1 / rate
                    stream.codec_context.time_base = 1 / rate
                    stream.codec_context.framerate = rate
                for packet in source.demux(template):
                    if packet.size == 0:
                        continue
                    packet.pts = packet.dts = frame
                    packet.duration = 1
                    packet.time_base = 1 / rate
                    packet.stream = stream
                    out.mux(packet)
                    frame += 1
    _replace(tmp, path)
    return frame


def _encode_part(tiles, part: str, fps, crf: int, suffix: str) -> int:
    height = sum(row[0].shape[1] for row in tiles)
    width = sum(tile.shape[2] for tile in tiles[0])
    return _write_frames(_assemble(tiles), Path(part), fps, height, width, crf, suffix)


def _store_part(block, store: str, offset: int, marker: str) -> int:
    import zarr

    array = zarr.open_array(store, mode="r+")
    array[offset : offset + len(block)] = np.asarray(block)
    Path(marker).touch()
    return len(block)


class _Parts:
    """The parts folder of one output: which blocks are done, for which computation."""

    def __init__(self, path: Path, token: str, chunks, restart: bool):
        self.folder = parts_folder(path)
        self.manifest = self.folder / "manifest.json"
        record = {"token": token, "chunks": list(chunks)}
        self.resuming = False
        if self.folder.exists():
            try:
                previous = json.loads(self.manifest.read_text())
            except (OSError, ValueError):
                previous = None
            if restart or previous is None:
                _remove(self.folder)
            elif previous != record:
                raise UserError(
                    f"{self.folder} holds an unfinished run with other settings or input; "
                    f"use --restart to discard it"
                )
            else:
                self.resuming = True
        self.folder.mkdir(exist_ok=True)
        self.manifest.write_text(json.dumps(record))

    def done(self, index: int, name: str) -> bool:
        return (self.folder / name.format(index)).exists()


def write_video(frames: da.Array, path, fps, *, crf: int = 17, overwrite: bool = False, client=None,
                progress=None, attrs: dict | None = None, restart: bool = False, on_resume=None):
    """Compute ``frames`` and write them to ``path`` (video file or ``.zarr`` store).

    Each time block is computed and encoded by its own task (on ``client``'s
    cluster if given, else the current Dask scheduler); the output appears
    under its final name only when complete.  If an earlier run of the same
    computation was interrupted, only its missing blocks are computed.

    Parameters
    ----------
    frames : dask.array.Array
        (T, H, W, 3) uint8 RGB, chunked along time (each chunk is one block).
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
        Called with the number of frames of each finished block.
    attrs : dict, optional
        Extra attributes for a ``.zarr`` output.
    restart : bool
        Discard the finished blocks of an interrupted run instead of resuming.
    on_resume : callable, optional
        Called with (blocks already done, total blocks) when resuming.
    """
    path = check_output(path, overwrite).absolute()  # parts are written by the workers
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise UserError("frames must be a (T, H, W, 3) array")
    frames = frames.rechunk({3: -1})
    chunks = frames.chunks[0]
    offsets = np.concatenate([[0], np.cumsum(chunks)[:-1]]).astype(int)
    parts = _Parts(path, frames.name, chunks, restart)
    if path.suffix == STORE_SUFFIX:
        blocks = frames.rechunk({1: -1, 2: -1}).to_delayed().ravel()
        store = _open_store(path, frames, fps, attrs or {}, resume=parts.resuming)
        name = "done-{:06d}"
        tasks = {
            i: dask.delayed(_store_part)(blocks[i], str(store), int(offsets[i]), str(parts.folder / name.format(i)))
            for i in range(len(blocks)) if not parts.done(i, name)
        }
    else:
        # spatial tiles go to the encoder as they are: no whole-frame block
        tiles = frames.to_delayed()[..., 0]
        name = "{:06d}." + PART_FORMAT
        tasks = {
            i: dask.delayed(_encode_part)(tiles[i].tolist(), str(parts.folder / name.format(i)), fps, crf,
                                          path.suffix)
            for i in range(len(chunks)) if not parts.done(i, name)
        }
    done = len(chunks) - len(tasks)
    if done and on_resume:
        on_resume(done, len(chunks))
    if progress and done:
        progress(int(sum(chunks[i] for i in range(len(chunks)) if i not in tasks)))
    try:
        _run(tasks, chunks, client, progress)
    except UserError:
        # the input cannot give these frames (a corrupt frame, a changed
        # file): this computation can never finish, so its parts are useless
        _remove(parts.folder)
        _remove(partial_path(path))
        raise
    if path.suffix == STORE_SUFFIX:
        _replace(partial_path(path), path)
    else:
        join_parts([parts.folder / name.format(i) for i in range(len(chunks))], path, fps)
    _remove(parts.folder)
    return path


def _run(tasks: dict, chunks, client, progress, window: int | None = None):
    """Compute the block tasks, reporting each finished block.

    At most ``window`` blocks (default: two per worker thread, at least 4)
    are submitted at once, in order, and the next one as each finishes: the
    scheduler never holds more than a few blocks' inputs and results, so
    memory does not grow with the number of blocks.
    """
    if not tasks:
        return
    if client is None:
        for index, task in tasks.items():
            task.compute()
            if progress:
                progress(chunks[index])
        return
    from distributed import as_completed

    if window is None:
        window = max(4, 2 * sum(client.nthreads().values()))
    pending = iter(tasks.items())
    index_of = {}

    def submit(count):
        batch = list(islice(pending, count))
        futures = client.compute([task for _, task in batch]) if batch else []
        for future, (index, _) in zip(futures, batch):
            index_of[future.key] = index
        return futures

    running = as_completed(submit(window))
    try:
        for future in running:
            future.result()  # raises the task's error, if any
            if progress:
                progress(chunks[index_of[future.key]])
            running.update(submit(1))
    except BaseException:
        for future in list(running.futures):
            future.cancel()
        raise


def _open_store(path: Path, frames: da.Array, fps, attrs: dict, resume: bool):
    """The partial Zarr store of ``path``: created, or reopened to resume.

    Its chunks divide every block's start, so each block writes whole chunks
    of its own (the last block may also write a trailing partial chunk): no
    two tasks ever write the same chunk, and no lock is needed.
    """
    import math

    import zarr

    tmp = partial_path(path)
    lengths = frames.chunks[0]
    step = math.gcd(*lengths[:-1]) if len(lengths) > 1 else lengths[0]
    chunks = (step,) + frames.shape[1:]
    if resume and tmp.exists():
        array = zarr.open_array(str(tmp), mode="r+")
        if array.shape == frames.shape and array.chunks == chunks:
            return tmp
    _remove(tmp)
    array = zarr.create_array(str(tmp), shape=frames.shape, chunks=chunks, dtype=np.uint8)
    rate = _rate(fps)
    array.attrs.update({"fps": f"{rate.numerator}/{rate.denominator}", "frames": frames.shape[0], **attrs})
    return tmp


def ingest(video, store, *, chunk_frames: int | None = None, overwrite: bool = False, client=None,
           progress=None):
    """Decode a video file into a chunked Zarr v3 store (streaming, in parallel).

    Parameters
    ----------
    video : str or Path or Video
        The video file (or an already opened :class:`~daskmag.io.Video`).
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
    return write_video(video.frames, store, video.fps, overwrite=overwrite, client=client, progress=progress,
                       attrs=attrs)
