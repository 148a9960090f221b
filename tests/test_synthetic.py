"""Synthetic clips: the known motion is really there."""

import numpy as np
import pytest

from daskmag.measure import global_shifts
from daskmag.synthetic import grating, motion, texture, translating_clip


def test_clip_moves_as_specified():
    clip = translating_clip(60, 64, 96, 30.0, ((0.2, 2.0),))
    assert clip.shape == (60, 64, 96, 3) and clip.dtype == np.uint8
    measured = global_shifts(clip)[:, 1]
    assert np.abs(measured - motion(60, 30.0, ((0.2, 2.0),))).max() < 0.01


def test_texture_is_coloured_and_broadband():
    tex = texture(64, 64)
    assert tex.min() >= 0 and tex.max() <= 1
    assert np.std(tex[..., 0] - tex[..., 2]) > 0.02
    spectrum = np.abs(np.fft.fft2(tex[..., 1] - tex[..., 1].mean()))
    assert (spectrum > spectrum.max() * 1e-3).mean() > 0.5


def test_grating_has_one_spatial_frequency():
    g = grating(32, 64, period=16)
    spectrum = np.abs(np.fft.rfft(g[0, :, 1] - g[0, :, 1].mean()))
    assert np.argmax(spectrum) == 4 and np.sort(spectrum)[-2] < 1e-9 * spectrum.max()


def test_sensor_noise_is_added():
    clean = translating_clip(5, 32, 32, 30, ((0.0, 1.0),))
    noisy = translating_clip(5, 32, 32, 30, ((0.0, 1.0),), noise=2.0)
    assert np.std(noisy.astype(float) - clean) == pytest.approx(2.0, rel=0.2)
