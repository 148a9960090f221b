"""The whole job, file to file: what ``daskmag magnify`` runs."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import UserError

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


def magnify_file(source, output, *, alpha: float, low: float, high: float, fps: float | None = None,
                 taps: int | None = None, pyramid: PyramidSpec | None = None,
                 max_frames: int | None = None, workers: int | None = None,
                 scheduler: str | None = None, crf: int = 17, time_chunk: int | None = None,
                 overwrite: bool = False, progress: bool = True, quiet: bool = False,
                 client=None) -> MagnifyResult:
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
        Process only the first frames.
    workers, scheduler
        Local worker processes, or the address of a running scheduler.
    client : distributed.Client, optional
        Use this client instead of starting a cluster.
    """
    from .cluster import dask_client, worker_threads
    from .io import check_output, open_video, probe, write_video
    from .magnify import check_band, magnify_motion

    if max_frames is not None and max_frames < 1:
        raise UserError(f"--max-frames must be at least 1, got {max_frames}")
    info = probe(source)
    output = check_output(output, overwrite)
    if output.resolve() == Path(info.path).resolve():
        raise UserError("the output would overwrite the input")
    rate = float(info.fps) if fps is None or fps == -1 else float(fps)
    check_band(alpha, low, high, rate, taps)

    def run(client):
        video = open_video(source, max_frames=max_frames)
        frames = magnify_motion(video, alpha, low, high, rate, taps=taps, pyramid=pyramid,
                                time_chunk=time_chunk, min_blocks=worker_threads(client))
        with _progress_bar(frames.shape[0], progress) as bar:
            write_video(frames, output, info.fps, crf=crf, overwrite=overwrite, client=client,
                        progress=bar.update)
        return MagnifyResult(output, frames.shape[0], info.width, info.height, info.fps)

    if client is not None:
        return run(client)
    with dask_client(workers, scheduler, quiet=quiet) as new_client:
        return run(new_client)
