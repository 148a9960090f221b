"""The temporal FIR as banded matrix products (BLAS) against FFTs, side by side.

    OPENBLAS_NUM_THREADS=1 python benchmarks/fir_direct.py [--columns 10000] [--repeat 5]

:func:`daskmag.kernels.temporal.filter_increments` applies kernels up to
``DIRECT_MAX_TAPS`` taps as products of one small Toeplitz block with
successive row blocks of the series, longer ones through an FFT of the whole
series.  This times both on the same data, alternating, one thread (as a
daskmag worker runs BLAS), and prints the median CPU time of each and their
largest difference relative to the output's peak.  The cross-over it shows
is where ``DIRECT_MAX_TAPS`` belongs on this machine.
"""

import argparse
import statistics
import time

import numpy as np

import daskmag.kernels.temporal as temporal
from daskmag.kernels.temporal import design_bandpass, filter_increments, increment_kernel

CASES = [(31, 300), (111, 300), (111, 1200), (301, 600), (601, 600), (1001, 1000)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--columns", type=int, default=10_000, help="coefficients filtered at once")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    limit = temporal.DIRECT_MAX_TAPS
    print("| taps | output frames | FFT ms | matrix products ms | ratio | largest difference |")
    print("| --- | --- | --- | --- | --- | --- |")
    for taps, frames in CASES:
        kernel = increment_kernel(design_bandpass(5, 9, 60, taps))
        half = taps // 2
        series = rng.standard_normal((frames + 2 * half - 1, args.columns)).astype(np.float32)
        times = {"fft": [], "direct": []}
        results = {}
        for _ in range(args.repeat):
            for way, cap in (("fft", 0), ("direct", 10**9)):
                temporal.DIRECT_MAX_TAPS = cap
                started = time.process_time()
                results[way] = filter_increments(series, kernel, half, half + frames)
                times[way].append(time.process_time() - started)
        temporal.DIRECT_MAX_TAPS = limit
        fft, direct = (statistics.median(times[w]) * 1e3 for w in ("fft", "direct"))
        difference = np.abs(results["direct"] - results["fft"]).max() / np.abs(results["fft"]).max()
        print(f"| {taps} | {frames} | {fft:.1f} | {direct:.1f} | {direct / fft:.2f} | {difference:.0e} |")
    print(f"\nDIRECT_MAX_TAPS = {limit}: kernels up to it take the matrix products.")


if __name__ == "__main__":
    main()
