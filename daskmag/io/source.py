"""Open any source as a lazy Dask array: :func:`open_video`, :func:`probe`."""

from __future__ import annotations

from pathlib import Path

from ..settings import frame_range
from .base import Video, VideoInfo, reader_for


def probe(path, on_corrupt: str = "stop", *, stream: int | None = None, timing: str | None = None,
          fps=None) -> VideoInfo:
    """Frames, size, frame rate, codec and samples of any source a reader takes.

    Parameters
    ----------
    path : str or Path
        A video file (anything FFmpeg reads) or a store made by :func:`daskmag.ingest`.
    stream, timing, fps : optional
        Which video stream, the rule for a variable rate, the rate of a
        stream without timestamps (:func:`daskmag.io.ffmpeg.probe`).

    Returns
    -------
    VideoInfo

    Raises
    ------
    UserError
        The source is missing, unreadable or has no frames.
    """
    return reader_for(path, on_corrupt, stream=stream, timing=timing, fps=fps).probe()


def open_video(path, chunk_frames: int | None = None, max_frames: int | None = None,
               on_corrupt: str = "stop", *, start=None, end=None, stream: int | None = None,
               timing: str | None = None, fps=None) -> Video:
    """Open a video file or an ingested ``.zarr`` store as a lazy Dask array.

    Parameters
    ----------
    path : str or Path
        A video file (anything FFmpeg reads), a store made by
        :func:`daskmag.ingest`, a camera file (``.cih``/``.cihx``/``.mraw``,
        ``.cine``) or an image sequence (a folder, ``NAME%06d.tif``, a glob).
    chunk_frames : int, optional
        Frames per chunk (default: ~64 MiB per chunk).  For a file, each chunk
        is decoded by its own task.
    max_frames : int, optional
        Keep only the first ``max_frames`` frames (from ``start``).
    start, end : int or str, optional
        Keep frames ``[start, end)`` only: frame numbers, or seconds of the
        stored time line as ``"2.5s"`` (:func:`daskmag.settings.frame_index`).
        Only those frames are decoded.
    on_corrupt : {"stop", "repeat"}
        What to do with a frame that cannot be decoded: raise a
        :class:`~daskmag.errors.UserError` naming it, or show the previous
        frame in its place (see :func:`daskmag.io.ffmpeg.read_frames`).
    stream, timing, fps : optional
        Which video stream, the rule for a variable rate (``"keep"`` every
        frame, the default, or ``"resample"``), and the rate of a stream
        without timestamps (:func:`daskmag.io.ffmpeg.probe`).

    Returns
    -------
    Video
        ``frames``, a (T, H, W, C) Dask array (uint8 RGB for ordinary video;
        mono ``C = 1`` and uint16 where the source has them), and ``fps``
        (0 for an image sequence, which records no rate).  A
        variable-frame-rate file keeps every stored frame once, in order, at
        its average rate (``info.variable_frame_rate`` is set).

    Raises
    ------
    UserError
        A missing or unreadable source, or a range outside it.
    """
    # absolute: workers may run in another folder
    reader = reader_for(Path(path), on_corrupt, stream=stream, timing=timing, fps=fps)
    info = reader.probe()
    first, stop = frame_range(info.n_frames, info.fps, start, end, max_frames)
    return Video(reader.frames(info, first, stop, chunk_frames), info.fps, info)
