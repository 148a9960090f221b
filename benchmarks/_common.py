"""Shared helpers of the benchmark scripts (not part of daskmag, never run by pytest).

- :func:`synthetic_clip`: a cached, lossless FFV1 clip of a vibrating texture,
  streamed to disk frame batch by frame batch (bounded memory).
- :func:`run_measured`: run a command, sample the summed RSS of its whole
  process tree every ~50 ms, and time it.
- small formatting helpers (Markdown tables, JSON with machine details).
"""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from fractions import Fraction
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = BENCH_DIR.parent
#: Git-ignored folder for generated clips, outputs, logs and JSON results.
RESULTS_DIR = BENCH_DIR / "results"
CACHE_DIR = RESULTS_DIR / "cache"
#: The real clip, next to the project root (as the tests expect it).
GUITAR = PROJECT_ROOT.parent / "shared" / "data" / "guitar.mp4"

GIB = 2**30


# --------------------------------------------------------------------------- arguments


def split_passthrough(argv):
    """``(own_args, daskmag_args)``: everything after a lone ``--`` goes to daskmag."""
    argv = list(argv)
    if "--" in argv:
        cut = argv.index("--")
        return argv[:cut], argv[cut + 1 :]
    return argv, []


def parse_size(text: str) -> tuple[int, int]:
    """``"1920x1080"`` -> ``(1920, 1080)`` (width, height)."""
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"expected a size like 1920x1080, got {text!r}") from None
    if width < 16 or height < 16:
        raise ValueError(f"frames of {text} are too small (daskmag needs at least 16x16)")
    return width, height


def default_workers() -> int:
    """What ``daskmag magnify`` uses without ``--workers`` (one per usable core)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


# --------------------------------------------------------------------------- synthetic clip


def synthetic_clip(width: int, height: int, n_frames: int, *, fps: int = 60, amplitude: float = 0.1,
                   frequency: float = 5.0, tiles: int = 4, seed: int = 0, folder: Path = CACHE_DIR,
                   log=print) -> Path:
    """Path of a lossless FFV1 ``.mkv`` of a texture vibrating horizontally; made once, then cached.

    A periodic ``1/f`` colour texture tile of about ``(height / tiles, width / tiles)``
    is shifted by ``amplitude * sin(2 pi frequency t)`` pixels, exactly, by a
    Fourier phase ramp (:func:`daskmag.synthetic.translate`), and repeated
    ``tiles x tiles`` times (cropped to the frame).  Frames are streamed to the
    encoder in small batches, so generating a long HD clip needs little memory.
    When the motion repeats after a whole number of frames (60 fps and 5 Hz:
    every 12 frames) those frames are computed once.
    """
    import numpy as np

    from daskmag.io import VideoWriter
    from daskmag.synthetic import texture, translate

    folder.mkdir(parents=True, exist_ok=True)
    name = (f"vibrating_{width}x{height}_{n_frames}f_{fps}fps_{amplitude:g}px_{frequency:g}Hz"
            f"_tiles{tiles}_seed{seed}.mkv")
    path = folder / name
    if path.exists():  # the writer renames its partial file only when complete
        return path
    tile_h, tile_w = math.ceil(height / tiles), math.ceil(width / tiles)
    tile = texture(tile_h, tile_w, seed)
    period = fps / frequency
    repeat = int(round(period)) if abs(period - round(period)) < 1e-9 else None
    cache: dict[int, np.ndarray] = {}

    def frame(index: int) -> np.ndarray:
        key = index % repeat if repeat else None
        if key is not None and key in cache:
            return cache[key]
        dx = amplitude * math.sin(2 * math.pi * frequency * index / fps)
        small = np.clip(np.rint(translate(tile, dx) * 255.0), 0, 255).astype(np.uint8)
        full = np.ascontiguousarray(np.tile(small, (tiles, tiles, 1))[:height, :width])
        if key is not None and repeat <= 256:
            cache[key] = full
        return full

    log(f"generating {path.name} ({n_frames} frames of {width}x{height}, FFV1) ...")
    started = time.perf_counter()
    writer = VideoWriter(path, Fraction(fps), height, width)
    batch = 16
    try:
        for first in range(0, n_frames, batch):
            writer.write(np.stack([frame(i) for i in range(first, min(first + batch, n_frames))]))
    except BaseException:
        writer.abort()
        raise
    writer.close()
    log(f"  done in {time.perf_counter() - started:.1f} s, {path.stat().st_size / 2**20:.0f} MiB")
    return path


# --------------------------------------------------------------------------- measured run


def _tree_rss(root) -> tuple[int, int]:
    """(summed RSS in bytes, number of processes) of ``root`` and all its descendants."""
    import psutil

    try:
        procs = [root] + root.children(recursive=True)
    except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
        return 0, 0
    total = count = 0
    for proc in procs:
        try:
            total += proc.memory_info().rss
            count += 1
        except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
            pass
    return total, count


def run_measured(cmd, *, log_path: Path, output: Path | None = None, interval: float = 0.05,
                 cwd: Path | None = None) -> dict:
    """Run ``cmd``; return its wall time and the peak RSS summed over its process tree.

    The RSS of the process and of all its descendants (e.g. Dask worker
    processes) is summed every ``interval`` seconds and the largest sum is
    kept.  The kernel's own high-water mark of the largest single process
    (``ru_maxrss`` from ``wait4``) is returned too, as a check on spikes
    shorter than the sampling interval.  stdout and stderr go to ``log_path``.
    """
    import psutil

    log_path.parent.mkdir(parents=True, exist_ok=True)
    peak = peak_procs = 0
    samples = 0
    output_ready = None
    with open(log_path, "wb") as log:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=cwd)
        try:
            root = psutil.Process(proc.pid)
            while True:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    break
                total, count = _tree_rss(root)
                samples += 1
                if total > peak:
                    peak, peak_procs = total, count
                if output_ready is None and output is not None and output.exists():
                    output_ready = time.perf_counter() - started
                time.sleep(interval)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
    text = log_path.read_text(errors="replace")
    return {
        "returncode": proc.returncode,
        "wall_s": wall,
        "output_ready_s": output_ready,
        "peak_rss_sum_bytes": peak,
        "processes_at_peak": peak_procs,
        "max_single_process_rss_bytes": usage.ru_maxrss * 1024,  # Linux reports KiB
        "rss_samples": samples,
        "log": str(log_path),
        "log_tail": text[-2000:],
    }


def frames_written(log_text: str) -> int | None:
    """The frame count in daskmag's ``wrote OUT: N frames of WxH at F fps`` line."""
    import re

    match = re.search(r"wrote .*?: (\d+) frames of (\d+)x(\d+)", log_text)
    return int(match.group(1)) if match else None


def daskmag_magnify(source: Path, output: Path, *, alpha, low, high, fps=None, workers=None,
                    extra=()) -> list[str]:
    """The ``python -m daskmag magnify ...`` command line."""
    cmd = [sys.executable, "-m", "daskmag", "magnify", str(source), "-o", str(output),
           "--alpha", f"{alpha:g}", "--low", f"{low:g}", "--high", f"{high:g}",
           "--overwrite", "--no-progress"]
    if fps is not None:
        cmd += ["--fps", f"{fps:g}"]
    if workers is not None:
        cmd += ["--workers", str(workers)]
    return cmd + list(extra)


def remove_output(path: Path):
    import shutil

    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        path.unlink()


# --------------------------------------------------------------------------- reporting


def gib(n_bytes) -> str:
    return "-" if n_bytes is None else f"{n_bytes / GIB:.2f}"


def markdown_table(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _git(*args) -> str | None:
    try:
        return subprocess.run(["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def machine_info() -> dict:
    """Where and with what the numbers were taken (for the JSON record)."""
    import psutil

    versions = {}
    for module in ("daskmag", "numpy", "scipy", "dask", "distributed", "av", "psutil"):
        try:
            versions[module] = __import__(module).__version__
        except Exception:  # noqa: BLE001 - informative only
            versions[module] = None
    return {
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "cpus_usable": default_workers(),
        "cpus_logical": os.cpu_count(),
        "memory_total_gib": round(psutil.virtual_memory().total / GIB, 2),
        "load_average_at_start": os.getloadavg(),
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "versions": versions,
    }


def busy_warning(info: dict) -> str | None:
    """A warning line when the machine was not idle at the start."""
    load = info["load_average_at_start"][0]
    if load > 0.25 * info["cpus_usable"]:
        return (f"WARNING: load average {load:.2f} on {info['cpus_usable']} usable cores at the "
                f"start: the machine is busy, timings are not representative")
    return None


def start_report() -> tuple[dict, str | None]:
    """The machine's facts, and its busy warning (printed to stderr) if any."""
    info = machine_info()
    warning = busy_warning(info)
    if warning:
        print(warning, file=sys.stderr)
    return info, warning


def write_json(prefix: str, record: dict) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    path = RESULTS_DIR / f"{prefix}-{stamp}.json"
    path.write_text(json.dumps(record, indent=2, default=str) + "\n")
    return path
