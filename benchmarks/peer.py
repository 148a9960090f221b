#!/usr/bin/env python
"""daskmag against the speed peer (``../shared/peer/reference.py``), side by side.

The peer is a compact single-file NumPy script of the same method that holds
the whole clip in memory; it is not part of daskmag and is only *run* here,
as a separate process with its own interpreter (never imported).  Each
contender runs as a whole process, alternating ``A B A B ...`` (plus ``C``,
another daskmag checkout given with ``--baseline``), and the table gives the
median over ``--repeat`` runs of

- wall time, from start to exit (what a user waits for), and
- CPU time, user + sys of the process and every descendant it waited for
  (``os.wait4``): what the machine is billed.

Absolute times drift with the machine's load; the ratios of one run hold.

Examples::

    python benchmarks/peer.py                                  # guitar.mp4, classic setting, 3 rounds
    python benchmarks/peer.py --baseline ../wt-old             # also today's main (PYTHONPATH=../wt-old)
    python benchmarks/peer.py --repeat 5 -- --workers 1        # after --: more daskmag arguments
    python benchmarks/peer.py --peer-python /work/venv-peer/bin/python
    python benchmarks/peer.py --no-peer --untuned --repeat 5      # process tuning on against off

The peer needs ``numpy scipy opencv-python-headless`` in ``--peer-python``'s
environment (default: ``$DASKMAG_PEER_PYTHON``, else ``../venv-peer`` or
``.venv-peer`` next to the project).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import GUITAR, PROJECT_ROOT, markdown_table, split_passthrough, start_report, write_json  # noqa: E402

PEER = PROJECT_ROOT.parent / "shared" / "peer" / "reference.py"
CLASSIC = ["--alpha", "20", "--low", "72", "--high", "92", "--fps", "600"]


def default_peer_python() -> str | None:
    candidates = [os.environ.get("DASKMAG_PEER_PYTHON"), PROJECT_ROOT.parent / "venv-peer" / "bin" / "python",
                  PROJECT_ROOT / ".venv-peer" / "bin" / "python"]
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            return str(candidate)
    return None


def run_once(cmd, env=None, log=None, cwd=None) -> dict:
    """Run ``cmd``; its wall time and the CPU time of its whole process tree."""
    started = time.perf_counter()
    process = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=cwd)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if log is not None:
        log.write(output)
    if process.returncode != 0:
        tail = output.decode(errors="replace")[-2000:]
        raise SystemExit(f"{' '.join(map(str, cmd))} failed ({process.returncode}):\n{tail}")
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "user_s": usage.ru_utime,
            "sys_s": usage.ru_stime, "max_rss_mib": usage.ru_maxrss / 1024}


def main(argv=None) -> int:
    own, extra = split_passthrough(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--input", type=Path, default=GUITAR, help="clip (default ../shared/data/guitar.mp4)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds (default 3)")
    parser.add_argument("--peer-python", default=default_peer_python(),
                        help="interpreter with numpy, scipy and opencv for the peer")
    parser.add_argument("--baseline", type=Path, action="append", default=[],
                        help="another daskmag checkout to run too (with PYTHONPATH set to it); repeatable")
    parser.add_argument("--settings", nargs="*", default=CLASSIC,
                        help="--alpha/--low/--high/--fps for both (default: the classic guitar setting)")
    parser.add_argument("--output", default="mp4", choices=["mp4", "avi", "mkv"],
                        help="daskmag's output container (default mp4, as a user writes; the peer writes FFV1 .avi)")
    parser.add_argument("--no-peer", action="store_true", help="only the daskmag contenders")
    parser.add_argument("--untuned", action="store_true",
                        help="also this checkout with DASKMAG_TUNE_PROCESS=0 (no malloc, BLAS or GC tuning)")
    args = parser.parse_args(own)
    args.input = args.input.resolve()
    if not args.input.exists():
        print(f"{args.input} not found", file=sys.stderr)
        return 2
    if not args.no_peer and not args.peer_python:
        print("no interpreter for the peer: give --peer-python (numpy, scipy, opencv-python-headless)",
              file=sys.stderr)
        return 2
    info, warning = start_report()
    with tempfile.TemporaryDirectory(prefix="daskmag-peer-") as folder:
        folder = Path(folder)
        contenders = {}
        base_env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        # this checkout through PYTHONPATH too, as the baseline: measured, an
        # editable install's import hook instead: 2 CPU-s more per run in one A/B here
        contenders["daskmag"] = ([sys.executable, "-m", "daskmag", "magnify", str(args.input), "-o",
                                  str(folder / f"dm.{args.output}"), *args.settings, "--overwrite", *extra],
                                 dict(base_env, PYTHONPATH=str(PROJECT_ROOT)))
        if args.untuned:
            contenders["daskmag untuned"] = (
                [sys.executable, "-m", "daskmag", "magnify", str(args.input), "-o",
                 str(folder / f"untuned.{args.output}"), *args.settings, "--overwrite", *extra],
                dict(base_env, PYTHONPATH=str(PROJECT_ROOT), DASKMAG_TUNE_PROCESS="0"))
        if not args.no_peer:
            contenders["peer"] = ([args.peer_python, str(PEER), str(args.input), str(folder / "peer.avi"),
                                   *args.settings], base_env)
        for number, baseline in enumerate(args.baseline):
            env = dict(base_env, PYTHONPATH=str(baseline.resolve()))
            contenders[f"daskmag at {baseline}"] = (
                [sys.executable, "-m", "daskmag", "magnify", str(args.input), "-o",
                 str(folder / f"old{number}.{args.output}"), *args.settings, "--overwrite", *extra], env)
        # every checkout's bytecode written first: with PYTHONDONTWRITEBYTECODE
        # set (as on the development machine), a checkout without it compiles
        # every module in every run, about 0.5 CPU-s it would not cost a user
        for tree in [PROJECT_ROOT, *args.baseline]:
            subprocess.run([sys.executable, "-m", "compileall", "-q", str(Path(tree).resolve() / "daskmag")],
                           check=True, env=dict(base_env, PYTHONDONTWRITEBYTECODE=""))
        runs = {name: [] for name in contenders}
        with open(folder / "log.txt", "wb") as log:
            for round_ in range(args.repeat):
                for name, (cmd, env) in contenders.items():
                    # run outside any checkout: Python puts the working folder first on
                    # sys.path, ahead of PYTHONPATH, so a checkout there would win
                    result = run_once(cmd, env, log, cwd=folder)
                    runs[name].append(result)
                    print(f"round {round_ + 1}: {name}: wall {result['wall_s']:.2f} s, "
                          f"CPU {result['cpu_s']:.2f} s", file=sys.stderr)
    medians = {name: {key: statistics.median(r[key] for r in results) for key in results[0]}
               for name, results in runs.items()}
    reference = medians.get("peer")
    # system time apart: on a virtual machine whose host takes freed memory back,
    # first touches of fresh pages cost seconds per GiB (docs/benchmarks.md, sixth round)
    header = ["contender", "wall s", "CPU s (user + sys)", "of which sys", "peak RSS MiB (largest process)"]
    if reference:
        header += ["speed vs peer (peer wall / wall)", "CPU vs peer"]
    rows = []
    for name, m in medians.items():
        row = [name, f"{m['wall_s']:.2f}", f"{m['cpu_s']:.2f}", f"{m['sys_s']:.2f}", f"{m['max_rss_mib']:.0f}"]
        if reference:
            row += [f"{reference['wall_s'] / m['wall_s']:.2f}x", f"{m['cpu_s'] / reference['cpu_s']:.2f}x"]
        rows.append(row)
    print(f"\n{args.input.name}, {' '.join(args.settings)} {' '.join(extra)}; medians of {args.repeat} "
          f"alternating runs\n")
    print(markdown_table(header, rows))
    path = write_json("peer", {"machine": info, "busy_warning": warning, "input": str(args.input),
                               "settings": args.settings, "daskmag_args": extra, "runs": runs,
                               "medians": medians})
    print(f"\n{path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
