#!/usr/bin/env python
"""Throughput and peak memory of ``daskmag magnify``, run as a user runs it.

Each case runs the real command line (``python -m daskmag magnify ...``) in a
subprocess and measures

- wall time from starting the process to its exit with the output written
  (interpreter start, imports and the local Dask cluster included),
- frames per second (frames written / wall time),
- peak memory summed over all processes of the run: the RSS of the daskmag
  process and of all its descendants (Dask workers, if any), sampled every
  ~50 ms; the largest sum is reported.

Cases
-----
guitar  ``../shared/data/guitar.mp4`` (next to the project root) with the classic
        ``--alpha 20 --low 72 --high 92 --fps 600``; skipped, with the reason,
        when the file is absent.
hd      a synthetic 1920x1080, 600-frame, 60 fps clip (texture vibrating
        0.1 px at 5 Hz) with ``--alpha 10 --low 3 --high 7``; generated once
        into benchmarks/results/cache/ (lossless FFV1).

Examples::

    python benchmarks/throughput.py                              # both cases, defaults
    python benchmarks/throughput.py --cases hd --size 320x180 --frames 60   # quick check
    python benchmarks/throughput.py --workers 4 --repeat 3 -- --time-chunk 64

Arguments after ``--`` are passed to ``daskmag magnify`` unchanged.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    GUITAR,
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

CASES = ("guitar", "hd")
GUITAR_SETTINGS = {"alpha": 20.0, "low": 72.0, "high": 92.0, "fps": 600.0}
HD_SETTINGS = {"alpha": 10.0, "low": 3.0, "high": 7.0, "fps": None}  # the clip's own 60 fps
HD_CLIP = {"fps": 60, "amplitude": 0.1, "frequency": 5.0}


def parse_args(argv):
    own, extra = split_passthrough(argv)
    parser = argparse.ArgumentParser(
        description="Throughput and peak memory (all processes) of `daskmag magnify`.",
        epilog="Arguments after a lone -- go to `daskmag magnify` unchanged.",
    )
    parser.add_argument("--cases", default="guitar,hd", help="comma-separated: guitar, hd (default both)")
    parser.add_argument("--guitar", type=Path, default=GUITAR,
                        help="the real clip (default ../shared/data/guitar.mp4 next to the project root)")
    parser.add_argument("--size", default="1920x1080", help="synthetic clip size WxH (default 1920x1080)")
    parser.add_argument("--frames", type=int, default=600, help="synthetic clip frames (default 600)")
    parser.add_argument("--workers", type=int, default=None,
                        help="--workers for daskmag (default: daskmag's own, one per core)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per case; the median is reported")
    parser.add_argument("--output", default="mp4", choices=["mp4", "mkv", "avi", "zarr"],
                        help="output format of the magnified clip (default mp4, H.264)")
    parser.add_argument("--interval", type=float, default=0.05, help="RSS sampling interval, s")
    parser.add_argument("--keep-output", action="store_true", help="keep the magnified clips")
    args = parser.parse_args(own)
    args.extra = extra
    args.cases = [case.strip() for case in args.cases.split(",") if case.strip()]
    unknown = [case for case in args.cases if case not in CASES]
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}; choose from {', '.join(CASES)}")
    try:
        args.width, args.height = parse_size(args.size)
    except ValueError as exc:
        parser.error(str(exc))
    if args.frames < 2 or args.repeat < 1:
        parser.error("--frames must be at least 2 and --repeat at least 1")
    return args


def prepare(case, args):
    """(source, settings, description) of a case, or a reason to skip it."""
    if case == "guitar":
        if not args.guitar.is_file():
            return None, f"skipped guitar: {args.guitar} not found"
        return (args.guitar, GUITAR_SETTINGS), None
    source = synthetic_clip(args.width, args.height, args.frames, **HD_CLIP)
    return (source, HD_SETTINGS), None


def probe_frames(source):
    from daskmag.io import probe

    info = probe(source)
    return info.n_frames, f"{info.width}x{info.height}"


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    info, warning = start_report()
    workers_label = str(args.workers) if args.workers else f"{default_workers()} (default)"
    out_dir = RESULTS_DIR / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    rows, records, skipped = [], [], []
    for case in args.cases:
        prepared, reason = prepare(case, args)
        if prepared is None:
            print(reason, file=sys.stderr)
            skipped.append(reason)
            continue
        source, settings = prepared
        n_frames, size = probe_frames(source)
        output = out_dir / f"{case}.{args.output}"
        cmd = daskmag_magnify(source, output, workers=args.workers, extra=args.extra, **settings)
        runs = []
        for repeat in range(args.repeat):
            print(f"[{case} {repeat + 1}/{args.repeat}] {' '.join(cmd[1:])}", file=sys.stderr)
            remove_output(output)
            run = run_measured(cmd, log_path=RESULTS_DIR / "logs" / f"throughput-{case}-{repeat + 1}.log",
                               output=output, interval=args.interval)
            if run["returncode"] != 0 or not output.exists():
                print(f"daskmag failed (exit {run['returncode']}); log {run['log']}:\n{run['log_tail']}",
                      file=sys.stderr)
                return 1
            run["frames"] = frames_written(run["log_tail"]) or n_frames
            print(f"  {run['wall_s']:.2f} s, {run['frames'] / run['wall_s']:.2f} frames/s, peak "
                  f"{gib(run['peak_rss_sum_bytes'])} GiB (all processes)", file=sys.stderr)
            runs.append(run)
            if not args.keep_output:
                remove_output(output)
        wall = statistics.median(run["wall_s"] for run in runs)
        peak = statistics.median(run["peak_rss_sum_bytes"] for run in runs)
        single = statistics.median(run["max_single_process_rss_bytes"] for run in runs)
        frames = runs[0]["frames"]
        rows.append([case, frames, size, workers_label, args.output, f"{wall:.2f}", f"{frames / wall:.2f}",
                     gib(peak), gib(single)])
        records.append({
            "case": case, "source": str(source), "frames": frames, "size": size,
            "settings": settings, "workers": args.workers, "workers_effective": workers_label,
            "output_format": args.output, "command": cmd, "repeat": args.repeat,
            "median_wall_s": wall, "frames_per_s": frames / wall, "median_peak_rss_sum_bytes": peak,
            "median_max_single_process_rss_bytes": single,
            "runs": [{k: v for k, v in run.items() if k != "log_tail"} for run in runs],
        })
    header = ["case", "frames", "size", "workers", "output", "wall s", "frames/s",
              "peak memory GiB (all processes)", "largest single process GiB"]
    table = markdown_table(header, rows)
    print(f"\nextra daskmag args: {' '.join(args.extra) or '(none)'}"
          + (f"; median of {args.repeat} runs" if args.repeat > 1 else "") + "\n")
    print(table if rows else "(no case ran)")
    for reason in skipped:
        print(f"\n{reason}")
    path = write_json("throughput", {
        "benchmark": "throughput", "machine": info, "busy_warning": warning, "extra_args": args.extra,
        "cases": records, "skipped": skipped, "table": table,
    })
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
