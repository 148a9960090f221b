#!/usr/bin/env python
"""The fused kernel of two daskmag checkouts, side by side: CPU ms per output frame.

Each round runs one child process per checkout (``PYTHONPATH`` set to it),
alternating A B A B; the child builds the same block, calls
:func:`daskmag.kernels.phase.magnify_block` once to warm up (FFT plans, first
touch of memory) and then ``--calls`` times, and prints the CPU time
(``time.process_time``, one thread) of the fastest call per output frame.
The table gives the median over rounds and the ratio; the first round also
reports the largest difference between the two outputs in grey levels.

Blocks (``--case``):

- ``guitar-end``: guitar.mp4 frames 0-204, output 0-149 with 55 frames of
  clip-end prediction before (the first of the two blocks of a 2-worker run),
  alpha 20, 72-92 Hz at 600 fps;
- ``guitar-interior``: the same frames, output 55-149 (both halos real);
- ``hd-tile``: one task of 1920x1080 footage as daskmag plans it (a 512-px
  tile with its 64-px margins, 696x640, the planned time block plus its
  halos), random texture, alpha 10, 3-7 Hz at 60 fps.

Examples::

    python benchmarks/kernel_ab.py --baseline ../wt-old
    python benchmarks/kernel_ab.py --baseline ../wt-old --case hd-tile --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import GUITAR, PROJECT_ROOT, markdown_table, start_report, write_json  # noqa: E402

CHILD = r"""
import json, sys, time
import numpy as np
case, calls, save = sys.argv[1], int(sys.argv[2]), sys.argv[3]
from daskmag.kernels.phase import magnify_block
from daskmag.kernels.temporal import make_filter
try:
    from daskmag.cluster import keep_freed_memory
    keep_freed_memory()
except ImportError:
    pass
if case.startswith("guitar"):
    from daskmag.io import read_frames
    rgb = read_frames(sys.argv[4], 0, 205)
    temporal, alpha, spec = make_filter("fir", 72, 92, 600), 20.0, None
    kw = dict(start=0, stop=150, pad_before=55) if case == "guitar-end" else dict(start=55, stop=150)
else:
    from daskmag.kernels.pyramid import PyramidSpec
    from daskmag.plan import plan_motion
    temporal, alpha = make_filter("fir", 3, 7, 60), 10.0
    plan = plan_motion(600, 1080, 1920, temporal, None, PyramidSpec(), tile=512)
    halo, core = plan.halo, plan.time_chunks[1]
    spec = plan.pyramid
    rows, cols = max(plan.rows) + 2 * plan.margin, max(plan.cols) + 2 * plan.margin
    texture = np.random.default_rng(0).integers(0, 256, (rows, cols, 3), dtype=np.uint8)
    rgb = np.stack([np.roll(texture, i % 3, axis=1) for i in range(core + 2 * halo)])
    kw = dict(start=halo, stop=halo + core)
args = (rgb, temporal, alpha) + ((spec,) if spec is not None else ())
out = magnify_block(*args, **kw)
if save:
    np.save(save, out)
times = []
for _ in range(calls):
    started = time.process_time()
    magnify_block(*args, **kw)
    times.append(time.process_time() - started)
best = min(times)
print(json.dumps({"ms_per_frame": best / (kw["stop"] - kw["start"]) * 1e3, "frames_in": rgb.shape[0],
                  "frames_out": kw["stop"] - kw["start"], "size": list(rgb.shape[1:3])}))
"""


def run_child(checkout: Path, case: str, calls: int, save: str, cwd: str) -> dict:
    env = dict(os.environ, PYTHONPATH=str(checkout.resolve()))
    # run outside any checkout: the working folder comes first on sys.path, before PYTHONPATH
    result = subprocess.run([sys.executable, "-c", CHILD, case, str(calls), save, str(GUITAR)], env=env,
                            capture_output=True, text=True, cwd=cwd)
    if result.returncode:
        raise SystemExit(f"the kernel of {checkout} failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", type=Path, required=True, help="the other checkout (A)")
    parser.add_argument("--checkout", type=Path, default=PROJECT_ROOT, help="this one (B; default: here)")
    parser.add_argument("--case", default="guitar-end", choices=["guitar-end", "guitar-interior", "hd-tile"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=2, help="timed calls per child (the fastest counts)")
    args = parser.parse_args(argv)
    if args.case.startswith("guitar") and not GUITAR.exists():
        print(f"{GUITAR} not found", file=sys.stderr)
        return 2
    import numpy as np

    code = "import daskmag, sys; sys.stdout.write(daskmag.__file__)"
    with tempfile.TemporaryDirectory() as folder:
        for checkout in (args.baseline, args.checkout):
            found = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, PYTHONPATH=str(
                checkout.resolve())), capture_output=True, text=True, cwd=folder).stdout
            if not Path(found).resolve().is_relative_to(checkout.resolve()):
                raise SystemExit(f"PYTHONPATH={checkout} imports daskmag from {found}, not from there")
    info, warning = start_report()
    contenders = {"baseline": args.baseline, "this": args.checkout}
    runs = {name: [] for name in contenders}
    with tempfile.TemporaryDirectory() as folder:
        for round_ in range(args.rounds):
            for name, checkout in contenders.items():
                save = str(Path(folder) / f"{name}.npy") if round_ == 0 else ""
                result = run_child(checkout, args.case, args.calls, save, folder)
                runs[name].append(result["ms_per_frame"])
                print(f"round {round_ + 1}: {name}: {result['ms_per_frame']:.2f} ms/frame", file=sys.stderr)
        a, b = (np.load(Path(folder) / f"{name}.npy").astype(int) for name in contenders)
        difference = np.abs(a - b)
    medians = {name: statistics.median(values) for name, values in runs.items()}
    rows = [[name, str(contenders[name]), f"{medians[name]:.2f}", " ".join(f"{v:.1f}" for v in runs[name])]
            for name in contenders]
    print(f"\n{args.case} ({result['frames_in']} frames of {result['size'][1]}x{result['size'][0]} in, "
          f"{result['frames_out']} out); CPU ms per output frame, one thread, medians of {args.rounds}\n")
    print(markdown_table(["checkout", "path", "median ms/frame", "rounds"], rows))
    print(f"\nthis / baseline: {medians['this'] / medians['baseline']:.3f}; outputs differ by at most "
          f"{difference.max()} grey level(s) ({np.count_nonzero(difference)} of {difference.size} values)")
    path = write_json(f"kernel_ab-{args.case}", {"machine": info, "busy_warning": warning, "case": args.case,
                                                 "runs": runs, "medians": medians,
                                                 "contenders": {k: str(v) for k, v in contenders.items()},
                                                 "max_difference": int(difference.max())})
    print(f"\n{path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
