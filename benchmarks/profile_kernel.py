#!/usr/bin/env python
"""Where the time of one time block goes: cProfile of the fused kernel, in process.

Runs :func:`daskmag.kernels.phase.magnify_block` on one time block (the block daskmag
would give one task, halo included) of ``../shared/data/guitar.mp4`` with the
classic settings (alpha 20, band 72-92 Hz, filmed at 600 fps), or of a
synthetic clip when the file is absent, and prints the share of its time in

- spatial FFTs (scipy pocketfft c2c: frame spectra, band analysis/synthesis,
  inverse),
- temporal filter FFTs (pocketfft r2c/c2r along time),
- temporal filter, other (the product with the filter's spectrum, slicing),
- clip-end linear prediction (only in the first and last block of a clip),
- phase maths (phase increments/angle, cos/sin, complex multiplies),
- band gather/scatter (crop of the spectrum times the band filter, add back),
- fftshift/ifftshift of whole spectra,
- colour conversion (RGB -> Y, adding the change back, rounding to uint8),
- other.

The kernel runs three times on the block: a first call (FFT plans, first
touch of new memory), a timed call, and the profiled call whose categories
are printed.  Decoding the block (:func:`daskmag.io.read_frames`) and encoding its output
(:class:`daskmag.io.VideoWriter`, FFV1 ``.avi`` in a temporary folder) are
timed separately, without the profiler.

Functions are assigned to a category by name; NumPy ufuncs (cos, sin,
multiply...) are not seen by cProfile and count in the calling function's own
time; helpers with no category of their own (``np.angle``, ``astype``,
``np.roll``, scipy's FFT dispatch...) are charged to their callers' categories
in proportion to the time each caller spent in them.

Examples::

    python benchmarks/profile_kernel.py                        # guitar.mp4, the block of a 2nd task
    python benchmarks/profile_kernel.py --synthetic --size 320x180 --frames 120
    python benchmarks/profile_kernel.py --time-chunk 64 --top 25
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    GUITAR,
    RESULTS_DIR,
    default_workers,
    markdown_table,
    parse_size,
    start_report,
    synthetic_clip,
    write_json,
)

GUITAR_SETTINGS = {"alpha": 20.0, "low": 72.0, "high": 92.0, "fps": 600.0}
SYNTHETIC_SETTINGS = {"alpha": 10.0, "low": 3.0, "high": 7.0, "fps": 60.0}


# --------------------------------------------------------------------------- the kernel call
# Everything that depends on daskmag's kernel signatures is in these two
# functions, so that a change in daskmag.kernels.phase / daskmag.kernels.temporal / daskmag.plan
# is adapted here only.


def kernel_setup(low, high, fps, n_frames, height, width, *, time_chunk=None, workers=1, taps=None):
    """Taps (as daskmag.graph.motion passes them), the halo, and the planned time blocks."""
    import numpy as np

    from daskmag.kernels.temporal import make_filter
    from daskmag.plan import plan_motion

    temporal = make_filter("fir", low, high, fps, taps=taps)
    plan = plan_motion(n_frames, height, width, temporal, time_chunk=time_chunk, min_blocks=workers)
    return temporal.taps.astype(np.float32), plan.halo, plan.time_chunks


def run_kernel(rgb, taps, alpha, start, stop, pad_before, pad_after):
    """One call of the fused kernel, as daskmag.graph.motion._magnify_chunk makes it."""
    from daskmag.kernels.phase import magnify_block
    from daskmag.kernels.pyramid import PyramidSpec

    return magnify_block(rgb, taps, alpha, PyramidSpec(), start, stop,
                         pad_before=pad_before, pad_after=pad_after)


def worker_like_process():
    """Set this process up as ``daskmag magnify``'s local (threaded) workers are set up."""
    try:
        from daskmag.cluster import keep_freed_memory
    except ImportError:
        return False
    return keep_freed_memory()


def warm_up(height, width):
    """Build (and cache) the pyramid filters, as a worker does once per frame size."""
    from daskmag.kernels.pyramid import PyramidSpec, pyramid_filters

    pyramid_filters((height, width), PyramidSpec())


def block_range(chunks, halo, index):
    """Frames ``[lo, hi)`` to decode and the kernel's start/stop/pads for block ``index``,
    exactly as ``dask.array.overlap`` (boundary none) and ``_magnify_chunk`` make them."""
    count = len(chunks)
    depth = halo if count > 1 else 0
    first_frame = sum(chunks[:index])
    last_frame = first_frame + chunks[index]
    first, last = index == 0, index == count - 1
    lo = first_frame - (0 if first else depth)
    hi = last_frame + (0 if last else depth)
    start = 0 if first else depth
    stop = (hi - lo) - (0 if last else depth)
    return lo, hi, start, stop, (halo if first else 0), (halo if last else 0)


# --------------------------------------------------------------------------- categories

SPATIAL, TEMPORAL_FFT, TEMPORAL, PREDICTION, PHASE, GATHER, SHIFT, COLOUR, FILTERS, OTHER = (
    "spatial FFTs (pocketfft c2c; r2c/c2r of 2-D real frames)",
    "temporal filter FFTs (pocketfft r2c/c2r along time)",
    "temporal filter, other (kernel product, slicing)",
    "clip-end linear prediction (Burg AR; first/last block only)",
    "phase maths (angle, cos/sin, multiplies)",
    "band gather/scatter (crop x filter, add back)",
    "fftshift/ifftshift of whole spectra",
    "colour conversion (RGB->Y, add change, to uint8)",
    "pyramid filter construction",
    "other (kernel glue, allocation)",
)
CATEGORIES = (SPATIAL, TEMPORAL_FFT, TEMPORAL, PREDICTION, PHASE, GATHER, SHIFT, COLOUR, FILTERS, OTHER)

#: daskmag functions by (module, name) -> category.
DASKMAG_RULES = {
    ("phase", "phase_increments"): PHASE,
    ("phase", "_modulate"): PHASE,
    ("phase", "rotate"): PHASE,
    ("pyramid", "_checkerboard"): SHIFT,
    ("phase", "magnify_luma_spectrum"): OTHER,
    ("phase", "magnify_block"): OTHER,
    ("temporal", "filter_increments"): TEMPORAL,
    ("temporal", "extend_by_prediction"): PREDICTION,
    ("temporal", "_forecast"): PREDICTION,
    ("temporal", "_burg_from_correlations"): PREDICTION,
    ("temporal", "increment_kernel"): TEMPORAL,
    ("pyramid", "analyse"): GATHER,
    ("pyramid", "synthesise_into"): GATHER,
    ("pyramid", "_on_device"): GATHER,
    ("pyramid", "centred_spectrum"): SPATIAL,  # its own time: the float32 cast
    ("pyramid", "real_image"): SPATIAL,        # its own time: taking .real
    ("pyramid", "half_spectrum"): SPATIAL,     # its own time: the row signs
    ("pyramid", "real_image_half"): SPATIAL,
    ("pyramid", "analyse_half"): GATHER,
    ("pyramid", "synthesise_half_into"): GATHER,
    ("pyramid", "_half_pieces"): GATHER,
    ("pyramid", "_box_key"): GATHER,
    ("pyramid", "_row_signs"): SHIFT,
    ("pyramid", "pyramid_filters"): FILTERS,
    ("colourspace", "luma"): COLOUR,
    ("colourspace", "add_luma"): COLOUR,
    ("colourspace", "to_uint8"): COLOUR,
}
SPATIAL_FFT_NAMES = {"fft2", "ifft2", "fftn", "ifftn", "c2cn", "c2c", "_raw_fftnd", "_raw_fft",
                     "rfft2", "irfft2", "rfftn", "irfftn", "r2cn", "c2rn"}  # real frames: 2-D
TEMPORAL_FFT_NAMES = {"rfft", "irfft", "r2c", "c2r"}  # along time: 1-D


def own_category(key):
    """Category of a profiled function by its name alone, or None (then: its callers')."""
    filename, _, name = key
    path = filename.replace("\\", "/")
    if "/daskmag/" in path:
        module = path.rsplit("/", 1)[-1].removesuffix(".py")
        return DASKMAG_RULES.get((module, name))
    if filename == "~":  # a builtin: '<built-in method scipy.fft._pocketfft.pypocketfft.c2c>'
        if "pocketfft" in name:
            short = name.rstrip(">").rsplit(".", 1)[-1]
            if short.startswith("c2c"):
                return SPATIAL
            # r2c/c2r: 1-D along time (temporal) or 2-D over real frames
            # (spatial); their Python callers in scipy.fft say which
        return None
    if "/scipy/fft/" in path or "/numpy/fft/" in path:
        if name in ("fftshift", "ifftshift"):
            return SHIFT
        if name in SPATIAL_FFT_NAMES:
            return SPATIAL
        if name in TEMPORAL_FFT_NAMES:
            return TEMPORAL_FFT
    return None


def categorise(stats: pstats.Stats):
    """Own time per category, and per function (with its category shares)."""
    table = stats.stats  # key -> (cc, nc, tottime, cumtime, callers)
    memo: dict = {}

    def shares(key, seen=()):
        """{category: fraction} of one function's own time."""
        if key in memo:
            return memo[key]
        category = own_category(key)
        if category is not None:
            result = {category: 1.0}
        else:
            callers = table.get(key, (0, 0, 0, 0, {}))[4]
            weights = {caller: entry[2] for caller, entry in callers.items()
                       if caller not in seen and caller in table}
            total = sum(weights.values())
            result = {}
            if total > 0:
                for caller, weight in weights.items():
                    for cat, frac in shares(caller, seen + (key,)).items():
                        result[cat] = result.get(cat, 0.0) + frac * weight / total
            if not result:
                result = {OTHER: 1.0}
        if not seen:
            memo[key] = result
        return result

    per_category = dict.fromkeys(CATEGORIES, 0.0)
    per_function = []
    for key, (_, ncalls, tottime, _, _) in table.items():
        split = shares(key)
        for cat, frac in split.items():
            per_category[cat] += tottime * frac
        per_function.append((tottime, ncalls, key, max(split, key=split.get)))
    per_function.sort(reverse=True)
    return per_category, per_function


def label(key):
    filename, line, name = key
    if filename == "~":
        return name
    path = filename.replace("\\", "/")
    for marker in ("/daskmag/", "/site-packages/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            if marker == "/daskmag/":
                path = "daskmag/" + path
            break
    return f"{path}:{line}({name})"


# --------------------------------------------------------------------------- main


def parse_args(argv):
    parser = argparse.ArgumentParser(description="Profile daskmag's fused kernel on one time block.")
    parser.add_argument("--input", type=Path, default=GUITAR,
                        help="video to take the block from (default ../shared/data/guitar.mp4)")
    parser.add_argument("--synthetic", action="store_true", help="use a synthetic clip even if guitar.mp4 exists")
    parser.add_argument("--size", default="640x360", help="synthetic clip size WxH (default 640x360)")
    parser.add_argument("--frames", type=int, default=300, help="synthetic clip frames (default 300)")
    parser.add_argument("--alpha", type=float, default=None)
    parser.add_argument("--low", type=float, default=None)
    parser.add_argument("--high", type=float, default=None)
    parser.add_argument("--fps", type=float, default=None, help="filming rate (default: guitar 600, synthetic 60)")
    parser.add_argument("--time-chunk", type=int, default=None,
                        help="frames per block (default: daskmag's plan for --workers blocks at least)")
    parser.add_argument("--workers", type=int, default=None,
                        help="workers the plan assumes (default: one per core, like daskmag)")
    parser.add_argument("--block", type=int, default=None,
                        help="which block (default: the 2nd when there are 3 or more, i.e. one with "
                             "both halos; else the 1st)")
    parser.add_argument("--encode", default="avi", choices=["avi", "mkv", "mp4", "mov"],
                        help="container the encode stage writes (default avi: FFV1; mp4: H.264 crf 17)")
    parser.add_argument("--top", type=int, default=15, help="functions to list by own time")
    args = parser.parse_args(argv)
    try:
        args.width, args.height = parse_size(args.size)
    except ValueError as exc:
        parser.error(str(exc))
    return args


def main(argv=None) -> int:
    import numpy as np

    from daskmag.io import probe, read_frames
    from daskmag.io import VideoWriter

    args = parse_args(sys.argv[1:] if argv is None else argv)
    info, warning = start_report()
    if args.synthetic or not args.input.exists():
        if not args.synthetic:
            print(f"{args.input} not found: using a synthetic clip", file=sys.stderr)
        source = synthetic_clip(args.width, args.height, args.frames,
                                log=lambda text: print(text, file=sys.stderr))
        settings = dict(SYNTHETIC_SETTINGS)
    else:
        source = args.input
        settings = dict(GUITAR_SETTINGS) if args.input.resolve() == GUITAR.resolve() else {}
    for name in ("alpha", "low", "high", "fps"):
        if getattr(args, name) is not None:
            settings[name] = getattr(args, name)
    video = probe(source)
    settings.setdefault("alpha", 10.0)
    settings.setdefault("fps", float(video.fps))
    if "low" not in settings or "high" not in settings:
        print("give --low and --high for this input", file=sys.stderr)
        return 2
    workers = args.workers or default_workers()
    taps, halo, chunks = kernel_setup(settings["low"], settings["high"], settings["fps"], video.n_frames,
                                      video.height, video.width, time_chunk=args.time_chunk, workers=workers)
    index = args.block if args.block is not None else (1 if len(chunks) >= 3 else 0)
    if not 0 <= index < len(chunks):
        print(f"--block must be below {len(chunks)} (the plan has {len(chunks)} blocks)", file=sys.stderr)
        return 2
    lo, hi, start, stop, pad_before, pad_after = block_range(chunks, halo, index)
    n_out = stop - start

    malloc_kept = worker_like_process()
    started = time.perf_counter()
    rgb = read_frames(str(source), lo, hi)
    decode_s = time.perf_counter() - started

    started = time.perf_counter()
    warm_up(video.height, video.width)
    filters_s = time.perf_counter() - started

    # first call: FFT plans, first touch of freshly mapped memory; then the steady state
    started = time.perf_counter()
    run_kernel(rgb, taps, settings["alpha"], start, stop, pad_before, pad_after)
    first_s = time.perf_counter() - started
    started = time.perf_counter()
    out = run_kernel(rgb, taps, settings["alpha"], start, stop, pad_before, pad_after)
    kernel_s = time.perf_counter() - started

    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    profiled_out = run_kernel(rgb, taps, settings["alpha"], start, stop, pad_before, pad_after)
    profiler.disable()
    profiled_s = time.perf_counter() - started
    assert np.array_equal(out, profiled_out), "the kernel is not deterministic"

    with tempfile.TemporaryDirectory() as folder:
        writer = VideoWriter(Path(folder) / f"block.{args.encode}", video.fps, video.height, video.width)
        started = time.perf_counter()
        writer.write(out)
        writer.close()
        encode_s = time.perf_counter() - started

    stats = pstats.Stats(profiler)
    per_category, per_function = categorise(stats)
    profiled_total = sum(per_category.values())

    print(f"\n{Path(source).name}: {video.width}x{video.height}, {video.n_frames} frames; settings {settings}")
    print(f"taps {len(taps)} (halo {halo}); planned blocks {list(chunks)} for {workers} worker(s); "
          f"profiling block {index}: frames [{lo}, {hi}) in ({hi - lo}), {n_out} out "
          f"(start {start}, stop {stop}, pad_before {pad_before}, pad_after {pad_after})")
    if pad_before or pad_after:
        print("this block is at an end of the clip, so it includes the clip-end prediction; "
              "interior blocks (--time-chunk smaller, --block 1) do not")
    print(f"pyramid filters built once per size: {filters_s:.3f} s; first kernel call {first_s:.3f} s "
          f"(neither is in the figures below); glibc malloc set as in daskmag's workers: {malloc_kept}\n")

    rows = [[cat, f"{sec:.3f}", f"{100 * sec / profiled_total:.1f}%"]
            for cat, sec in sorted(per_category.items(), key=lambda item: -item[1]) if sec > 0]
    rows.append(["total (profiled)", f"{profiled_total:.3f}", "100%"])
    kernel_table = markdown_table(["kernel category", "s", "share"], rows)
    print(kernel_table)
    print(f"\nkernel without the profiler (2nd call): {kernel_s:.3f} s; with it (3rd): {profiled_s:.3f} s "
          f"(ratio {profiled_s / kernel_s:.2f}; below 1 means the timings are noisy)\n")

    # per frame of the video: daskmag decodes every frame once (the halo is
    # shared from the neighbouring chunk), but runs the kernel on the halo again
    stages = [("decode (read_frames of the block incl. halo)", decode_s, hi - lo),
              ("kernel (magnify_block, per output frame)", kernel_s, n_out),
              (f"encode (VideoWriter, .{args.encode})", encode_s, n_out)]
    per_frame_total = sum(sec / frames for _, sec, frames in stages)
    stage_table = markdown_table(
        ["stage, one thread", "s", "frames", "ms/frame", "share of ms/frame"],
        [[name, f"{sec:.3f}", frames, f"{1000 * sec / frames:.1f}",
          f"{100 * sec / frames / per_frame_total:.1f}%"] for name, sec, frames in stages])
    print(stage_table)

    top_rows = [[label(key), ncalls, f"{tottime:.3f}", cat] for tottime, ncalls, key, cat in per_function[: args.top]]
    top_table = markdown_table(["function", "calls", "own s", "category"], top_rows)
    if top_rows:
        print(f"\ntop {len(top_rows)} functions by own time (profiled run):")
        print(top_table)

    pstats_path = RESULTS_DIR / "profile_kernel.pstats"
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stats.dump_stats(pstats_path)
    path = write_json("profile_kernel", {
        "benchmark": "profile_kernel", "machine": info, "busy_warning": warning, "source": str(source),
        "size": f"{video.width}x{video.height}", "settings": settings, "taps": len(taps), "halo": halo,
        "chunks": list(chunks), "block": index, "frames_in": [lo, hi], "start": start, "stop": stop,
        "pad_before": pad_before, "pad_after": pad_after, "filters_s": filters_s, "decode_s": decode_s,
        "first_kernel_call_s": first_s, "malloc_kept": malloc_kept,
        "kernel_s": kernel_s, "profiled_s": profiled_s, "encode_s": encode_s, "encode_format": args.encode,
        "categories_s": per_category,
        "top": [{"function": label(key), "calls": ncalls, "own_s": tottime, "category": cat}
                for tottime, ncalls, key, cat in per_function[:50]],
        "tables": {"kernel": kernel_table, "stages": stage_table, "top": top_table},
    })
    print(f"\nwrote {path} and {pstats_path} (open with snakeviz or pstats)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
