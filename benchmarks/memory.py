#!/usr/bin/env python
"""Is peak memory constant in the video's length?  ``daskmag magnify`` on N1 and N2 frames.

For each frame size, the same synthetic content (a texture vibrating 0.1 px
at 5 Hz, 60 fps, magnified with ``--alpha 10 --low 3 --high 7``) is generated
at N1 and N2 frames (cached in benchmarks/results/cache/, lossless FFV1) and
run through the real command line; the peak RSS summed over all processes of
the run is reported, with the ratio peak(N2) / peak(N1) per size.  A ratio
near 1 means memory does not grow with the video's length.

Examples::

    python benchmarks/memory.py                                     # 1500,6000 at 128x128,1280x720
    python benchmarks/memory.py --frames 150,600 --sizes 128x128,320x180   # quick check
    python benchmarks/memory.py -- --time-chunk 64                  # fixed blocks for every length

Arguments after ``--`` are passed to ``daskmag magnify`` unchanged.

Note that with default settings the time block grows with the clip until it
reaches daskmag's working-memory budget (short clips are split into at least
one block per worker), so a short clip may use less memory than a long one;
the table shows the block length daskmag plans for each run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    RESULTS_DIR,
    daskmag_magnify,
    default_workers,
    frames_written,
    gib,
    markdown_table,
    parse_size,
    remove_output,
    run_measured,
    split_passthrough,
    start_report,
    synthetic_clip,
    write_json,
)

SETTINGS = {"alpha": 10.0, "low": 3.0, "high": 7.0, "fps": None}  # the clip's own 60 fps
CLIP = {"fps": 60, "amplitude": 0.1, "frequency": 5.0}


def parse_args(argv):
    own, extra = split_passthrough(argv)
    parser = argparse.ArgumentParser(
        description="Peak memory (all processes) of `daskmag magnify` at two video lengths.",
        epilog="Arguments after a lone -- go to `daskmag magnify` unchanged.",
    )
    parser.add_argument("--frames", default="1500,6000", help="N1,N2 (default 1500,6000)")
    parser.add_argument("--sizes", default="128x128,1280x720", help="WxH,... (default 128x128,1280x720)")
    parser.add_argument("--workers", type=int, default=None,
                        help="--workers for daskmag (default: daskmag's own, one per core)")
    parser.add_argument("--output", default="mp4", choices=["mp4", "mkv", "avi", "zarr"],
                        help="output format of the magnified clip (default mp4, H.264)")
    parser.add_argument("--interval", type=float, default=0.05, help="RSS sampling interval, s")
    args = parser.parse_args(own)
    args.extra = extra
    try:
        args.lengths = [int(part) for part in args.frames.split(",")]
        args.size_list = [parse_size(part) for part in args.sizes.split(",")]
    except ValueError as exc:
        parser.error(str(exc))
    if len(args.lengths) != 2 or min(args.lengths) < 2:
        parser.error("--frames takes two lengths N1,N2 of at least 2 frames")
    return args


def planned_block(n_frames, width, height, workers, extra):
    """Frames per time block daskmag will use (best effort; None if it cannot be told)."""
    try:
        from daskmag.plan import plan_time_chunks
        from daskmag.kernels.temporal import design_bandpass

        def option(name):
            return int(extra[extra.index(name) + 1]) if name in extra else None

        taps = design_bandpass(SETTINGS["low"], SETTINGS["high"], CLIP["fps"], option("--taps"))
        chunks = plan_time_chunks(n_frames, width * height, len(taps) // 2,
                                  time_chunk=option("--time-chunk"), min_blocks=workers)
        return max(chunks), len(taps) // 2
    except Exception:  # noqa: BLE001 - informative only; daskmag's internals may change
        return None, None


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    info, warning = start_report()
    workers = args.workers or default_workers()
    out_dir = RESULTS_DIR / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    rows, ratio_rows, records = [], [], []
    for width, height in args.size_list:
        peaks = []
        for n_frames in args.lengths:
            source = synthetic_clip(width, height, n_frames, **CLIP)
            output = out_dir / f"memory-{width}x{height}-{n_frames}.{args.output}"
            cmd = daskmag_magnify(source, output, workers=args.workers, extra=args.extra, **SETTINGS)
            print(f"[{width}x{height}, {n_frames} frames] {' '.join(cmd[1:])}", file=sys.stderr)
            remove_output(output)
            run = run_measured(cmd, log_path=RESULTS_DIR / "logs" / f"memory-{width}x{height}-{n_frames}.log",
                               output=output, interval=args.interval)
            ok = run["returncode"] == 0 and output.exists()
            remove_output(output)
            if not ok:
                print(f"daskmag failed (exit {run['returncode']}); log {run['log']}:\n{run['log_tail']}",
                      file=sys.stderr)
                return 1
            frames = frames_written(run["log_tail"]) or n_frames
            block, halo = planned_block(frames, width, height, workers, args.extra)
            peak = run["peak_rss_sum_bytes"]
            peaks.append(peak)
            print(f"  {run['wall_s']:.2f} s, peak {gib(peak)} GiB (all processes)", file=sys.stderr)
            rows.append([f"{width}x{height}", frames, "?" if block is None else f"{block} (+2x{halo})",
                         f"{run['wall_s']:.2f}", f"{frames / run['wall_s']:.2f}", gib(peak),
                         gib(run["max_single_process_rss_bytes"])])
            records.append({
                "size": f"{width}x{height}", "frames": frames, "source": str(source), "command": cmd,
                "planned_block_frames": block, "halo_frames": halo,
                **{k: v for k, v in run.items() if k != "log_tail"},
            })
        ratio_rows.append([f"{width}x{height}", gib(peaks[0]), gib(peaks[1]), f"{peaks[1] / peaks[0]:.2f}"])
    n1, n2 = args.lengths
    table = markdown_table(
        ["size", "frames", "block frames (+halos)", "wall s", "frames/s",
         "peak memory GiB (all processes)", "largest single process GiB"], rows)
    ratios = markdown_table(["size", f"peak N1={n1} GiB", f"peak N2={n2} GiB", "ratio N2/N1"], ratio_rows)
    print(f"\nworkers: {args.workers or f'{workers} (default)'}; output: {args.output}; "
          f"extra daskmag args: {' '.join(args.extra) or '(none)'}\n")
    print(table)
    print()
    print(ratios)
    path = write_json("memory", {
        "benchmark": "memory", "machine": info, "busy_warning": warning, "extra_args": args.extra,
        "workers": args.workers, "workers_effective": workers, "output_format": args.output,
        "settings": SETTINGS, "clip": CLIP, "runs": records, "table": table, "ratios": ratios,
    })
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
