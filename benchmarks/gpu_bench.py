#!/usr/bin/env python
"""The GPU benchmark of ``benchmarks/gpu_check.sh``: kernel and end-to-end speed on one GPU.

Cases (each skipped with its reason when it cannot run, or when the time
budget is spent):

kernel      the motion kernel (:func:`daskmag.kernels.phase.magnify_block`) on
            one device-planned block of 1080p frames already on the GPU:
            core frames per second (halos not counted), and the same block
            through :class:`daskmag.gpu.DeviceKernel` (host -> device ->
            host transfers included); peak memory of CuPy's pool.
hd          ``daskmag magnify --accel cuda`` on a synthetic 1920x1080 x 600
            clip (60 fps, texture vibrating 0.1 px at 5 Hz, FFV1) to H.264:
            wall time from start to exit, frames/s; peak GPU memory used
            (NVML, whole device, sampled every 50 ms).
hd-diff     the first ``--diff-frames`` frames of that clip on the GPU and
            on the CPU, both to FFV1 (lossless): the largest difference in
            grey levels.
guitar      ``../shared/data/guitar.mp4`` (``--alpha 20 --low 72 --high 92
            --fps 600``) on the GPU and on the CPU (all cores), to FFV1:
            wall time of each, and the largest difference in grey levels.

Prints one Markdown table; writes a JSON record to ``--out`` (default
benchmarks/results).  Needs ``DASKMAG_UNVERIFIED_GPU=1`` while the GPU path
is unverified (gpu_check.sh sets it).

    python benchmarks/gpu_bench.py --budget 270
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    GUITAR,
    RESULTS_DIR,
    daskmag_magnify,
    frames_written,
    machine_info,
    markdown_table,
    run_measured,
    synthetic_clip,
)

HD = {"width": 1920, "height": 1080, "frames": 600, "fps": 60}
HD_SETTINGS = {"alpha": 10.0, "low": 3.0, "high": 7.0}
GUITAR_SETTINGS = {"alpha": 20.0, "low": 72.0, "high": 92.0, "fps": 600.0}
GIB = 2**30


class GPUMemory:
    """Peak memory used on GPU 0 (NVML, whole device) while the ``with`` block runs."""

    def __init__(self, interval: float = 0.05):
        self.interval, self.peak, self.error = interval, None, None

    def __enter__(self):
        try:
            import pynvml

            pynvml.nvmlInit()
            handle = pynvml.nvmlDeviceGetHandleByIndex(0)
            self._read = lambda: pynvml.nvmlDeviceGetMemoryInfo(handle).used
            self.peak = self._read()
        except Exception as exc:  # noqa: BLE001 - reported in the table
            self.error = str(exc)
            return self
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def _poll(self):
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, self._read())

    def __exit__(self, *exc):
        if self.error is None:
            self._stop.set()
            self._thread.join()
            self.peak = max(self.peak, self._read())


def grey_difference(a: Path, b: Path) -> int | None:
    """Largest absolute difference, in grey levels, between two decoded videos (None if they differ in shape)."""
    import numpy as np

    from daskmag.io import probe, read_frames

    n = probe(a).n_frames
    if probe(b).n_frames != n:
        return None
    worst = 0
    for start in range(0, n, 64):
        x, y = read_frames(a, start, min(n, start + 64)), read_frames(b, start, min(n, start + 64))
        if x.shape != y.shape:
            return None
        worst = max(worst, int(np.abs(x.astype(np.int16) - y).max()))
    return worst


def kernel_case(clip: Path, frames: int) -> dict:
    """Core frames/s of the motion kernel on one device-planned 1080p block."""
    import cupy
    import numpy as np

    from daskmag import gpu
    from daskmag.io import read_frames
    from daskmag.kernels.phase import magnify_block
    from daskmag.settings import Band, MotionSettings

    gpu.apply_kernel_tuning()
    settings, band = MotionSettings(alpha=HD_SETTINGS["alpha"]), Band(HD_SETTINGS["low"], HD_SETTINGS["high"],
                                                                      HD["fps"])
    temporal, _ = settings.temporal_filters(band)
    halo = max(temporal.halo_before, temporal.halo_after)
    free = int(cupy.cuda.runtime.memGetInfo()[0])
    plan = gpu.device_time_chunk(frames, HD["height"], HD["width"], halo, free)
    n = min(frames, plan.block_frames)
    period = HD["fps"] // 5  # the clip's motion repeats every 12 frames: decode one period, repeat it
    first = read_frames(clip, 0, period)
    block = np.ascontiguousarray(np.concatenate([first] * -(-n // period))[:n])
    start, stop = (halo, n - halo) if n > 2 * halo + 8 else (0, n)
    pad_before, pad_after = (0, 0) if start else (halo, halo)
    core = stop - start
    device_block = cupy.asarray(block)
    pool = cupy.get_default_memory_pool()
    pool.free_all_blocks()

    def run_on_device():
        out = magnify_block(device_block, temporal, settings.alpha, settings.pyramid, start, stop,
                            pad_before=pad_before, pad_after=pad_after)
        cupy.cuda.get_current_stream().synchronize()
        return out

    run_on_device()  # warm-up: kernel compilation, FFT plans
    times = []
    for _ in range(2):
        t0 = time.perf_counter()
        out = run_on_device()
        times.append(time.perf_counter() - t0)
    on_device = min(times)

    def chunk(block_np):  # as the graph calls it: NumPy in, NumPy out
        return magnify_block(block_np, temporal, settings.alpha, settings.pyramid, start, stop,
                             pad_before=pad_before, pad_after=pad_after)

    wrapped = gpu.DeviceKernel(chunk)
    t0 = time.perf_counter()
    host_out = wrapped(block)
    with_transfers = time.perf_counter() - t0
    cpu_equal = bool(np.array_equal(host_out, out.get()))
    return {"block_frames": n, "core_frames": core, "halo": halo, "planned_time_chunk": plan.time_chunk,
            "kernel_s": on_device, "kernel_fps": core / on_device, "with_transfers_s": with_transfers,
            "with_transfers_fps": core / with_transfers, "peak_pool_bytes": int(pool.total_bytes()),
            "transfer_path_same_output": cpu_equal, "batch_bytes": gpu.DEVICE_KERNEL_BYTES}


def cli_case(name: str, source: Path, output: Path, settings: dict, extra, logs: Path, gpu_memory=True) -> dict:
    cmd = daskmag_magnify(source, output, **settings, extra=extra)
    with GPUMemory() as memory:
        record = run_measured(cmd, log_path=logs / f"{name}.log", output=output)
    n = frames_written(record["log_tail"])
    record.update({"name": name, "cmd": cmd, "frames": n,
                   "fps": (n / record["wall_s"]) if n else None,
                   "peak_gpu_bytes": memory.peak if gpu_memory else None, "gpu_memory_error": memory.error})
    return record


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="folder for the JSON record and logs")
    parser.add_argument("--budget", type=float, default=270.0, help="seconds; later cases are skipped past it")
    parser.add_argument("--frames", type=int, default=HD["frames"], help="frames of the 1080p clip (600)")
    parser.add_argument("--diff-frames", type=int, default=64, help="1080p frames compared with the CPU")
    parser.add_argument("--guitar", type=Path, default=GUITAR)
    parser.add_argument("--work", type=Path, default=Path("/tmp/daskmag-gpu-work"),
                        help="clips, outputs and per-run logs (large: kept out of --out)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    os.environ.setdefault("DASKMAG_UNVERIFIED_GPU", "1")
    args.out.mkdir(parents=True, exist_ok=True)
    work = args.work
    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    record = {"machine": machine_info(), "cases": {}}

    class Rows(list):  # each row is printed as it comes, so a run stopped early still shows its rows
        def append(self, row):
            super().append(row)
            print("| " + " | ".join(str(cell) for cell in row) + " |", flush=True)

    rows = Rows()

    def left() -> float:
        return args.budget - (time.perf_counter() - started)

    def skip(case: str, why: str):
        record["cases"][case] = {"skipped": why}
        rows.append([case, "-", "-", "-", "-", "-", f"skipped: {why}"])

    clip = synthetic_clip(HD["width"], HD["height"], args.frames, fps=HD["fps"], folder=work,
                          log=lambda m: print(m, file=sys.stderr))
    try:
        kernel = kernel_case(clip, args.frames)
        record["cases"]["kernel"] = kernel
        rows.append(["kernel 1080p (on device)", "cuda", kernel["core_frames"], f"{kernel['kernel_s']:.2f}",
                     f"{kernel['kernel_fps']:.0f}", f"{kernel['peak_pool_bytes'] / GIB:.1f} (pool)",
                     f"block {kernel['block_frames']} frames"])
        rows.append(["kernel 1080p (+ transfers)", "cuda", kernel["core_frames"],
                     f"{kernel['with_transfers_s']:.2f}", f"{kernel['with_transfers_fps']:.0f}", "-",
                     "same output" if kernel["transfer_path_same_output"] else "OUTPUT DIFFERS"])
    except Exception as exc:  # noqa: BLE001 - one line in the table, the rest goes on
        skip("kernel", f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")

    if left() > 60:
        hd = cli_case("hd-cuda", clip, work / "hd-cuda.mp4", HD_SETTINGS, ["--accel", "cuda"], logs)
        record["cases"]["hd"] = hd
        rows.append(["1080p x %d end to end (H.264)" % args.frames, "cuda", hd["frames"], f"{hd['wall_s']:.1f}",
                     f"{hd['fps']:.0f}" if hd["fps"] else "-",
                     f"{hd['peak_gpu_bytes'] / GIB:.1f}" if hd["peak_gpu_bytes"] else "-",
                     "ok" if hd["returncode"] == 0 else f"rc {hd['returncode']}: see {hd['log']}"])
    else:
        skip("hd", "time budget spent")

    if left() > 60:
        extra = ["--max-frames", str(args.diff_frames)]
        gpu_run = cli_case("hd-diff-cuda", clip, work / "hd-diff-cuda.mkv", HD_SETTINGS,
                           extra + ["--accel", "cuda"], logs)
        cpu_run = cli_case("hd-diff-cpu", clip, work / "hd-diff-cpu.mkv", HD_SETTINGS, extra, logs,
                           gpu_memory=False)
        diff = grey_difference(work / "hd-diff-cuda.mkv", work / "hd-diff-cpu.mkv") \
            if gpu_run["returncode"] == cpu_run["returncode"] == 0 else None
        record["cases"]["hd-diff"] = {"gpu": gpu_run, "cpu": cpu_run, "max_grey_difference": diff}
        rows.append([f"1080p x {args.diff_frames} GPU vs CPU (FFV1)", "cuda / cpu", gpu_run["frames"],
                     f"{gpu_run['wall_s']:.1f} / {cpu_run['wall_s']:.1f}", "-", "-",
                     f"max difference {diff} grey levels" if diff is not None else "runs failed: see logs"])
    else:
        skip("hd-diff", "time budget spent")

    if not args.guitar.exists():
        skip("guitar", f"{args.guitar} is absent")
    elif left() > 30:
        gpu_run = cli_case("guitar-cuda", args.guitar, work / "guitar-cuda.mkv", GUITAR_SETTINGS,
                           ["--accel", "cuda"], logs)
        cpu_run = cli_case("guitar-cpu", args.guitar, work / "guitar-cpu.mkv", GUITAR_SETTINGS, [], logs,
                           gpu_memory=False)
        diff = grey_difference(work / "guitar-cuda.mkv", work / "guitar-cpu.mkv") \
            if gpu_run["returncode"] == cpu_run["returncode"] == 0 else None
        record["cases"]["guitar"] = {"gpu": gpu_run, "cpu": cpu_run, "max_grey_difference": diff}
        for run, device in ((gpu_run, "cuda"), (cpu_run, "cpu")):
            rows.append(["guitar.mp4 end to end (FFV1)", device, run["frames"], f"{run['wall_s']:.1f}",
                         f"{run['fps']:.0f}" if run["fps"] else "-",
                         f"{run['peak_gpu_bytes'] / GIB:.1f}" if run.get("peak_gpu_bytes") else "-",
                         (f"max difference {diff} grey levels" if diff is not None else "runs failed: see logs")
                         if device == "cpu" else ("ok" if run["returncode"] == 0 else f"rc {run['returncode']}")])
    else:
        skip("guitar", "time budget spent")

    table = markdown_table(["case", "device", "frames", "wall s", "frames/s", "peak GPU GiB", "note"], rows)
    record["table"] = table
    record["elapsed_s"] = time.perf_counter() - started
    path = args.out / "gpu_bench.json"
    path.write_text(json.dumps(record, indent=2, default=str) + "\n")
    print(table)
    print(f"\nrecord: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
