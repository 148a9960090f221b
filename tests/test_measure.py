"""The motion measurements the other tests rely on."""

import numpy as np
import pytest

from daskmag.measure import global_shifts, pairwise_shifts, sinusoid_amplitudes
from daskmag.synthetic import texture, translate


@pytest.mark.parametrize("dx,dy", [(0.1, 0.0), (-0.37, 0.2), (1.5, -0.8)])
def test_global_shifts_recover_known_translations(dx, dy):
    image = texture(96, 128, seed=2)
    frames = np.stack([image, translate(image, dx, dy)])
    frames = np.clip(np.rint(frames * 255), 0, 255).astype(np.uint8)
    shift = global_shifts(frames)[1]
    assert shift == pytest.approx([dy, dx], abs=0.01)


def test_pairwise_shifts_ignore_shared_motion():
    image = texture(64, 64, seed=3)
    before = np.stack([translate(image, 3.0 * t) for t in range(4)])
    after = np.stack([translate(image, 3.0 * t + 0.25) for t in range(4)])
    shifts = pairwise_shifts(before.mean(-1), after.mean(-1))
    assert np.allclose(shifts[:, 1], 0.25, atol=0.01)


def test_sinusoid_amplitudes():
    t = np.arange(200) / 50.0
    signal = 0.3 * np.sin(2 * np.pi * 5 * t + 1) + 0.05 * np.cos(2 * np.pi * 11 * t) + 2 + 0.1 * t
    assert sinusoid_amplitudes(signal, [5, 11], 50) == pytest.approx([0.3, 0.05], abs=1e-6)
