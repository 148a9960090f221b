"""Decimate, magnify, interpolate back: a narrow band at a high recording rate with short filters."""

import dask.array as da
import numpy as np
import pytest

from daskmag.errors import UserError
from daskmag.graph.highrate import decimation_factor, decimation_taps, magnify_motion_decimated
from daskmag.graph.motion import magnify_motion
from daskmag.measure import motion_gain
from daskmag.synthetic import motion, texture, translate

FPS = 2000.0


@pytest.fixture(scope="module")
def fast_clip():
    """600 frames at 2000 fps, 12-bit mono: 0.05 px at 25 Hz (in band) and at 200 Hz (out)."""
    image = texture(32, 32)[..., 1:2]
    out = np.empty((600, 32, 32, 1), np.uint16)
    for i, dx in enumerate(motion(600, FPS, ((0.05, 25.0), (0.05, 200.0)))):
        out[i] = np.clip(np.rint(translate(image, dx) * 4095), 0, 4095)
    return out


def test_the_anti_aliasing_filter():
    q = decimation_factor(30, FPS)
    taps = decimation_taps(q, 30, FPS)
    assert q == 8 and len(taps) % 2 == 1 and (len(taps) // 2) % q == 0
    response = np.abs(np.fft.rfft(taps, 1 << 16))
    freqs = np.fft.rfftfreq(1 << 16, 1 / FPS)
    assert np.abs(response[freqs <= 30] - 1).max() < 1e-2  # the band passes
    assert response[freqs >= FPS / (2 * q)].max() < 2e-3  # nothing aliases (Kaiser design 60 dB, measured 58)


def test_decimated_magnification_matches_the_full_rate_one(fast_clip):
    full = magnify_motion(da.from_array(fast_clip), 10, 20, 30, FPS).compute(scheduler="sync")
    fast = magnify_motion_decimated(da.from_array(fast_clip), 10, 20, 30, FPS).compute(scheduler="sync")
    assert fast.shape == fast_clip.shape and fast.dtype == np.uint16
    gain_full = motion_gain(fast_clip, full, [25.0, 200.0], FPS, trim=60)
    gain_fast = motion_gain(fast_clip, fast, [25.0, 200.0], FPS, trim=60)
    assert abs(gain_fast[0] / gain_full[0] - 1) < 0.03  # in band: the same magnification
    assert abs(gain_fast[1] - 1) < 0.05  # out of band (above the decimated Nyquist rate): kept


def test_alpha_zero_is_the_input_and_8_bit_works(fast_clip):
    same = magnify_motion_decimated(da.from_array(fast_clip), 0, 20, 30, FPS).compute(scheduler="sync")
    assert np.array_equal(same, fast_clip)
    eight = np.rint(fast_clip / 16.0).astype(np.uint8)
    out = magnify_motion_decimated(da.from_array(eight), 10, 20, 30, FPS, factor=4).compute(scheduler="sync")
    assert out.dtype == np.uint8 and motion_gain(eight, out, [25.0], FPS, trim=60)[0] > 8


def test_too_much_decimation_is_refused(fast_clip):
    with pytest.raises(UserError, match="too slow for a band"):
        magnify_motion_decimated(da.from_array(fast_clip), 10, 20, 30, FPS, factor=40)
