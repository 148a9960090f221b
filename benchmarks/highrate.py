"""Cost of a narrow band at a very high recording rate: full-rate FIR against decimate-magnify-interpolate.

A 16-bit mono texture moves 0.05 px at 25 Hz (in the band 24-26 Hz) and 0.05
px at 700 Hz (out of it), filmed at 10,000 fps.  Both methods run on one
thread (``scheduler="sync"``), A B A B; the table gives wall time, the filter
lengths and halos, the measured gains and the peak traced memory of NumPy.

    python benchmarks/highrate.py --frames 12000 --size 64 --repeat 2

Not a test: pytest never collects it.
"""

from __future__ import annotations

import argparse
import statistics
import time
import tracemalloc

import dask.array as da
import numpy as np

from daskmag.graph.highrate import decimation_factor, decimation_taps, magnify_motion_decimated
from daskmag.graph.motion import magnify_motion
from daskmag.kernels.temporal import default_taps
from daskmag.measure import motion_gain
from daskmag.synthetic import motion, texture, translate

FPS, LOW, HIGH = 10_000.0, 24.0, 26.0


def clip(n, size):
    image = texture(size, size)[..., 1:2]
    out = np.empty((n, size, size, 1), np.uint16)
    for i, dx in enumerate(motion(n, FPS, ((0.05, 25.0), (0.05, 700.0)))):
        out[i] = np.clip(np.rint(translate(image, dx) * 4095), 0, 4095)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=12_000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args(argv)
    frames = clip(args.frames, args.size)
    q = decimation_factor(HIGH, FPS)
    methods = {
        "full rate": lambda: magnify_motion(da.from_array(frames), 10, LOW, HIGH, FPS),
        f"decimated by {q}": lambda: magnify_motion_decimated(da.from_array(frames), 10, LOW, HIGH, FPS),
    }
    times, gains, peaks = {k: [] for k in methods}, {}, {}
    for _ in range(args.repeat):
        for name, build in methods.items():  # A B A B
            tracemalloc.start()
            start = time.perf_counter()
            out = build().compute(scheduler="sync")
            times[name].append(time.perf_counter() - start)
            peaks[name] = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            gains[name] = motion_gain(frames, out, [25.0, 700.0], FPS, trim=500)
    full_taps = default_taps(LOW, HIGH, FPS)
    low_taps = default_taps(LOW, HIGH, FPS / q)
    aa = len(decimation_taps(q, HIGH, FPS))
    halos = {"full rate": f"{full_taps} taps, halo {full_taps // 2} frames",
             f"decimated by {q}": f"{aa}-tap anti-alias + {low_taps} taps at {FPS / q:g} fps: "
                                  f"halo {aa // 2 + q * (low_taps // 2)} frames of time, {low_taps // 2} decimated"}
    print(f"{args.frames} frames of {args.size}x{args.size} 16-bit mono at {FPS:g} fps, band {LOW:g}-{HIGH:g} Hz, "
          f"alpha 10, one thread, median of {args.repeat}:\n")
    print("| method | filter | wall s | frames/s | gain 25 Hz | gain 700 Hz | peak NumPy MiB |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for name in methods:
        wall = statistics.median(times[name])
        print(f"| {name} | {halos[name]} | {wall:.1f} | {args.frames / wall:.0f} | {gains[name][0]:.2f} | "
              f"{gains[name][1]:.3f} | {peaks[name] / 2**20:.0f} |")


if __name__ == "__main__":
    main()
