#!/usr/bin/env python
"""``daskmag batch`` against the old one-file-at-a-time loop, on the same cluster, side by side.

N short synthetic clips (a texture vibrating 0.1 px at 5 Hz, 60 fps, cached
in benchmarks/results/cache/) are magnified (``--alpha 10 --low 3 --high 7``)
on a ``dask scheduler`` with single-threaded ``dask worker`` processes (one
per usable core, started here with daskmag's worker environment, as the
cluster recipes do), two ways:

* **loop**: ``daskmag magnify CLIP -o OUT --scheduler ADDR`` for each clip in
  turn: what ``cluster/batch.sh`` did;
* **batch**: one ``daskmag batch CLIP... -o OUTDIR --scheduler ADDR``.

The runs alternate (loop, batch, loop, batch, ...); each gets a freshly
started scheduler and workers, so no run inherits another's warm or bloated
worker memory.  Reported: the median wall time of each and their ratio, and
the peak RSS summed over the scheduler, the workers and the client's process
tree (sampled every 50 ms).  The loop's peak is the peak of one file's run
(the largest over its files), so the memory ratio is the batch's peak over
one file's.

Examples::

    python benchmarks/batch.py                       # 8 clips of 192x144, 150 frames; 2 repeats
    python benchmarks/batch.py --clips 4 --frames 90 --repeat 1
    python benchmarks/batch.py -- --time-chunk 32    # extra options for both commands

Arguments after ``--`` go to both ``daskmag magnify`` and ``daskmag batch``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    RESULTS_DIR,
    default_workers,
    gib,
    markdown_table,
    parse_size,
    split_passthrough,
    start_report,
    synthetic_clip,
    write_json,
)

SETTINGS = ["--alpha", "10", "--low", "3", "--high", "7"]
CLIP = {"fps": 60, "amplitude": 0.1, "frequency": 5.0}


def parse_args(argv):
    own, extra = split_passthrough(argv)
    parser = argparse.ArgumentParser(description="daskmag batch vs a loop of daskmag magnify, side by side.",
                                     epilog="Arguments after a lone -- go to both commands unchanged.")
    parser.add_argument("--clips", type=int, default=8, help="number of clips (default 8)")
    parser.add_argument("--frames", type=int, default=150, help="frames per clip (default 150)")
    parser.add_argument("--size", default="192x144", help="WxH (default 192x144)")
    parser.add_argument("--workers", type=int, default=None,
                        help="single-threaded worker processes (default: one per usable core)")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each, alternating (default 2)")
    args = parser.parse_args(own)
    args.extra = extra
    return args


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """A `dask scheduler` and single-threaded `dask worker` processes on 127.0.0.1, with daskmag's worker env."""

    def __init__(self, workers: int, log_dir: Path):
        from daskmag.cluster import WORKER_ENVIRON

        port = _free_port()
        self.address = f"tcp://127.0.0.1:{port}"
        env = dict(os.environ, **WORKER_ENVIRON)
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log = open(log_dir / "cluster.log", "ab")
        start = [sys.executable, "-m"]
        self.processes = [subprocess.Popen(
            start + ["distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", str(port),
                     "--dashboard-address", ":0"], stdout=self.log, stderr=self.log, env=env)]
        for _ in range(workers):
            self.processes.append(subprocess.Popen(
                start + ["distributed.cli.dask_worker", self.address, "--nthreads", "1", "--no-nanny",
                         "--no-dashboard", "--memory-limit", "0"], stdout=self.log, stderr=self.log, env=env))
        from distributed import Client

        with Client(self.address, timeout="60s") as client:
            client.wait_for_workers(workers, timeout=120)

    def close(self):
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.log.close()


class PeakRSS:
    """Sample the summed RSS of some processes and their descendants every ``interval`` seconds."""

    def __init__(self, pids, interval: float = 0.05):
        import psutil

        self.roots = [psutil.Process(pid) for pid in pids]
        self.extra = []
        self.peak = 0
        self.interval = interval
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def add(self, pid):
        import psutil

        self.extra.append(psutil.Process(pid))

    def _run(self):
        import psutil

        while not self.stop.is_set():
            total = 0
            for root in self.roots + list(self.extra):
                try:
                    procs = [root] + root.children(recursive=True)
                except psutil.Error:
                    continue
                for proc in procs:
                    try:
                        total += proc.memory_info().rss
                    except psutil.Error:
                        pass
            self.peak = max(self.peak, total)
            time.sleep(self.interval)

    def close(self) -> int:
        self.stop.set()
        self.thread.join()
        return self.peak


def run(cmd, sampler, log) -> float:
    process = subprocess.Popen(cmd, stdout=log, stderr=log)
    sampler.add(process.pid)
    process.wait()
    if process.returncode not in (0,):
        raise SystemExit(f"failed ({process.returncode}): {' '.join(map(str, cmd))}; see {log.name}")
    return 0.0


def one_run(kind: str, clips, workers: int, extra, out: Path, logs: Path) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    cluster = Cluster(workers, logs)
    sampler = PeakRSS([p.pid for p in cluster.processes])
    commands = []
    try:
        with open(logs / f"{kind}.log", "ab") as log:
            started = time.perf_counter()
            if kind == "loop":
                for clip in clips:
                    cmd = [sys.executable, "-m", "daskmag", "magnify", str(clip), "-o", str(out / f"{clip.stem}.mp4"),
                           *SETTINGS, "--scheduler", cluster.address, "--no-progress", *extra]
                    commands.append(cmd)
                    run(cmd, sampler, log)
            else:
                cmd = [sys.executable, "-m", "daskmag", "batch", *map(str, clips), "-o", str(out), *SETTINGS,
                       "--scheduler", cluster.address, "--no-progress", *extra]
                commands.append(cmd)
                run(cmd, sampler, log)
            wall = time.perf_counter() - started
    finally:
        peak = sampler.close()
        cluster.close()
    written = sorted(p.name for p in out.glob("*.mp4"))
    if len(written) != len(clips):
        raise SystemExit(f"{kind}: {len(written)} outputs of {len(clips)}")
    return {"kind": kind, "wall_s": wall, "peak_rss_bytes": peak, "commands": [" ".join(c) for c in commands]}


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    info, warning = start_report()
    width, height = parse_size(args.size)
    workers = args.workers or default_workers()
    clips = [synthetic_clip(width, height, args.frames, seed=seed, **CLIP) for seed in range(args.clips)]
    logs = RESULTS_DIR / "logs" / "batch"
    out = RESULTS_DIR / "out" / "batch"
    runs = []
    for repeat in range(args.repeat):
        for kind in ("loop", "batch"):
            result = one_run(kind, clips, workers, args.extra, out / kind, logs)
            runs.append(result)
            print(f"{kind:5s} run {repeat + 1}: {result['wall_s']:.1f} s, peak {gib(result['peak_rss_bytes'])} GiB",
                  file=sys.stderr)
    shutil.rmtree(out, ignore_errors=True)
    loop_s = statistics.median(r["wall_s"] for r in runs if r["kind"] == "loop")
    batch_s = statistics.median(r["wall_s"] for r in runs if r["kind"] == "batch")
    loop_mem = statistics.median(r["peak_rss_bytes"] for r in runs if r["kind"] == "loop")
    batch_mem = statistics.median(r["peak_rss_bytes"] for r in runs if r["kind"] == "batch")
    frames = args.clips * args.frames
    table = markdown_table(
        ["", "wall (median)", "frames/s", "peak RSS, GiB (median)"],
        [["loop of `daskmag magnify`", f"{loop_s:.1f} s", f"{frames / loop_s:.1f}", gib(loop_mem)],
         ["`daskmag batch`", f"{batch_s:.1f} s", f"{frames / batch_s:.1f}", gib(batch_mem)],
         ["batch vs loop", f"{loop_s / batch_s:.2f}x faster", "", f"{batch_mem / loop_mem:.2f}x one file"]])
    heading = (f"{args.clips} clips of {width}x{height}, {args.frames} frames each, {workers} worker processes "
               f"of 1 thread, {args.repeat} runs of each alternating")
    print(heading)
    print(table)
    if warning:
        print(warning)
    path = write_json("batch", {"machine": info, "warning": warning, "heading": heading, "table": table,
                                "runs": runs, "clips": [str(c) for c in clips], "argv": sys.argv})
    print(f"record: {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
