"""Temporal band-pass: design, measured response, increments form, clip ends."""

import numpy as np
import pytest
import scipy.signal

from daskmag.kernels.temporal import (
    default_taps,
    extend_by_prediction,
    design_bandpass,
    filter_increments,
    frequency_response,
    increment_kernel,
    kaiser_beta,
    kaiser_length,
    reference_highpass,
    windowed_sinc,
)


def _filter_signal(signal, taps, pad=True):
    """Run a 1-D signal through the production path (increments, symmetric padding)."""
    half = len(taps) // 2
    increments = np.diff(signal)[:, None]
    n = len(signal)
    return filter_increments(increments, increment_kernel(taps), 0, n, half, half)[:, 0]


def test_default_taps_are_odd_and_grow_as_the_band_narrows():
    wide = default_taps(3, 7, 60)
    narrow = default_taps(4, 6, 60)
    assert wide % 2 == 1 and narrow % 2 == 1
    assert narrow > wide
    assert default_taps(72, 92, 600) == default_taps(7.2, 9.2, 60)


def test_design_matches_scipy_firwin_and_has_zero_dc():
    taps = design_bandpass(3, 7, 60)
    assert abs(taps.sum()) < 1e-12
    assert np.allclose(taps, taps[::-1])
    beta = scipy.signal.kaiser_beta(60)
    reference = scipy.signal.firwin(len(taps), [3, 7], pass_zero=False, window=("kaiser", beta), fs=60)
    freqs = [0.5, 2, 3, 4, 5, 6, 7, 9, 12, 15, 20]
    ours, theirs = frequency_response(taps, freqs, 60), frequency_response(reference, freqs, 60)
    assert np.allclose(ours, theirs, atol=2e-3)


@pytest.mark.parametrize("low, high, fps", [(72, 92, 600), (3, 7, 60), (0.5, 3, 30), (100, 300, 20000),
                                             (1, 2, 29.97), (40, 55, 120)])
def test_numpy_window_design_equals_scipy(low, high, fps):
    """The NumPy design (no scipy.signal import at start-up) is SciPy's, to rounding."""
    width = 2 * low / (fps / 2)
    numtaps, beta = scipy.signal.kaiserord(60, width)
    assert (kaiser_length(60, width), kaiser_beta(60)) == (numtaps, beta)
    for attenuation in (10, 21, 30, 50, 80):
        assert kaiser_beta(attenuation) == pytest.approx(scipy.signal.kaiser_beta(attenuation), abs=1e-15)
    taps = default_taps(low, high, fps)
    expected = scipy.signal.firwin(taps, [low, high], pass_zero=False, window=("kaiser", beta), fs=fps)
    np.testing.assert_allclose(windowed_sinc(taps, [(low, high)], fps, beta), expected, rtol=0, atol=1e-15)
    lowpass = scipy.signal.firwin(101, low / 2, window=("kaiser", beta), fs=fps)
    np.testing.assert_allclose(windowed_sinc(101, [(0, low / 2)], fps, beta), lowpass, rtol=0, atol=1e-15)
    # the production filters built on it
    window = scipy.signal.get_window(("kaiser", beta), taps, fftbins=False)
    bandpass = expected - window * (expected.sum() / window.sum())
    np.testing.assert_allclose(design_bandpass(low, high, fps), bandpass, rtol=0, atol=1e-15)
    length = max(3, scipy.signal.kaiserord(60, low / (fps / 2))[0]) | 1
    lowpass = scipy.signal.firwin(length, low / 2, window=("kaiser", beta), fs=fps)
    highpass = -lowpass / lowpass.sum()
    highpass[length // 2] += 1
    np.testing.assert_allclose(reference_highpass(low, fps).taps, highpass, rtol=0, atol=1e-15)


@pytest.mark.parametrize("frequency", [1.0, 3.0, 4.0, 5.0, 6.0, 7.0, 10.0, 15.0])
def test_measured_response_matches_the_design(frequency):
    """A sinusoid through the production filter comes out scaled by |H(f)|."""
    fps, n = 60.0, 600
    taps = design_bandpass(3, 7, fps)
    t = np.arange(n) / fps
    out = _filter_signal(np.sin(2 * np.pi * frequency * t), taps)
    half = len(taps) // 2
    core = out[2 * half : -2 * half]
    tc = t[2 * half : -2 * half]
    design = np.stack([np.cos(2 * np.pi * frequency * tc), np.sin(2 * np.pi * frequency * tc)], 1)
    amplitude = np.hypot(*np.linalg.lstsq(design, core, rcond=None)[0])
    expected = frequency_response(taps, [frequency], fps)[0]
    assert amplitude == pytest.approx(expected, rel=0.02, abs=0.01)


def test_increments_form_equals_direct_convolution():
    rng = np.random.default_rng(0)
    signal = np.cumsum(rng.standard_normal((300, 3)), axis=0)  # a random walk: large drift
    taps = design_bandpass(2, 9, 60)
    half = len(taps) // 2
    direct = np.stack([np.convolve(signal[:, k], taps, mode="valid") for k in range(3)], 1)
    ours = filter_increments(np.diff(signal, axis=0).astype(np.float64), increment_kernel(taps),
                             half, 300 - half)
    assert np.allclose(ours, direct, atol=1e-9)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("taps, pads", [(31, (15, 15)), (111, (0, 55)), (301, (150, 0)), (111, (0, 0))])
def test_matrix_products_and_ffts_give_the_same_filter(monkeypatch, dtype, taps, pads):
    """Kernels up to DIRECT_MAX_TAPS are applied as banded matrix products
    (BLAS), longer ones through FFTs: both are the same correlation."""
    import daskmag.kernels.temporal as temporal

    rng = np.random.default_rng(taps)
    n, half = 700, taps // 2
    kernel = increment_kernel(design_bandpass(5, 9, 60, taps))
    increments = rng.standard_normal((n - 1, 4, 3)).astype(dtype)
    start, stop = half - pads[0], n - half + pads[1]  # every output sample the pads allow
    direct = filter_increments(increments, kernel, start, stop, *pads)
    monkeypatch.setattr(temporal, "DIRECT_MAX_TAPS", 0)
    through_ffts = filter_increments(increments, kernel, start, stop, *pads)
    assert direct.shape == through_ffts.shape == (stop - start, 4, 3)
    assert direct.dtype == through_ffts.dtype == dtype
    scale = np.abs(through_ffts).max()
    assert np.abs(direct - through_ffts).max() <= (1e-5 if dtype == np.float32 else 1e-12) * scale


@pytest.mark.parametrize("products", [True, False])
@pytest.mark.parametrize("taps, pads", [(111, (55, 55)), (31, (0, 15)), (301, (150, 150))])
@pytest.mark.parametrize("rows, width", [(5, 7), (70, 128)])  # a frame's runs shorter and longer than the compiled copy's least
def test_float16_increments_filter_as_their_float32_copy_does(monkeypatch, products, taps, pads, rows, width,
                                                               kernel_path):
    """Stage 2 hands float16 storage to the FIR as it is: the products (or FFTs,
    past DIRECT_MAX_TAPS) and the clip-end fits read it in float32, bit for bit
    as a float32 copy would be filtered; from whole pieces and from strips of
    their rows, in pieces as stage 2 gets them."""
    import daskmag.kernels.temporal as temporal

    if not products:
        monkeypatch.setattr(temporal, "DIRECT_MAX_TAPS", 0)
    rng = np.random.default_rng(taps)
    n, half = 400, taps // 2
    kernel = increment_kernel(design_bandpass(5, 9, 60, taps))
    t = np.arange(n - 1)[:, None, None]
    increments = (0.1 * np.sin(0.5 * t + rng.uniform(0, 6, (1, rows, width)))
                  + 0.01 * rng.standard_normal((n - 1, rows, width))).astype(np.float16)
    start, stop = half - pads[0], n - half + pads[1]
    ours = filter_increments(increments, kernel, start, stop, *pads)
    copy = filter_increments(increments.astype(np.float32), kernel, start, stop, *pads)
    assert ours.dtype == np.float32
    np.testing.assert_array_equal(ours, copy)
    strip = np.full((stop - start, rows + 4, width), np.nan, dtype=np.float32)  # into a strip of a larger array's rows
    filter_increments(increments, kernel, start, stop, *pads, out=strip[:, 2:-2])
    np.testing.assert_array_equal(strip[:, 2:-2], copy)
    assert np.isnan(strip[:, :2]).all() and np.isnan(strip[:, -2:]).all()
    # a strip of the rows, from consecutive pieces (stage 2's time chunks)
    pieces = [increments[:150], increments[150:260], increments[260:]]
    r0, r1 = rows // 5, rows - rows // 4
    from_pieces = filter_increments([p[:, r0:r1, :] for p in pieces], kernel, start, stop, *pads)
    # (against the strip's own float32 copy: BLAS may round a narrower product differently)
    strip_copy = filter_increments(np.ascontiguousarray(increments[:, r0:r1, :], dtype=np.float32), kernel,
                                   start, stop, *pads)
    np.testing.assert_array_equal(from_pieces, strip_copy)


def test_a_constant_offset_or_linear_drift_is_removed():
    taps = design_bandpass(3, 7, 60)
    ramp = 5.0 + 0.7 * np.arange(200.0)  # many radians of drift
    out = _filter_signal(ramp, taps)
    assert np.abs(out).max() < 1e-6


@pytest.mark.parametrize("phase", [0.0, 1.0, 2.5])
def test_clip_ends_continue_a_steady_vibration(phase):
    """Linear prediction continues a sinusoid past both ends: the first and last frames are filtered fully."""
    fps = 60.0
    taps = design_bandpass(3, 7, fps)
    half = len(taps) // 2
    t = np.arange(150) / fps
    signal = 0.3 * t + np.sin(2 * np.pi * 5 * t + phase)  # a drift too
    out = _filter_signal(signal, taps)
    expected = frequency_response(taps, [5.0], fps)[0] * np.sin(2 * np.pi * 5 * t + phase)
    assert np.abs(out[:half] - expected[:half]).max() < 0.03
    assert np.abs(out[-half:] - expected[-half:]).max() < 0.03


def test_noise_beyond_the_ends_fades_instead_of_growing():
    rng = np.random.default_rng(7)
    increments = rng.standard_normal((200, 50))
    extended = extend_by_prediction(increments, 100, 100, window=56)
    assert extended.shape == (400, 50)
    assert np.abs(extended).max() < 2 * np.abs(increments).max()
    assert np.array_equal(extended[100:300], increments)


def test_short_clip_is_padded_by_repeated_reflection():
    taps = design_bandpass(3, 7, 60)
    out = _filter_signal(np.sin(np.arange(10.0)), taps)
    assert out.shape == (10,) and np.isfinite(out).all()


def test_any_split_of_the_range_gives_the_same_output():
    rng = np.random.default_rng(5)
    increments = rng.standard_normal((199, 4)).astype(np.float32)
    kernel = increment_kernel(design_bandpass(3, 7, 60))
    half = len(kernel) // 2
    whole = filter_increments(increments, kernel, 0, 200, half, half)
    first = filter_increments(increments[: 100 + half], kernel, 0, 100, half, 0)
    second = filter_increments(increments[100 - half :], kernel, half, half + 100, 0, half)
    assert np.allclose(np.concatenate([first, second]), whole, atol=1e-5)
