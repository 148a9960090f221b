"""The whole job, file to file: what ``daskmag magnify`` runs."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import UserError, warn

if TYPE_CHECKING:  # the heavy modules load when a job runs, not on import
    from .pyramid import PyramidSpec


@dataclass(frozen=True)
class MagnifyResult:
    """What :func:`magnify_file` wrote."""

    output: Path
    n_frames: int
    width: int
    height: int
    fps: Fraction


def _progress_bar(total: int, show: bool):
    from tqdm import tqdm

    show = show and sys.stderr.isatty()
    return tqdm(total=total, unit="frame", disable=not show, file=sys.stderr, dynamic_ncols=True)


def _say_resuming(done: int, total: int):
    print(f"resuming an interrupted run: {done} of {total} blocks are already done", file=sys.stderr)


def warn_variable_rate(info):
    """Say that a variable-frame-rate input is resampled (see :func:`daskmag.io.read_frames`)."""
    if info.variable_frame_rate:
        warn(f"{info.path} has a variable frame rate; it is resampled by timestamp to "
             f"{float(info.fps):.6g} fps ({info.n_frames} frames from {info.stored_frames})")


def magnify_file(source, output, *, alpha: float, low: float, high: float, fps: float | None = None,
                 taps: int | None = None, pyramid: PyramidSpec | None = None,
                 max_frames: int | None = None, workers: int | None = None,
                 scheduler: str | None = None, crf: int = 17, time_chunk: int | None = None,
                 overwrite: bool = False, restart: bool = False, progress: bool = True,
                 quiet: bool = False, client=None, mode: str = "motion", level: int = 4,
                 chroma_attenuation: float = 1.0, tile: int | None = None, start=None, end=None,
                 scale: float = 1.0, roi=None, on_corrupt: str = "stop", filter: str = "fir",
                 order: int = 2, causal: bool = False, sigma: float = 0.0,
                 attenuate_other: bool = False, processes: bool = False) -> MagnifyResult:
    """Magnify motion in a video file (or ingested store) and write the result.

    Every check on the input, the options and the output runs before any work
    starts; the output appears under its final name only when complete.

    Parameters
    ----------
    source, output : str or Path
    alpha, low, high, fps, taps
        As :func:`daskmag.magnify_motion`; ``fps`` is the rate the footage was
        filmed at (default: the file's own rate).  The output keeps the
        input's stored frame rate.
    pyramid : PyramidSpec, optional
        Spatial decomposition, as :func:`daskmag.magnify_motion` (default:
        octave bandwidth, 4 orientations).
    max_frames : int, optional
        Process at most this many frames (from ``start``).
    start, end : int or str, optional
        Process and write only frames ``[start, end)``: frame numbers (``120``)
        or seconds of the stored file's time line (``"2.5s"``, the first frame
        at or after that time), see :func:`daskmag.region.frame_range`.
    scale : float
        Process and write frames resized by this factor (0 < scale <= 1),
        as MIT's ``scaleVideo``: :func:`daskmag.region.scale_video`.
    roi : (x, y, w, h) or str "x,y,w,h", optional
        Magnify only this region, in pixels of the *input* frame (scaled with
        the frames); the rest is the input's, blended over a 16-pixel
        feather inside the region's border (:func:`daskmag.region.in_region`).
    workers, scheduler
        Local worker processes, or the address of a running scheduler.
    mode : {"motion", "colour"}
        Phase-based motion magnification, or linear colour magnification
        (:func:`daskmag.colour.magnify_colour`, with ``level`` and
        ``chroma_attenuation``).
    tile : int, optional
        Spatial tile size in pixels (0: whole frames; default: 512 for frames
        of more than 1024 x 1024 pixels, see :func:`daskmag.magnify.auto_tile`).
    filter, order, causal, sigma, attenuate_other
        Motion mode's temporal filter, phase smoothing and removal of motion
        outside the band, as :func:`daskmag.magnify_motion`.
    restart : bool
        Discard the finished blocks of an interrupted run of the same output
        instead of resuming it (by default a re-run computes only the blocks
        that are missing).
    on_corrupt : {"stop", "repeat"}
        A frame of the input that cannot be decoded stops the run with an
        error naming it, or is replaced by the previous frame with a warning
        (:func:`daskmag.io.read_frames`).  A variable-frame-rate input is
        resampled to its average rate, with a warning.
    processes : bool
        Local workers as separate processes instead of threads of this one.
    client : distributed.Client, optional
        Use this client instead of starting a cluster.
    """
    from .cluster import dask_client, worker_threads
    from .io import check_on_corrupt, open_video, probe
    from .write import check_output, write_video
    from .magnify import auto_tile, check_band, check_controls, magnify_motion
    from .region import check_roi, check_scale, frame_range, in_region, region_box, scale_roi, scale_video

    info = probe(source)
    first, stop = frame_range(info.n_frames, info.fps, start, end, max_frames)
    height, width = check_scale(scale, info.height, info.width)
    if roi is not None:
        roi = scale_roi(check_roi(roi, info.height, info.width), scale)
        rows, cols = region_box(roi, height, width)  # what the pyramid sees
        height, width = rows.stop - rows.start, cols.stop - cols.start
    output = check_output(output, overwrite)
    if output.resolve() == Path(info.path).resolve():
        raise UserError("the output would overwrite the input")
    rate = float(info.fps) if fps is None or fps == -1 else float(fps)
    check_band(alpha, low, high, rate, taps)
    check_controls(filter, order, causal, sigma, taps)
    if mode not in ("motion", "colour"):
        raise UserError(f"unknown mode {mode!r}: use motion or colour")
    if mode == "colour":
        from .colour import check_colour, magnify_colour

        check_colour(level, chroma_attenuation, height, width)
    elif min(height, width) < 16:
        raise UserError(f"frames of {width}x{height} (as processed, after any --scale and --roi) are too "
                        f"small for a pyramid (need 16x16)")

    check_on_corrupt(on_corrupt)
    warn_variable_rate(info)

    def run(client):
        def magnify(video):
            if mode == "colour":
                return magnify_colour(video, alpha, low, high, rate, level=level,
                                      chroma_attenuation=chroma_attenuation, taps=taps,
                                      time_chunk=time_chunk, min_blocks=worker_threads(client))
            return magnify_motion(video, alpha, low, high, rate, taps=taps, pyramid=pyramid,
                                  time_chunk=time_chunk, min_blocks=worker_threads(client),
                                  tile=auto_tile(height, width, tile), filter=filter, order=order,
                                  causal=causal, sigma=sigma, attenuate_other=attenuate_other)

        video = scale_video(open_video(source, start=first, end=stop, on_corrupt=on_corrupt).frames, scale)
        frames = magnify(video) if roi is None else in_region(video, roi, magnify)
        with _progress_bar(frames.shape[0], progress) as bar:
            write_video(frames, output, info.fps, crf=crf, overwrite=overwrite, client=client,
                        progress=bar.update, restart=restart, on_resume=_say_resuming)
        return MagnifyResult(output, frames.shape[0], frames.shape[2], frames.shape[1], info.fps)

    if client is not None:
        return run(client)
    with dask_client(workers, scheduler, processes=processes, quiet=quiet) as new_client:
        return run(new_client)
