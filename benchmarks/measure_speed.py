"""``daskmag measure`` against ``daskmag magnify`` on guitar.mp4, and against an independent estimate.

1. Speed: the two commands as a user runs them (whole process: start,
   cluster, decode, compute, write), alternated, ``--repeat`` times each
   (default 3); wall time and CPU time (user + system of the process and its
   children, from ``wait4``), medians.
2. Agreement: the local-phase estimator (:func:`daskmag.measure.measure_video`)
   against scikit-image's ``phase_cross_correlation`` (upsampled 1000x,
   every frame against the first) and against the truth, on a synthetic clip
   of known motion, and the two estimators against each other on a region of
   guitar.mp4 (the low E string), at the string's frequency.

Usage::

    python benchmarks/measure_speed.py [--repeat 3] [--workers N] [--skip-speed]

Writes ``benchmarks/results/measure_speed-*.json`` (git-ignored) and prints
Markdown tables.  Needs scikit-image (``pip install -e ".[test]"``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import GUITAR, RESULTS_DIR, markdown_table, start_report, write_json  # noqa: E402

ROI = (100, 35, 100, 25)  # the low E string over the body, x, y, w, h
FPS = 600.0


def timed(cmd, log: Path) -> dict:
    """Run ``cmd``; wall seconds and CPU seconds (user + system of it and its children)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    if code:
        raise SystemExit(f"{' '.join(map(str, cmd))} failed ({code}); see {log}")
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime}


def speed(repeat: int, workers: int | None) -> dict:
    out = RESULTS_DIR / "out"
    out.mkdir(parents=True, exist_ok=True)
    extra = ["--workers", str(workers)] if workers else []
    commands = {
        "measure": [sys.executable, "-m", "daskmag", "measure", str(GUITAR), "-o", str(out / "guitar-measure"),
                    "--fps", "600", "--roi", ",".join(map(str, ROI)), "--overwrite", "--no-progress", *extra],
        "magnify": [sys.executable, "-m", "daskmag", "magnify", str(GUITAR), "-o", str(out / "guitar-x20.mp4"),
                    "--alpha", "20", "--low", "72", "--high", "92", "--fps", "600", "--overwrite",
                    "--no-progress", *extra],
    }
    runs = {name: [] for name in commands}
    for i in range(repeat):
        for name, cmd in commands.items():  # alternated: drift in machine load hits both alike
            runs[name].append(timed(cmd, RESULTS_DIR / "logs" / f"measure_speed-{name}-{i}.log"))
            print(f"{name} run {i + 1}: {runs[name][-1]['wall_s']:.2f} s wall, "
                  f"{runs[name][-1]['cpu_s']:.2f} s CPU", file=sys.stderr)
    shutil.rmtree(out / "guitar-measure", ignore_errors=True)
    (out / "guitar-x20.mp4").unlink(missing_ok=True)
    medians = {name: {key: statistics.median(r[key] for r in rs) for key in ("wall_s", "cpu_s")}
               for name, rs in runs.items()}
    table = markdown_table(
        ["command", f"median wall (s) of {repeat}", f"median CPU (s) of {repeat}"],
        [[name, f"{m['wall_s']:.2f}", f"{m['cpu_s']:.2f}"] for name, m in medians.items()])
    return {"commands": {k: " ".join(v) for k, v in commands.items()}, "runs": runs, "medians": medians,
            "table": table}


def skimage_shifts(images, upsample: int = 1000) -> np.ndarray:
    """(T, 2) ``dx, dy`` of every image against the first, by upsampled phase cross-correlation."""
    from skimage.registration import phase_cross_correlation

    shifts = np.zeros((len(images), 2))
    for t in range(1, len(images)):
        # the shift that registers the moving image to the reference: minus the motion, as (dy, dx)
        shift = phase_cross_correlation(images[0], images[t], upsample_factor=upsample)[0]
        shifts[t] = -shift[1], -shift[0]
    return shifts


def agreement() -> dict:
    from daskmag.kernels.colourspace import luma
    from daskmag.measure import Region, amplitude_spectrum, measure_video
    from daskmag.synthetic import motion, texture, translate

    rows, record = [], {}
    # synthetic: known motion, 128x128, 240 frames at 60 fps
    fps, n, size = 60.0, 240, 128
    truth = np.stack([motion(n, fps, ((0.3, 5.0), (0.05, 17.0))), motion(n, fps, ((0.15, 13.0),))], axis=1)
    image = texture(size, size, 2)
    frames = np.stack([np.clip(np.rint(translate(image, dx, dy) * 255), 0, 255).astype(np.uint8)
                       for dx, dy in truth])
    began = time.perf_counter()
    ours = measure_video(frames, fps, [Region("frame", 0, 0, size, size)]).displacement[:, 0]
    ours_s = time.perf_counter() - began
    began = time.perf_counter()
    theirs = skimage_shifts(luma(frames))
    theirs_s = time.perf_counter() - began
    f, a_truth = amplitude_spectrum(truth, fps, n)
    _, a_ours = amplitude_spectrum(ours, fps, n)
    _, a_theirs = amplitude_spectrum(theirs, fps, n)
    for (freq, k, true_amp) in ((5.0, 0, 0.3), (17.0, 0, 0.05), (13.0, 1, 0.15)):
        i = int(np.argmin(np.abs(f - freq)))
        rows.append([f"synthetic {'xy'[k]} {freq:g} Hz", f"{true_amp:g}", f"{a_ours[i, k]:.4f}",
                     f"{a_theirs[i, k]:.4f}"])
    rms = lambda e: float(np.sqrt(np.mean(e**2)))  # noqa: E731
    record["synthetic"] = {
        "rms_error_px": {"local_phase": rms(ours - truth), "skimage": rms(theirs - truth),
                         "between": rms(ours - theirs)},
        "seconds": {"local_phase": ours_s, "skimage": theirs_s},
    }
    rows.append(["synthetic, RMS error per frame (px)", "0", f"{rms(ours - truth):.4f}", f"{rms(theirs - truth):.4f}"])
    # guitar: the low E string region, both at the strongest peak near 82 Hz
    if GUITAR.exists():
        from daskmag.io import open_video

        video = open_video(GUITAR)
        x, y, w, h = ROI
        ours = measure_video(video, FPS, [Region("roi1", x, y, w, h)]).displacement[:, 0]
        clip = luma(video.frames.compute())[:, y : y + h, x : x + w]
        theirs = skimage_shifts(clip)
        f, a_ours = amplitude_spectrum(ours, FPS)
        _, a_theirs = amplitude_spectrum(theirs, FPS)
        near = (f > 70) & (f < 95)
        for k in (0, 1):
            i = np.flatnonzero(near)[np.argmax(a_ours[near, k])]
            rows.append([f"guitar roi {','.join(map(str, ROI))} {'xy'[k]} at {f[i]:.0f} Hz", "?",
                         f"{a_ours[i, k]:.4f}", f"{a_theirs[i, k]:.4f}"])
        from scipy.signal import butter, sosfiltfilt

        sos = butter(4, [72, 92], btype="band", fs=FPS, output="sos")
        band = lambda s: sosfiltfilt(sos, s, axis=0)  # noqa: E731
        correlation = [float(np.corrcoef(band(ours)[:, k], band(theirs)[:, k])[0, 1]) for k in (0, 1)]
        record["guitar"] = {"roi": ROI, "band_correlation_72_92_hz": correlation}
        rows.append(["guitar, correlation of the 72-92 Hz motion (x, y)", "", f"{correlation[0]:.3f}",
                     f"{correlation[1]:.3f}"])
    record["table"] = markdown_table(["case", "truth (px)", "daskmag measure (px)",
                                      "skimage phase_cross_correlation x1000 (px)"], rows)
    return record


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--skip-speed", action="store_true")
    args = parser.parse_args(argv)
    if not GUITAR.exists():
        raise SystemExit(f"{GUITAR} is absent")
    info, warning = start_report()
    record = {"machine": info, "busy_warning": warning}
    if not args.skip_speed:
        record["speed"] = speed(args.repeat, args.workers)
        print(record["speed"]["table"])
    record["agreement"] = agreement()
    print(record["agreement"]["table"])
    print(f"wrote {write_json('measure_speed', record)}", file=sys.stderr)


if __name__ == "__main__":
    main()
