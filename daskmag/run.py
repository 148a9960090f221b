"""The whole job, file to file: what ``daskmag magnify`` runs.

:class:`Job` groups the settings objects of :mod:`daskmag.settings`;
:func:`run_job` checks everything against the probed input
(:func:`daskmag.plan.plan_job`) before any work, builds the lazy graph and
writes the output.  :func:`magnify_file` is the same with flat keywords.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from .errors import UserError, warn
from .settings import (Band, ColourSettings, Execution, MotionSettings, OutputSettings, Selection,
                       mode_settings)


@dataclass(frozen=True)
class MagnifyResult:
    """What :func:`magnify_file` wrote."""

    output: Path
    n_frames: int
    width: int
    height: int
    fps: Fraction


@dataclass(frozen=True)
class Job:
    """One magnification, input to output, as validated settings objects.

    Parameters
    ----------
    source, output : str or Path
    settings : MotionSettings or ColourSettings
    band : Band
    selection, write, execution : Selection, OutputSettings, Execution
    """

    source: str | Path
    output: str | Path
    settings: MotionSettings | ColourSettings
    band: Band
    selection: Selection = field(default_factory=Selection)
    write: OutputSettings = field(default_factory=OutputSettings)
    execution: Execution = field(default_factory=Execution)

    def __post_init__(self):
        if not self.source:
            raise UserError("no input video given (daskmag magnify INPUT -o OUTPUT ...)")
        if not self.output:
            raise UserError("no output given (-o OUTPUT)")

    def to_dict(self) -> dict:
        """The job's settings as JSON-able values: what decides the output's content.

        Where and how fast it runs (workers, scheduler) and how the output is
        replaced (overwrite, restart) are left out: a resumed run may change them.
        """
        execution = self.execution.to_dict()
        return {
            "input": str(Path(self.source).absolute()),
            "mode": self.settings.mode,
            self.settings.mode: self.settings.to_dict(),
            "band": self.band.to_dict(),
            "selection": self.selection.to_dict(),
            "crf": self.write.crf,
            "blocks": {key: execution[key] for key in ("time_chunk", "tile")},
        }


def _progress_bar(total: int, show: bool):
    from tqdm import tqdm

    show = show and sys.stderr.isatty()
    return tqdm(total=total, unit="frame", disable=not show, file=sys.stderr, dynamic_ncols=True)


def progress_bar(total: int, show: bool = True):
    """A tqdm bar of frames on stderr (hidden when stderr is not a terminal or ``show`` is false)."""
    return _progress_bar(total, show)


def say_resuming(done: int, total: int):
    """Tell the user an interrupted run is being resumed."""
    print(f"resuming an interrupted run: {done} of {total} blocks are already done", file=sys.stderr)


def warn_variable_rate(info):
    """Say that a variable-frame-rate input is resampled (see :func:`daskmag.io.ffmpeg.read_frames`)."""
    if info.variable_frame_rate:
        warn(f"{info.path} has a variable frame rate; it is resampled by timestamp to "
             f"{float(info.fps):.6g} fps ({info.n_frames} frames from {info.stored_frames})")


def magnify_file(source, output, *, mode: str = "motion", alpha: float | None = None, low: float | None = None,
                 high: float | None = None, fps: float | None = None, taps: int | None = None,
                 pyramid=None, filter: str | None = None, order: int | None = None, causal: bool | None = None,
                 sigma: float | None = None, attenuate_other: bool | None = None, level: int | None = None,
                 chroma_attenuation: float | None = None, start=None, end=None, max_frames: int | None = None,
                 scale: float = 1.0, roi=None, on_corrupt: str = "stop", crf: int = 17, overwrite: bool = False,
                 restart: bool = False, workers: int | None = None, scheduler: str | None = None,
                 processes: bool = False, time_chunk: int | None = None, tile: int | None = None,
                 accel: str = "cpu", gpus=None, progress: bool = True, quiet: bool = False,
                 client=None) -> MagnifyResult:
    """Magnify motion (or colour) in a video file or ingested store and write the result.

    Every check on the input, the options and the output runs before any work
    starts; the output appears under its final name only when complete.

    Parameters
    ----------
    source, output : str or Path
        Input (video file or ``.zarr`` store) and output (``.mp4``/``.mov``
        H.264, ``.avi``/``.mkv`` FFV1, ``.zarr``).
    mode : {"motion", "colour"}
        Phase-based motion magnification (:class:`daskmag.settings.MotionSettings`:
        ``alpha, taps, pyramid, filter, order, causal, sigma, attenuate_other``)
        or linear colour magnification (:class:`daskmag.settings.ColourSettings`:
        ``alpha, level, chroma_attenuation, taps``).  A setting of the other
        mode is an error.
    low, high : float
        Temporal pass band, Hz.
    fps : float, optional
        The rate the footage was recorded at (default: the file's own rate).
        The output keeps the input's stored frame rate.
    start, end, max_frames, scale, roi, on_corrupt
        Which frames and pixels: :class:`daskmag.settings.Selection`.
    crf, overwrite, restart
        How the output is written: :class:`daskmag.settings.OutputSettings`.
    workers, scheduler, processes, time_chunk, tile
        Where and in what blocks it runs: :class:`daskmag.settings.Execution`.
    accel, gpus
        ``"cuda"``: the kernels run on GPUs (:mod:`daskmag.gpu`), on the
        devices ``gpus`` selects (a count or device numbers; default all).
    progress, quiet : bool
        Show a progress bar; do not print the dashboard link.
    client : distributed.Client, optional
        Use this client instead of starting a cluster.

    Returns
    -------
    MagnifyResult

    Raises
    ------
    UserError
        Any mistake in the input, the options or the output, before work
        starts; or an input that fails while it is read (a corrupt frame).
    """
    if isinstance(pyramid, str):
        from .kernels.pyramid import PyramidSpec

        pyramid = PyramidSpec(pyramid)
    settings = mode_settings(mode, alpha=alpha, taps=taps, pyramid=pyramid, filter=filter, order=order,
                             causal=causal, sigma=sigma, attenuate_other=attenuate_other, level=level,
                             chroma_attenuation=chroma_attenuation)
    job = Job(source, output, settings, Band(low, high, fps),
              Selection(start=start, end=end, max_frames=max_frames, scale=scale, roi=roi, on_corrupt=on_corrupt),
              OutputSettings(crf=crf, overwrite=overwrite, restart=restart),
              Execution(workers=workers, scheduler=scheduler, processes=processes, time_chunk=time_chunk,
                        tile=tile, device=accel, gpus=gpus))
    return run_job(job, progress=progress, quiet=quiet, client=client)


def preflight(job: Job, min_blocks: int = 1):
    """Probe the input and check the whole job against it, before any work.

    Returns
    -------
    reader : daskmag.io.Reader
    info : daskmag.io.VideoInfo
    plan : daskmag.plan.JobPlan
    output : Path

    Raises
    ------
    UserError
        The first problem found.
    """
    from .io import check_output, reader_for
    from .plan import plan_job

    if job.execution.device == "cuda":
        from .gpu import check_local_devices, check_opt_in

        check_opt_in()  # refuses while the GPU path is unverified, unless opted in
        if job.execution.scheduler is None:
            check_local_devices(job.execution.gpus)  # the scheduler's GPU workers are checked on connecting
    reader = reader_for(job.source, job.selection.on_corrupt)
    info = reader.probe()
    plan = plan_job(info, job.settings, job.band, job.selection, job.execution, min_blocks=min_blocks)
    output = check_output(job.output, job.write.overwrite)
    if output.resolve() == Path(info.path).resolve():
        raise UserError("the output would overwrite the input")
    return reader, info, plan, output


def run_job(job: Job, *, progress: bool = True, quiet: bool = False, client=None) -> MagnifyResult:
    """Run a :class:`Job`: check it, build the graph, write the output.

    Raises
    ------
    UserError
        As :func:`magnify_file`.
    """
    from .cluster import dask_client, worker_threads

    reader, info, _, output = preflight(job)  # everything that can be known without a cluster
    warn_variable_rate(info)

    def run(client):
        from .graph.region import in_region, scale_video
        from .io import write_video
        from .plan import plan_job

        threads = worker_threads(client)
        device = job.execution.device
        if device == "cuda":  # blocks shaped for the devices, from their free memory
            from .gpu import device_memory

            n_gpus, free = device_memory(client)
            plan_here = plan_job(info, job.settings, job.band, job.selection, job.execution, min_blocks=n_gpus,
                                 device_free=free, blocks_in_flight=max(4, 2 * threads))
            _setup_gpus(client, plan_here)
        else:
            plan_here = plan_job(info, job.settings, job.band, job.selection, job.execution, min_blocks=threads)
        band, settings = plan_here.band, job.settings
        execution = plan_here.execution or job.execution

        def magnify(video):
            if isinstance(settings, ColourSettings):
                from .graph.colour import magnify_colour

                return magnify_colour(video, low=band.low, high=band.high, fps=band.fps, settings=settings,
                                      time_chunk=execution.time_chunk, min_blocks=threads, device=device)
            from .graph.motion import magnify_motion
            from .plan import auto_tile

            return magnify_motion(video, low=band.low, high=band.high, fps=band.fps, settings=settings,
                                  time_chunk=execution.time_chunk, min_blocks=threads,
                                  tile=auto_tile(video.shape[1], video.shape[2], execution.tile), device=device)

        video = scale_video(reader.frames(info, plan_here.first, plan_here.stop), job.selection.scale)
        frames = magnify(video) if plan_here.roi is None else in_region(video, plan_here.roi, magnify)
        from .gpu import kernel_placement

        with _progress_bar(frames.shape[0], progress) as bar, kernel_placement(frames):
            write_video(frames, output, info.fps, crf=job.write.crf, overwrite=job.write.overwrite,
                        client=client, progress=bar.update, restart=job.write.restart, on_resume=say_resuming,
                        settings=job.to_dict())
        return MagnifyResult(output, frames.shape[0], frames.shape[2], frames.shape[1], info.fps)

    if client is not None:
        return run(client)
    if job.execution.device == "cuda":
        from .gpu import cuda_client

        with cuda_client(job.execution.gpus, job.execution.scheduler, quiet=quiet) as new_client:
            return run(new_client)
    with dask_client(job.execution.workers, job.execution.scheduler, processes=job.execution.processes,
                     quiet=quiet) as new_client:
        return run(new_client)


def _setup_gpus(client, plan):
    """Set the GPU workers up for this job's blocks (:class:`daskmag.gpu.GPUWorkerSetup`)."""
    from .gpu import fft_plan_count, setup_gpu_workers

    blocks = plan.blocks
    if blocks.pyramid is None:  # colour: no FFTs
        return setup_gpu_workers(client, 16)
    shape = (max(blocks.rows) + 2 * blocks.margin, max(blocks.cols) + 2 * blocks.margin)
    return setup_gpu_workers(client, fft_plan_count(shape, blocks.pyramid))
