#!/usr/bin/env python
"""Gains of the Riesz kernel against the octave kernel, and what sets them.

Runs :func:`daskmag.kernels.phase.magnify_block` (octave complex steerable
pyramid, 4 and 2 orientations) and
:func:`daskmag.kernels.riesz.magnify_block_riesz` (its default, and the
layouts that explain it) on the tests' clips (``tests/conftest.py``: 120
frames of 128x128 at 60 fps, moving 0.1 px at 5 Hz, in the 3-7 Hz band, and
0.1 px at 15 Hz, out of it; FIR filter; alpha 10; the whole clip as one
block, its ends continued by prediction) and measures as the tests do
(:func:`daskmag.measure.motion_gain`, 5 frames trimmed at each end):

- ``texture in``, ``texture out``: in-band and out-of-band gains on the
  broadband (1/f) texture; ``grating in``, ``grating out``: on a grating;
- ``3rd harm.``: the 15 Hz motion (px) in the output of the texture moving
  at 5 Hz only (input: 0.0001 px), i.e. the third harmonic of the
  magnified in-band motion, which lands on the tests' out-of-band
  frequency;
- ``out 17 Hz``: the out-of-band gain when that motion is at 17 Hz instead,
  away from the harmonic (what is left is the in-band motion's
  intermodulation).

Example::

    python benchmarks/riesz_gain.py
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

ALPHA = 10.0


def main() -> int:
    from conftest import BAND, FPS, IN_BAND, OUT_OF_BAND
    from daskmag.kernels.phase import magnify_block
    from daskmag.kernels.pyramid import PyramidSpec
    from daskmag.kernels.riesz import magnify_block_riesz
    from daskmag.kernels.temporal import make_filter
    from daskmag.measure import global_shifts, motion_gain
    from daskmag.measure.registration import sinusoid_amplitudes
    from daskmag.synthetic import translating_clip

    texture = translating_clip(120, 128, 128, FPS, ((0.1, IN_BAND), (0.1, OUT_OF_BAND)))
    grating = translating_clip(120, 128, 128, FPS, ((0.1, IN_BAND), (0.1, OUT_OF_BAND)), pattern="grating")
    in_band_only = translating_clip(120, 128, 128, FPS, ((0.1, IN_BAND),))
    away = translating_clip(120, 128, 128, FPS, ((0.1, IN_BAND), (0.1, 17.0)))
    temporal = make_filter("fir", *BAND, FPS)
    halo = dict(pad_before=temporal.halo_before, pad_after=temporal.halo_after)

    def gains(clip, out, out_of_band=OUT_OF_BAND):
        return motion_gain(clip, out, [IN_BAND, out_of_band], FPS, trim=5)

    def third_harmonic(out):
        return sinusoid_amplitudes(global_shifts(out)[5:-5, 1], [IN_BAND, 3 * IN_BAND], FPS)[1]

    def octave(orientations):
        spec = PyramidSpec(orientations=orientations)
        return lambda clip: magnify_block(clip, temporal, ALPHA, spec, 0, len(clip), **halo)

    def riesz(**options):
        return lambda clip: magnify_block_riesz(clip, temporal, ALPHA, 0, len(clip), **halo, **options)

    kernels = {
        "octave, 4 orientations": octave(4),
        "octave, 2 orientations": octave(2),
        "riesz (default)": riesz(),
        "riesz, no smoothing (sigma=0)": riesz(sigma=0.0),
        "riesz, octave band 1 (reach 1/2, edge 1)": riesz(reach=0.5, edge=1.0, sigma=0.0),
        "riesz, every octave (skip 0, reach 1, edge 1)": riesz(skip_octaves=0, reach=1.0, edge=1.0, sigma=0.0),
    }
    print(f"alpha {ALPHA:g}; the tests' clips: 128x128, 120 frames at {FPS:g} fps, 0.1 px at {IN_BAND:g} Hz "
          f"(band {BAND[0]:g}-{BAND[1]:g} Hz) and {OUT_OF_BAND:g} Hz")
    print(f"{'kernel':46} {'texture in':>10} {'texture out':>11} {'3rd harm.':>9} {'out 17 Hz':>9} "
          f"{'grating in':>10} {'grating out':>11}")
    for name, kernel in kernels.items():
        tex = gains(texture, kernel(texture))
        harmonic = third_harmonic(kernel(in_band_only))
        seventeen = gains(away, kernel(away), 17.0)[1]
        grat = gains(grating, kernel(grating))
        print(f"{name:46} {tex[0]:10.2f} {tex[1]:11.3f} {harmonic:9.4f} {seventeen:9.3f} {grat[0]:10.2f} "
              f"{grat[1]:11.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
