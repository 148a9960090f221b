"""The ``daskmag`` command line: magnify, ingest, info, demo.

A user's mistake ends with one line on stderr and exit status 2, never a
traceback; an interrupted run leaves no half-written output.
"""

from __future__ import annotations

import argparse
import glob
import sys
from fractions import Fraction
from pathlib import Path

from .errors import UserError

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (no usage dump)."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _whole(text):
    """A whole number; its range is checked by the settings objects (one line, exit 2)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    return value


def _number(text):
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    # imported here, not at the top: main() tunes the process before NumPy loads
    from .kernels.pyramid import PYRAMID_KINDS
    from .kernels.temporal import DEFAULT_WINDOW, FILTER_KINDS
    from .measure.cli import add_parser as add_measure_parser
    from .settings import CRF_RANGE, DEFAULT_CRF

    parser = _Parser(
        prog="daskmag",
        description="Phase-based video motion magnification on Dask (Wadhwa et al. 2013).",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    mag = sub.add_parser(
        "magnify",
        help="magnify small motions in a video",
        description=(
            "Magnify motion in a temporal frequency band. Motion in the band becomes "
            "(1 + alpha) times as large; colour is kept and every frame is written. "
            "The predecessor script's flags (-v -s -a -lo -ho -ws -mf -f -t -acc) work too."
        ),
    )
    mag.add_argument("input", nargs="?",
                     help="video file, ingested .zarr store, camera file (.cih/.cihx/.mraw, .cine), or an "
                          "image sequence: a folder, a pattern (NAME%%06d.tif) or a glob ('NAME*.png')")
    mag.add_argument("-v", "--video_path", dest="video_path", help="same as INPUT (predecessor flag)")
    mag.add_argument("-o", "--output", "-s", "--saving_path", dest="output",
                     help="output: .mp4/.mov (H.264, 8-bit), .avi/.mkv (FFV1, lossless, 8 or 16-bit), "
                          ".zarr, or a TIFF sequence OUT/%%06d.tif or a folder OUT/ (8 or 16-bit)")
    mag.add_argument("-a", "--alpha", type=_number, default=None,
                     help="magnification: in-band motion becomes (1 + alpha) times as large; "
                          "negative attenuates (default 10)")
    mag.add_argument("--low", "-lo", "--low_omega", dest="low", type=_number,
                     help="low edge of the temporal band, Hz (required)")
    mag.add_argument("--high", "-ho", "--high_omega", dest="high", type=_number,
                     help="high edge of the temporal band, Hz (required)")
    mag.add_argument("-f", "--fps", type=_number, default=None,
                     help="rate the footage was filmed at, Hz (default: the file's rate; -1 too). "
                          "Give it for high-speed footage stored at a slower rate; required for "
                          "image sequences (TIFF/PNG), which record none")
    mag.add_argument("--playback-fps", dest="playback_fps", type=_number, default=None,
                     help="rate the output plays at (default: the input's stored rate; 30 for raw "
                          "camera files and image sequences). The filters use the recording rate --fps")
    mag.add_argument("--taps", "-ws", "--window_size", "--window", dest="taps", type=_whole,
                     help="length of the temporal filter in frames: the FIR's taps for --filter fir "
                          f"(default: from the band), the window for --filter window (default {DEFAULT_WINDOW})")
    mag.add_argument("--filter", dest="filter", choices=list(FILTER_KINDS), default=None,
                     help="temporal band-pass: fir (zero-phase Kaiser FIR, default), ideal (FFT mask "
                          "over the whole clip, which must fit in memory), butter (Butterworth, "
                          "zero-phase forward-backward; --causal: forward only), diff-iir (MIT's "
                          "difference of two first-order low-passes, causal), window (the "
                          "predecessor's sliding-window ideal filter, centred: no lag)")
    mag.add_argument("--order", type=_whole, default=None,
                     help="order of --filter butter (default 2)")
    mag.add_argument("--causal", action="store_true",
                     help="--filter butter forwards only (response H, delayed, streams over any "
                          "length) instead of forward-backward (|H|^2, no delay)")
    mag.add_argument("--sigma", type=_number, default=None, metavar="PX",
                     help="amplitude-weighted Gaussian smoothing of the phase, in pixels of the "
                          "frame (MIT's sigma, e.g. 2-5): less magnified noise (default 0: none; "
                          "0.75 px with --pyramid riesz)")
    mag.add_argument("--attenuate-other", "--attenuate_other", dest="attenuate_other",
                     action="store_true",
                     help="remove motion outside the band (MIT's attenuateOtherFreq); motion slower "
                          "than half the low edge (drift, pans) is kept")
    mag.add_argument("--decimate", metavar="Q", default=None,
                     help="for a narrow band at a very high --fps (e.g. 24-26 Hz at 10000 fps): magnify "
                          "the clip low-passed and kept every Q-th frame, and add the change, interpolated "
                          "back, to every frame; 'auto' picks Q (8 samples per period of --high). Much "
                          "shorter filters and Q times less pyramid work (default: off)")
    kinds = "; ".join(f"{name}: {kind.bands_per_octave} per octave, {kind.orientations} orientations"
                      for name, kind in PYRAMID_KINDS.items() if name != "riesz")
    kinds += ("; riesz: Wadhwa et al. 2014's fast approximation, one real band per octave and its Riesz "
              "transform, about 4x faster than octave, the finest octave not magnified")
    mag.add_argument("--pyramid", choices=list(PYRAMID_KINDS), default=None,
                     help=f"spatial frequency bands, as MIT's phaseAmplify ({kinds}). The finer "
                          "pyramids take several times longer (default octave)")
    mag.add_argument("--orientations", type=_whole, default=None, metavar="N",
                     help="orientations per scale: angular bands over 180 degrees "
                          "(default: the pyramid's own, see --pyramid)")
    mag.add_argument("--max-frames", "-mf", "--max_frames", dest="max_frames", type=_whole,
                     help="process at most N frames (counted from --start)")
    mag.add_argument("--start", metavar="T",
                     help="first frame to process and write: a frame number (120) or seconds of the "
                          "stored file's time line (2.5s: the first frame at or after 2.5 s; default 0)")
    mag.add_argument("--end", metavar="T",
                     help="stop before this frame: frames (600) or seconds (10s), as --start "
                          "(default: the end of the video)")
    mag.add_argument("--scale", type=_number, default=1.0, metavar="F",
                     help="process and write frames resized by F (0 < F <= 1, as MIT's scaleVideo; "
                          "antialiased bicubic; size round(F * size); default 1)")
    mag.add_argument("--roi", metavar="X,Y,W,H",
                     help="magnify only this region, in pixels of the input frame (x, y of its top-left "
                          "corner, width, height; scaled along with --scale); the rest is unchanged, "
                          "blended over 16 pixels inside the region's border")
    mag.add_argument("--workers", "-t", "--threads", dest="workers", type=_whole,
                     help="local workers (default: one per core)")
    mag.add_argument("--processes", action="store_true",
                     help="run the local workers as separate processes (isolated, restarted if one dies) "
                          "instead of threads of one process (faster to start, shared memory)")
    mag.add_argument("--scheduler", help="address of a running Dask scheduler (tcp://host:8786)")
    mag.add_argument("--accel", "-acc", choices=["cpu", "cuda"], default="cpu",
                     help="compute on the CPU (default) or CUDA GPUs: one dask-cuda worker per GPU, "
                          "or with --scheduler the workers started with `dask cuda worker ADDRESS "
                          "--resources GPU=1` (unverified on a GPU so far: needs DASKMAG_UNVERIFIED_GPU=1; "
                          "see docs/gpu.md)")
    mag.add_argument("--gpus", metavar="N|LIST",
                     help="with --accel cuda: use the first N GPUs, or these device numbers (0,2); "
                          "default all")
    mag.add_argument("--mode", choices=["motion", "color", "colour"], default="motion",
                     help="motion: phase-based motion magnification (Wadhwa 2013, default); "
                          "color: linear colour magnification (Wu 2012), e.g. a pulse")
    mag.add_argument("--level", type=_whole, default=None,
                     help="color mode: Gaussian pyramid level of the spatial low-pass (default 4)")
    mag.add_argument("--chroma-attenuation", dest="chroma_attenuation", type=_number, default=None,
                     help="color mode: factor on the I/Q (chroma) amplification (default 1; 0 = luminance only)")
    mag.add_argument("--crf", type=_number, default=DEFAULT_CRF,
                     help=f"H.264 quality for .mp4/.mov, {CRF_RANGE[0]}-{CRF_RANGE[1]}, lower is better "
                          f"(default {DEFAULT_CRF}, visually lossless)")
    mag.add_argument("--tile", type=_whole, default=None,
                     help="process frames in square tiles of N pixels with a 64-pixel halo, one fused "
                          "task per block and tile (default: whole frames where a filter group fits in "
                          "memory, else 512 for frames above 1024x1024 pixels; 0: whole frames)")
    mag.add_argument("--time-chunk", type=_whole, default=None,
                     help="frames per time block (default: sized to ~1 GiB of working memory)")
    mag.add_argument("--side-by-side", action="store_true",
                     help="write the input and the magnified video next to each other, each labelled")
    mag.add_argument("--overwrite", action="store_true", help="replace an existing output")
    mag.add_argument("--restart", action="store_true",
                     help="discard the finished blocks of an interrupted run instead of resuming it")
    mag.add_argument("--no-progress", action="store_true", help="do not show a progress bar")
    mag.add_argument("--dashboard", action=argparse.BooleanOptionalAction, default=None,
                     help="serve the local cluster's Dask dashboard, to watch a long run (default: on for "
                          "jobs of 2**28 pixel-frames or more, e.g. 130 frames of 1080p; off for short "
                          "clips, which then start about 1 s sooner, without Bokeh)")
    _add_on_corrupt(mag)
    _add_input_choice(mag)

    ing = sub.add_parser("ingest", help="decode a video into a chunked Zarr store")
    ing.add_argument("input")
    _add_on_corrupt(ing)
    _add_input_choice(ing)
    ing.add_argument("-o", "--output", required=True, help="output .zarr store")
    ing.add_argument("-f", "--fps", type=_number, default=None,
                     help="recording rate, Hz, for sources that record none (image sequences, a raw H.264 "
                          "stream)")
    ing.add_argument("--playback-fps", dest="playback_fps", type=_number, default=None,
                     help="playback rate stored with the frames (default: the source's)")
    ing.add_argument("--workers", type=_whole)
    ing.add_argument("--scheduler")
    ing.add_argument("--overwrite", action="store_true")
    ing.add_argument("--no-progress", action="store_true")
    ing.add_argument("--dashboard", action=argparse.BooleanOptionalAction, default=None,
                     help="serve the local cluster's Dask dashboard (default: as magnify, on for 2**28 "
                          "pixel-frames or more)")

    info = sub.add_parser("info", help="frames, size, frame rate, duration and codec")
    info.add_argument("input")
    _add_input_choice(info)
    info.add_argument("-f", "--fps", type=_number, default=None,
                      help="frame rate of an input that has no timestamps (a raw H.264 stream)")

    add_measure_parser(sub)

    demo = sub.add_parser("demo", help="magnify a built-in synthetic clip (no download)")
    demo.add_argument("-o", "--output", default="daskmag-demo", help="output folder (default daskmag-demo)")
    demo.add_argument("--workers", type=_whole)
    demo.add_argument("--overwrite", action="store_true")
    demo.add_argument("--no-progress", action="store_true")
    _add_batch(sub, mag)
    return parser


#: ``magnify`` options that say where a batch runs: not per file (a manifest column).
BATCH_WIDE = ("workers", "processes", "scheduler", "accel", "no-progress", "dashboard")


def _add_batch(sub, mag):
    """``daskmag batch`` (every ``magnify`` option, for every file) and ``daskmag status``."""
    from .batch import FORMATS
    from .managers import KINDS

    bat = sub.add_parser(
        "batch", help="magnify many files on one cluster, with a report",
        description="Magnify many videos into one folder: all files' blocks in one bounded window, a file "
                    "that fails is recorded and the others go on, finished outputs are skipped and "
                    "interrupted ones resumed. OUTDIR/batch-report.json (and .csv) is rewritten as files "
                    "finish. Exit status: 0 all done or skipped, 1 any failed, 2 a usage error.")
    bat.add_argument("inputs", nargs="+", metavar="INPUT",
                     help="video files, folders (their video files), globs ('footage/*.mov'), or a .csv "
                          "manifest: a column 'input', optionally 'output', and any magnify option by its "
                          "long name as a column (per-file settings)")
    bat.add_argument("-o", "--output", required=True, metavar="OUTDIR",
                     help="output folder (made if missing); outputs are OUTDIR/<input name>.<format>")
    bat.add_argument("--format", choices=FORMATS, default="mp4", help="output format (default mp4)")
    bat.add_argument("--cluster", choices=KINDS,
                     help="start workers through a cluster manager: slurm/pbs/sge/lsf (dask-jobqueue, "
                          "configured in jobqueue.yaml) or kubernetes (dask-kubernetes' operator); "
                          "see docs/batch.md")
    bat.add_argument("--min-workers", type=_whole, default=None, metavar="N",
                     help="--cluster: adaptive scaling's lower bound (default: daskmag.adapt.minimum, 1)")
    bat.add_argument("--max-workers", type=_whole, default=None, metavar="N",
                     help="--cluster: adaptive scaling's upper bound (default: daskmag.adapt.maximum, 8)")
    bat.add_argument("--blocks-in-flight", dest="in_flight", type=_whole, default=None, metavar="N",
                     help="time blocks in flight at once, of all files (default: two per worker thread)")
    options = {}
    for action in mag._actions:
        if action.dest in ("help", "input", "video_path", "output"):
            continue
        bat._add_action(action)  # the same option, shared as argparse's parents= does
        long = [o for o in action.option_strings if o.startswith("--")]
        name = long[0][2:] if long else action.dest
        if name not in BATCH_WIDE:
            for alias in {name, action.dest.replace("_", "-")}:
                options[alias] = action
    bat.set_defaults(manifest_options=options)

    status = sub.add_parser("status", help="the state of a batch, from its report")
    status.add_argument("outdir", metavar="OUTDIR", help="the batch's output folder")


def _add_input_choice(parser):
    parser.add_argument("--stream", type=_whole, default=None, metavar="N",
                        help="which video stream of the input: 0 the first (default), 1 the second, ... "
                             "(daskmag info lists them)")
    parser.add_argument("--timing", choices=["keep", "resample"], default="keep",
                        help="a variable-frame-rate input: keep every stored frame once, in order (default), "
                             "or resample it by timestamp onto a constant grid at its average rate")


def _add_on_corrupt(parser):
    from .settings import ON_CORRUPT

    parser.add_argument("--on-corrupt", choices=ON_CORRUPT, default="stop",
                        help="a frame of the input that cannot be decoded: stop with an error naming "
                             "it (default), or repeat the previous frame with a warning")


def main(argv=None) -> int:
    from ._process import tune_process

    tune_process()  # malloc, BLAS threads, GC: first, while NumPy is not loaded (DASKMAG_TUNE_PROCESS=0: off)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return {"magnify": _magnify, "ingest": _ingest, "info": _info, "demo": _demo, "batch": _batch,
                "status": _status, "measure": _measure}[args.command](args)
    except UserError as exc:
        print(f"daskmag: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("daskmag: interrupted; no output was written", file=sys.stderr)
        return EXIT_INTERRUPTED


def console() -> int:
    """The ``daskmag`` command: :func:`main`, then a quick exit (:func:`daskmag._process.exit_now`)."""
    from ._process import exit_now

    return exit_now(main())


def _magnify(args) -> int:
    from .run import run_job

    source = args.input or args.video_path
    if args.input and args.video_path and args.input != args.video_path:
        raise UserError("give the input once (INPUT or -v), not two different files")
    if not source:
        raise UserError("no input video given (daskmag magnify INPUT -o OUTPUT ...)")
    if not args.output:
        raise UserError("no output given (-o OUTPUT)")
    if not (Path(source).exists() or "%" in Path(source).name or glob.has_magic(source)):
        raise UserError(f"input not found: {source}")  # before the settings' complaints
    job = _job(args, source, args.output)
    result = run_job(job, progress=not args.no_progress, dashboard=args.dashboard)
    recorded = f" (recorded at {_rate(result.recording_fps)} fps)" \
        if result.recording_fps and result.recording_fps != result.fps else ""
    print(f"wrote {result.output}: {result.n_frames} frames of {result.width}x{result.height} at "
          f"{_rate(result.fps)} fps{recorded}", file=sys.stderr)
    return 0


def _job(args, source, output):
    """A :class:`~daskmag.run.Job` from ``magnify``'s (or ``batch``'s) parsed options."""
    from .run import Job
    from .settings import Band, Execution, OutputSettings, Selection, mode_settings, pyramid_spec

    pyramid = None
    if args.pyramid is not None or args.orientations is not None:
        pyramid = pyramid_spec(args.pyramid, args.orientations)
    mode = "colour" if args.mode in ("color", "colour") else "motion"
    # each settings object checks itself: one line and exit 2 before any work
    settings = mode_settings(mode, alpha=args.alpha, taps=args.taps, pyramid=pyramid, filter=args.filter,
                             order=args.order, causal=args.causal or None, sigma=args.sigma,
                             attenuate_other=args.attenuate_other or None, level=args.level,
                             decimate=_decimate(args.decimate),
                             chroma_attenuation=args.chroma_attenuation)
    job = Job(
        source, output, settings, Band(args.low, args.high, args.fps),
        Selection(start=args.start, end=args.end, max_frames=args.max_frames, scale=args.scale, roi=args.roi,
                  on_corrupt=args.on_corrupt, stream=args.stream, timing=args.timing),
        OutputSettings(crf=args.crf, overwrite=args.overwrite, restart=args.restart,
                       side_by_side=args.side_by_side, playback_fps=args.playback_fps),
        Execution(workers=args.workers, scheduler=args.scheduler, processes=args.processes, device=args.accel,
                  time_chunk=args.time_chunk, tile=args.tile, gpus=args.gpus),
    )
    return job


def _batch(args) -> int:
    from .batch import apply_options, check_columns, check_outputs, collect_inputs, default_output, run_batch
    from .settings import Execution

    if args.cluster and args.scheduler:
        raise UserError("give --scheduler or --cluster, not both")
    if args.in_flight is not None and args.in_flight < 1:
        raise UserError(f"--blocks-in-flight must be at least 1, got {args.in_flight}")
    Execution(workers=args.workers, scheduler=args.scheduler, processes=args.processes)  # checks them
    outdir = Path(args.output)
    if outdir.exists() and not outdir.is_dir():
        raise UserError(f"the output folder is a file: {outdir}")
    entries = collect_inputs(args.inputs)
    check_columns(entries, args.manifest_options)
    jobs = []
    for entry in entries:  # a bad manifest column stops here, before any work; a bad value fails its file
        output = outdir / entry.output if entry.output else default_output(outdir, entry.source, args.format)
        try:
            job = _job(apply_options(args, entry.options, args.manifest_options), entry.source, output)
        except UserError as exc:
            job = exc
        jobs.append((entry.source, output, job))
    check_outputs([output for _, output, _ in jobs])
    outdir.mkdir(parents=True, exist_ok=True)
    if args.cluster:
        from .managers import managed_client

        context = managed_client(args.cluster, minimum=args.min_workers, maximum=args.max_workers)
    else:
        from .cluster import dask_client

        context = dask_client(args.workers, args.scheduler, processes=args.processes,
                              dashboard=args.dashboard is not False)  # a batch is a long run
    with context as client:
        result = run_batch(jobs, outdir, client=client, progress=not args.no_progress, window=args.in_flight)
    counts = {state: sum(r.status == state for r in result.records) for state in ("done", "skipped", "failed")}
    print(f"batch: {counts['done']} done, {counts['skipped']} skipped, {counts['failed']} failed; "
          f"report: {result.report}", file=sys.stderr)
    return result.exit_status


def _status(args) -> int:
    from .batch import describe_report, read_report

    report = read_report(args.outdir)
    print(describe_report(report))
    return 1 if report["totals"]["files_failed"] else 0


def _measure(args) -> int:
    from .measure.cli import run

    return run(args)


def _decimate(text):
    if text is None or text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise UserError(f"--decimate must be a whole number or auto, got {text!r}") from None


def _rate(fps) -> str:
    fps = Fraction(fps)
    return str(fps.numerator) if fps.denominator == 1 else f"{float(fps):.6g}"


def _ingest(args) -> int:
    from .cluster import dask_client
    from .io import check_output, ingest, open_video
    from .run import default_dashboard, progress_bar, warn_variable_rate, with_recording_rate
    from .settings import Band, Execution, OutputSettings, Selection

    Execution(workers=args.workers, scheduler=args.scheduler)  # checks them
    Selection(stream=args.stream, timing=args.timing)  # checks them
    OutputSettings(playback_fps=args.playback_fps)  # checks it
    video = open_video(args.input, on_corrupt=args.on_corrupt, stream=args.stream, timing=args.timing,
                       fps=args.fps)
    with_recording_rate(video.info, Band(1, 2, args.fps).fps)  # a rate is needed: one line, before any work
    check_output(args.output, args.overwrite)
    if not args.output.endswith(".zarr"):
        raise UserError(f"an ingested store must end in .zarr: {args.output}")
    warn_variable_rate(video.info)
    dashboard = args.dashboard
    if dashboard is None:
        dashboard = default_dashboard(video.info.n_frames, video.info.height, video.info.width)
    with dask_client(args.workers, args.scheduler, dashboard=dashboard) as client:
        with progress_bar(video.info.n_frames, not args.no_progress) as bar:
            ingest(video, args.output, overwrite=args.overwrite, client=client, progress=bar.update,
                   fps=args.fps, playback_fps=args.playback_fps)
    print(f"wrote {args.output}: {video.info.n_frames} frames", file=sys.stderr)
    return 0


def _info(args) -> int:
    from .io import reader_for
    from .settings import Selection

    Selection(stream=args.stream, timing=args.timing)  # checks them
    print(reader_for(args.input, stream=args.stream, timing=args.timing, fps=args.fps).probe().describe())
    return 0


def _demo(args) -> int:
    from .demo import run_demo
    from .settings import Execution

    Execution(workers=args.workers)  # checks it
    run_demo(Path(args.output), workers=args.workers, overwrite=args.overwrite,
             progress=not args.no_progress)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(console())
