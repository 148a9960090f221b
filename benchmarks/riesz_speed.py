#!/usr/bin/env python
"""Single-thread speed of the Riesz kernel against the octave kernel, on one time block.

Runs :func:`daskmag.kernels.phase.magnify_block` (octave complex steerable pyramid,
4 orientations) and :func:`daskmag.kernels.riesz.magnify_block_riesz` on the same
block, alternating A B A B so that drifts of the machine hit both alike,
``--repeats`` times each after one untimed warm-up call of each (FFT plans,
the per-thread working memory), and prints the median milliseconds per
output frame and the ratio, of wall-clock time and of the process's CPU
time (the steadier of the two on a shared machine: waiting for a core is
not counted).

The block is the first ``--frames`` frames of ``../shared/data/guitar.mp4``
(432x192, decoded with PyAV; the classic settings: filmed at 600 fps, band
72-92 Hz, alpha 20) when present, else a synthetic clip of the same size
(texture vibrating 0.1 px at 5 Hz, 60 fps, band 3-7 Hz).  Two layouts of the
block are timed:

- ``interior``: a block inside a long clip, its halos (the filter's
  ``halo_before``/``halo_after`` frames) read from the video: output frames
  ``[halo, T - halo)``;
- ``clip-ends``: a whole short clip, all ``T`` frames output, the halos
  supplied by linear prediction (``pad_before``/``pad_after``).

Threads are limited to one *before* NumPy is imported (``OMP_NUM_THREADS``,
``OPENBLAS_NUM_THREADS``, ``MKL_NUM_THREADS`` set to 1; SciPy's FFTs use one
worker by default).

Example::

    python benchmarks/riesz_speed.py                  # guitar.mp4 if present
    python benchmarks/riesz_speed.py --synthetic --frames 200 --repeats 3
    python benchmarks/riesz_speed.py --reach 0.5 --edge 1 --sigma 0   # the former layout

``--reach``, ``--edge`` and ``--sigma`` set the Riesz kernel's options of
those names (:func:`daskmag.kernels.riesz.magnify_block_riesz`); its gains
for each are measured by ``benchmarks/riesz_gain.py``.
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_name] = "1"

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

GUITAR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "guitar.mp4"


def guitar_frames(n: int) -> np.ndarray:
    """The first ``n`` frames of guitar.mp4 as (n, H, W, 3) uint8 RGB (PyAV)."""
    import av

    frames = []
    with av.open(str(GUITAR)) as container:
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))
            if len(frames) == n:
                break
    return np.stack(frames)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=200, help="frames in the block (default 200)")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls of each kernel (default 3)")
    parser.add_argument("--synthetic", action="store_true", help="use a synthetic clip even if guitar.mp4 exists")
    parser.add_argument("--size", default="432x192", help="synthetic frame size WxH (default 432x192)")
    parser.add_argument("--layouts", default="interior,clip-ends", help="comma-separated block layouts")
    parser.add_argument("--skip-octaves", type=int, default=None,
                        help="the Riesz kernel's skip_octaves (default: daskmag.kernels.riesz.SKIP_OCTAVES)")
    parser.add_argument("--reach", type=float, default=None,
                        help="the Riesz kernel's reach (default: daskmag.kernels.riesz.top_cutoff)")
    parser.add_argument("--edge", type=float, default=None,
                        help="the Riesz kernel's edge, octaves (default: daskmag.kernels.riesz.TOP_EDGE)")
    parser.add_argument("--sigma", type=float, default=None,
                        help="the Riesz kernel's sigma, px (default: its own default)")
    args = parser.parse_args(argv)

    from daskmag.kernels.phase import magnify_block
    from daskmag.kernels.riesz import SKIP_OCTAVES, magnify_block_riesz, riesz_filters
    from daskmag.synthetic import translating_clip
    from daskmag.kernels.temporal import make_filter

    if GUITAR.exists() and not args.synthetic:
        clip = guitar_frames(args.frames)
        source, temporal, alpha = f"{GUITAR.name}", make_filter("fir", 72, 92, 600.0), 20.0
        band = "72-92 Hz at 600 fps, alpha 20"
    else:
        width, height = (int(v) for v in args.size.lower().split("x"))
        clip = translating_clip(args.frames, height, width, 60.0, ((0.1, 5.0),))
        source, temporal, alpha = "synthetic texture", make_filter("fir", 3, 7, 60.0), 10.0
        band = "3-7 Hz at 60 fps, alpha 10"
    n, height, width, _ = clip.shape
    before, after = temporal.halo_before, temporal.halo_after
    layouts = {
        "interior": dict(start=before, stop=n - after),
        "clip-ends": dict(start=0, stop=n, pad_before=before, pad_after=after),
    }
    skip = SKIP_OCTAVES if args.skip_octaves is None else args.skip_octaves

    options = {name: value for name, value in (("reach", args.reach), ("edge", args.edge), ("sigma", args.sigma))
               if value is not None}

    def riesz(*a, **k):
        return magnify_block_riesz(*a, skip_octaves=skip, **options, **k)

    kernels = {"octave": magnify_block, "riesz": riesz}
    print(f"block: {source}, {n} frames of {width}x{height}, FIR {band}, halo {before}+{after}")
    shape_options = {name: options[name] for name in ("reach", "edge") if name in options}
    levels = [level.shape for level in riesz_filters((height, width), skip_octaves=skip, **shape_options).levels]
    print(f"Riesz levels (skip_octaves={skip}, {options or 'defaults'}): {levels}")
    print(f"single thread: OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}, numpy {np.__version__}")
    ratios = {}
    for layout in args.layouts.split(","):
        kwargs = layouts[layout]
        out_frames = kwargs["stop"] - kwargs["start"]
        times = {name: [] for name in kernels}
        cpu = {name: [] for name in kernels}
        for name, kernel in kernels.items():  # warm-up: FFT plans, working memory
            kernel(clip, temporal, alpha, **kwargs)
        for _ in range(args.repeats):
            for name, kernel in kernels.items():  # A B A B ...
                t0, c0 = time.perf_counter(), time.process_time()
                kernel(clip, temporal, alpha, **kwargs)
                times[name].append(time.perf_counter() - t0)
                cpu[name].append(time.process_time() - c0)
        for label, series in (("wall", times), ("cpu", cpu)):
            medians = {name: statistics.median(t) * 1e3 / out_frames for name, t in series.items()}
            ratios[layout, label] = medians["octave"] / medians["riesz"]
            runs = "; ".join(f"{name} " + " ".join(f"{t * 1e3 / out_frames:.2f}" for t in series[name])
                             for name in kernels)
            print(f"{layout:>10} {label:>4} ({out_frames} output frames): octave {medians['octave']:.2f} "
                  f"ms/frame, riesz {medians['riesz']:.2f} ms/frame, octave/riesz "
                  f"{ratios[layout, label]:.2f}x   [runs: {runs}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
