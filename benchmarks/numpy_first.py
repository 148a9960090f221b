#!/usr/bin/env python
"""The library path: ``magnify_file`` from Python with NumPy loaded first, side by side.

A notebook or a script imports NumPy before daskmag, so NumPy's OpenBLAS
has already started a thread per core when daskmag's workers start; the
command line sets one BLAS thread before NumPy loads.  Each contender runs
guitar.mp4 at the classic setting in a fresh interpreter that imports NumPy
first, alternating ``A B A B ...``; the table gives medians of wall time and
CPU time (user + sys) of the process, and the BLAS pool's threads when the
run is over (the caller's own setting, given back).

``--baseline`` adds another checkout (``PYTHONPATH``); ``--baseline-without
threadpoolctl`` runs it with ``threadpoolctl`` hidden, as where it was not
installed (before daskmag required it).

Examples::

    python benchmarks/numpy_first.py --repeat 6 --baseline ../wt-old --baseline-without threadpoolctl
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

RUN = r"""
import json, os, resource, sys, time
started = time.perf_counter()
import numpy as np  # first, as a notebook or a script does
from daskmag.run import magnify_file
magnify_file(sys.argv[1], sys.argv[2], alpha=20, low=72, high=92, fps=600, overwrite=True, progress=False)
usage = resource.getrusage(resource.RUSAGE_SELF)
try:
    import threadpoolctl
    blas = max(p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas")
except ImportError:
    blas = None
print(json.dumps({"wall_s": time.perf_counter() - started, "cpu_s": usage.ru_utime + usage.ru_stime,
                  "blas_threads_after": blas}))
"""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--input", type=Path, default=GUITAR)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--baseline", type=Path, help="another daskmag checkout (PYTHONPATH)")
    parser.add_argument("--baseline-without", choices=["threadpoolctl"],
                        help="hide this module from the baseline")
    args = parser.parse_args(argv)
    if not args.input.exists():
        print(f"{args.input} not found", file=sys.stderr)
        return 2
    info, warning = start_report()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    with tempfile.TemporaryDirectory(prefix="daskmag-numpy-first-") as folder:
        contenders = {"daskmag": dict(env, PYTHONPATH=str(PROJECT_ROOT))}
        if args.baseline:
            path = [str(args.baseline.resolve())]
            if args.baseline_without:
                hidden = Path(folder) / "hidden"
                hidden.mkdir()
                (hidden / f"{args.baseline_without}.py").write_text("raise ImportError('hidden')\n")
                path.insert(0, str(hidden))
            contenders[f"daskmag at {args.baseline}"] = dict(env, PYTHONPATH=os.pathsep.join(path))
        runs = {name: [] for name in contenders}
        for round_ in range(args.repeat):
            for name, environ in contenders.items():
                out = subprocess.run([sys.executable, "-c", RUN, str(args.input.resolve()), str(Path(folder) / "out.mp4")],
                                     env=environ, cwd=folder, capture_output=True, text=True, check=True)
                result = json.loads(out.stdout.strip().splitlines()[-1])
                runs[name].append(result)
                print(f"round {round_ + 1}: {name}: wall {result['wall_s']:.2f} s, CPU {result['cpu_s']:.2f} s",
                      file=sys.stderr)
    medians = {name: {key: statistics.median(r[key] for r in rs) for key in ("wall_s", "cpu_s")}
               for name, rs in runs.items()}
    first = medians["daskmag"]
    rows = [[name, f"{m['wall_s']:.2f}", f"{m['cpu_s']:.2f}", f"{m['wall_s'] / first['wall_s']:.2f}x",
             f"{m['cpu_s'] / first['cpu_s']:.2f}x", runs[name][-1]["blas_threads_after"]]
            for name, m in medians.items()]
    print(f"\n{args.input.name}, magnify_file with NumPy loaded first; medians of {args.repeat} alternating runs\n")
    print(markdown_table(["contender", "wall s", "CPU s", "wall vs daskmag", "CPU vs daskmag",
                          "BLAS threads after"], rows))
    if warning:
        print(warning)
    print(write_json("numpy-first", {"machine": info, "runs": runs, "medians": medians}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
