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
from .settings import (DEFAULT_CRF, Band, ColourSettings, Execution, MotionSettings, OutputSettings, Selection,
                       mode_settings)


@dataclass(frozen=True)
class MagnifyResult:
    """What :func:`magnify_file` wrote; ``fps`` is the output's playback rate."""

    output: Path
    n_frames: int
    width: int
    height: int
    fps: Fraction
    #: The recording rate the filters used.
    recording_fps: Fraction | None = None


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
            "side_by_side": self.write.side_by_side,
            **({"playback_fps": self.write.playback_fps} if self.write.playback_fps else {}),
            "blocks": {key: execution[key] for key in ("time_chunk", "tile")},
        }


def progress_bar(total: int, show: bool = True):
    """A tqdm bar of frames on stderr (hidden when stderr is not a terminal or ``show`` is false)."""
    from tqdm import tqdm

    show = show and sys.stderr.isatty()
    return tqdm(total=total, unit="frame", disable=not show, file=sys.stderr, dynamic_ncols=True)


def say_resuming(done: int, total: int):
    """Tell the user an interrupted run is being resumed."""
    print(f"resuming an interrupted run: {done} of {total} blocks are already done", file=sys.stderr)


def warn_variable_rate(info):
    """Warn about how the input's frames are read: timing, streams, depth (:func:`daskmag.io.base.warn_input`)."""
    from .io.base import warn_input

    warn_input(info)


def describe_settings(settings, band) -> str:
    """A short label of what was done, e.g. ``"motion x21 (alpha 20), 72-92 Hz"``."""
    mode = "colour" if isinstance(settings, ColourSettings) else "motion"
    return f"{mode} alpha {settings.alpha:g}, {band.low:g}-{band.high:g} Hz at {band.fps:g} fps"


def magnify_file(source, output, *, mode: str = "motion", alpha: float | None = None, low: float | None = None,
                 high: float | None = None, fps: float | None = None, taps: int | None = None,
                 pyramid=None, filter: str | None = None, order: int | None = None, causal: bool | None = None,
                 sigma: float | None = None, attenuate_other: bool | None = None, decimate=None,
                 level: int | None = None,
                 chroma_attenuation: float | None = None, start=None, end=None, max_frames: int | None = None,
                 scale: float = 1.0, roi=None, on_corrupt: str = "stop", stream: int | None = None,
                 timing: str = "keep", crf: float = DEFAULT_CRF, playback_fps: float | None = None, overwrite: bool = False,
                 restart: bool = False, side_by_side: bool = False, workers: int | None = None,
                 scheduler: str | None = None,
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
        ``alpha, taps, pyramid, filter, order, causal, sigma, attenuate_other, decimate``)
        or linear colour magnification (:class:`daskmag.settings.ColourSettings`:
        ``alpha, level, chroma_attenuation, taps``).  A setting of the other
        mode is an error.
    low, high : float
        Temporal pass band, Hz.
    fps : float, optional
        The rate the footage was recorded at (default: the file's own rate;
        required for image sequences, which record none).
    playback_fps : float, optional
        The rate the output plays at (default: the input's stored rate; 30
        for raw camera files and image sequences).
    start, end, max_frames, scale, roi, on_corrupt, stream, timing
        Which frames and pixels: :class:`daskmag.settings.Selection`.
    crf, overwrite, restart, side_by_side
        How the output is written: :class:`daskmag.settings.OutputSettings`
        (``side_by_side``: the input and the result next to each other, labelled).
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
                             chroma_attenuation=chroma_attenuation, decimate=decimate)
    job = Job(source, output, settings, Band(low, high, fps),
              Selection(start=start, end=end, max_frames=max_frames, scale=scale, roi=roi, on_corrupt=on_corrupt,
                        stream=stream, timing=timing),
              OutputSettings(crf=crf, overwrite=overwrite, restart=restart, side_by_side=side_by_side,
                             playback_fps=playback_fps),
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
    from .io.encode import check_rate
    from .plan import plan_job

    if job.execution.device == "cuda":
        from .gpu import check_local_devices, check_opt_in

        check_opt_in()  # refuses while the GPU path is unverified, unless opted in
        if job.execution.scheduler is None:
            check_local_devices(job.execution.gpus)  # the scheduler's GPU workers are checked on connecting
    reader = reader_for(job.source, job.selection.on_corrupt, stream=job.selection.stream,
                        timing=job.selection.timing, fps=job.band.fps)
    info = with_recording_rate(reader.probe(), job.band.fps)
    plan = plan_job(info, job.settings, job.band, job.selection, job.execution, min_blocks=min_blocks)
    output = check_output(job.output, job.write.overwrite)
    # a container that cannot store the output's (playback) rate: refused before any work
    check_rate(output, job.write.playback_fps or info.playback_rate)
    if output.resolve() == Path(info.path).resolve():
        raise UserError("the output would overwrite the input")
    reach = max(plan.blocks.halo_before, plan.blocks.halo_after)  # after every refusal: one line for those
    _warn_short_filter(job.settings, plan.band)
    if reach > plan.stop - plan.first:
        warn(f"the {plan.band.low:g}-{plan.band.high:g} Hz filter reaches {reach} frames each side of a "
             f"{plan.stop - plan.first}-frame clip: the clip's ends are continued by prediction over more than "
             f"the clip itself, which is less certain and slower (a longer clip or a wider band helps)")
    return reader, info, plan, output


def _warn_short_filter(settings, band):
    """A ``--taps`` far below the default length cannot tell the band from its
    neighbourhood: say so (the run goes on; a short filter may be wanted)."""
    from .kernels.temporal import default_taps

    taps = getattr(settings, "taps", None)
    if not taps or getattr(settings, "filter", "fir") not in ("fir", "window"):
        return
    default = default_taps(band.low, band.high, band.fps)
    if taps < default // 4:
        warn(f"--taps {taps} is short for {band.low:g}-{band.high:g} Hz at {band.fps:g} fps: it resolves "
             f"about {band.fps / taps:.3g} Hz, so motion well outside the band is magnified too "
             f"(the default is {default} taps)")


def job_frames(job: Job, reader, info, threads: int = 1, client=None):
    """The lazy (T, H, W, C) result of a checked job (:func:`preflight`'s ``reader`` and ``info``).

    ``threads`` (the cluster's worker threads) sets the least number of time
    blocks, so that a short clip still keeps every worker busy.  With
    ``--accel cuda`` the blocks are shaped for the devices of ``client``'s
    cluster (:mod:`daskmag.gpu`).

    Raises
    ------
    UserError
        ``--accel cuda`` without a client.
    """
    from .graph.region import in_region, scale_video
    from .plan import plan_job

    device = job.execution.device
    if device == "cuda":  # blocks shaped for the devices, from their free memory
        from .gpu import device_memory

        if client is None:
            raise UserError("--accel cuda needs a cluster with GPU workers")
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

        if settings.decimate:
            from .graph.highrate import decimation_factor, magnify_motion_decimated

            factor = settings.decimate
            if factor == "auto":
                factor = decimation_factor(band.high, band.fps)
            return magnify_motion_decimated(video, low=band.low, high=band.high, fps=band.fps,
                                            settings=settings, factor=factor, min_blocks=threads)

        return magnify_motion(video, low=band.low, high=band.high, fps=band.fps, settings=settings,
                              time_chunk=execution.time_chunk, min_blocks=threads,
                              tile=execution.tile, device=device)

    read_chunk, longest = _read_chunks(job, reader, info, plan_here, threads, device)
    video = scale_video(reader.frames(info, plan_here.first, plan_here.stop, read_chunk, key_aligned=True,
                                      longest=longest), job.selection.scale)
    frames = magnify(video) if plan_here.roi is None else in_region(video, plan_here.roi, magnify)
    if job.write.side_by_side:
        from .graph.compare import side_by_side

        frames = side_by_side(video, frames, "input", describe_settings(settings, band))
    return frames


def _read_chunks(job: Job, reader, info, plan, threads: int, device: str) -> tuple[int | None, int | None]:
    """``(chunk_frames, longest)`` of the read tasks (:meth:`daskmag.io.Reader.frames`).

    For the staged motion graph: its chunk, and no read longer, where the
    source's key frames are at most that far apart (or every frame is one):
    each read then serves one chunk (:func:`daskmag.plan.follow_chunks`).
    ``(None, None)`` (the reader's defaults: reads start on key frames, up
    to four default chunks long, and the graph rechunks them) where the
    graph is not staged or the key frames are sparser (a phone's 1-2 s
    groups of pictures, a clip with one key frame).
    """
    settings = job.settings
    if isinstance(settings, ColourSettings) or settings.decimate:
        return None, None
    import numpy as np

    from .graph.motion import staged_chunk_frames
    from .plan import region_box

    height, width = plan.height, plan.width
    if plan.roi is not None:
        rows, cols = region_box(plan.roi, height, width)
        height, width = rows.stop - rows.start, cols.stop - cols.start
    execution = plan.execution or job.execution
    shape = (plan.stop - plan.first, height, width, info.channels)
    chunk = staged_chunk_frames(shape, np.dtype(info.dtype).itemsize, settings, plan.band,
                                time_chunk=execution.time_chunk, tile=execution.tile, min_blocks=threads,
                                device=device)
    if chunk is None:
        return None, None
    keys = reader.key_frames()
    dense = keys is None or (len(keys) > 1 and np.median(np.diff(keys)) <= chunk)
    return (chunk, chunk) if dense else (None, None)


def with_recording_rate(info, fps):
    """``info`` with the recording rate ``fps`` where the source records none.

    Raises
    ------
    UserError
        Neither the source nor ``fps`` gives a rate (image sequences).
    """
    import dataclasses

    if info.fps:
        return info
    if not fps or fps <= 0:
        raise UserError(f"{info.path} records no frame rate: give the recording rate with --fps")
    from .io.output import exact_rate

    return dataclasses.replace(info, fps=exact_rate(fps))


def view_bits(reader, info, samples: int = 8) -> int:
    """Significant bits of 16-bit footage, measured on a few frames (8 to 16).

    12-bit data in 16-bit words (most high-speed cameras) would look almost
    black if scaled from 16 bits: the 8-bit view of an H.264 output is scaled
    from the smallest depth that holds the brightest sample of ``samples``
    frames spread over the clip (the clip's end, too).
    """
    import numpy as np

    picks = sorted({int(round(k)) for k in np.linspace(0, info.n_frames - 1, min(samples, info.n_frames))})
    brightest = max(int(reader.read(k, k + 1).max()) for k in picks)
    return int(min(16, max(8, brightest.bit_length())))


def output_rates(job: Job, reader, info, plan, output):
    """The output's playback rate, the recording rate, and the attributes written with it.

    Says in one warning when 16-bit samples are scaled to an 8-bit view.

    Returns
    -------
    playback, recording : Fraction
    attrs : dict
        ``bits`` and ``recording_fps`` (Zarr attributes; ``bits`` also sets
        the 8-bit view's scale).
    """
    from .io.encode import keeps_depth

    playback = Fraction(job.write.playback_fps).limit_denominator(1_000_000) if job.write.playback_fps \
        else info.playback_rate
    recording = Fraction(plan.band.fps).limit_denominator(1_000_000)
    attrs = {"bits": info.bits, "recording_fps": f"{recording.numerator}/{recording.denominator}"}
    if info.sample_aspect_ratio is not None and not job.write.side_by_side:
        sar = Fraction(info.sample_aspect_ratio)
        attrs["sample_aspect_ratio"] = f"{sar.numerator}/{sar.denominator}"
    if info.dtype != "uint8" and not keeps_depth(output):
        attrs["bits"] = bits = view_bits(reader, info)
        warn(f"{output.suffix} is 8-bit H.264 for viewing: {bits}-bit samples (0..{2**bits - 1}) are scaled "
             f"to 0..255; write .mkv, .avi, .zarr or out/%06d.tif to keep {info.bits} bits")
    return playback, recording, attrs


#: A local run serves the Dask dashboard by default when its frames hold at
#: least this many pixels (about a minute of work on two cores, or more):
#: starting it (Bokeh) costs ~1 s and ~0.6 CPU-s, a large share of a short clip.
DASHBOARD_PIXEL_FRAMES = 2**28


def default_dashboard(n_frames: int, height: int, width: int) -> bool:
    """Whether a local run of ``n_frames`` frames of ``height`` x ``width`` serves the dashboard by default."""
    return n_frames * height * width >= DASHBOARD_PIXEL_FRAMES


def run_job(job: Job, *, progress: bool = True, quiet: bool = False, client=None,
            dashboard: bool | None = None) -> MagnifyResult:
    """Run a :class:`Job`: check it, build the graph, write the output.

    ``dashboard``: serve the local cluster's dashboard (:func:`daskmag.cluster.dask_client`);
    default: for jobs of at least :data:`DASHBOARD_PIXEL_FRAMES` pixel-frames.

    Raises
    ------
    UserError
        As :func:`magnify_file`.
    """
    from .cluster import dask_client, worker_threads

    reader, info, plan, output = preflight(job)  # everything that can be known without a cluster
    if dashboard is None:
        dashboard = default_dashboard(plan.stop - plan.first, plan.height, plan.width)
    warn_variable_rate(info)
    playback, recording, attrs = output_rates(job, reader, info, plan, output)

    def run(client):
        from .io import write_video

        frames = job_frames(job, reader, info, worker_threads(client), client=client)
        from .gpu import kernel_placement

        with progress_bar(frames.shape[0], progress) as bar, kernel_placement(frames):
            write_video(frames, output, playback, crf=job.write.crf, overwrite=job.write.overwrite,
                        client=client, progress=bar.update, restart=job.write.restart, on_resume=say_resuming,
                        settings=job.to_dict(), attrs=attrs)
        return MagnifyResult(output, frames.shape[0], frames.shape[2], frames.shape[1], playback, recording)

    if client is not None:
        return run(client)
    if job.execution.device == "cuda":
        from .gpu import cuda_client

        with cuda_client(job.execution.gpus, job.execution.scheduler, quiet=quiet) as new_client:
            return run(new_client)
    with dask_client(job.execution.workers, job.execution.scheduler, processes=job.execution.processes,
                     quiet=quiet, dashboard=dashboard) as new_client:
        return run(new_client)


def _setup_gpus(client, plan):
    """Set the GPU workers up for this job's blocks (:class:`daskmag.gpu.GPUWorkerSetup`)."""
    from .gpu import fft_plan_count, setup_gpu_workers

    blocks = plan.blocks
    if blocks.pyramid is None:  # colour: no FFTs
        return setup_gpu_workers(client, 16)
    shape = (max(blocks.rows) + 2 * blocks.margin, max(blocks.cols) + 2 * blocks.margin)
    return setup_gpu_workers(client, fft_plan_count(shape, blocks.pyramid))
