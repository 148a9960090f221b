"""The faster formulations of kernel steps equal the plain ones they replace."""

import numpy as np
import pytest
import scipy.fft

from daskmag.kernels.phase import phase_increments, rotate
from daskmag.kernels.pyramid import centred_spectrum, real_image
from daskmag.kernels.temporal import _burg_from_correlations, extend_by_prediction


def _coefficients(shape, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)


def test_phase_increments_from_planes_equal_the_angle_of_the_product():
    c = _coefficients((7, 12, 10))
    expected = np.angle(c[1:] * np.conj(c[:-1]))
    got = phase_increments(c)
    assert got.dtype == np.float32 and got.shape == (6, 12, 10)
    # the same wrapped angle, to float32 rounding (also where it is near +-pi)
    error = np.angle(np.exp(1j * (got.astype(np.float64) - expected)))
    assert np.abs(error).max() < 2e-6
    assert np.all(np.abs(got) <= np.float32(np.pi))
    out = np.full((6, 12, 10), np.nan, dtype=np.float32)
    assert phase_increments(c, out=out) is out
    np.testing.assert_array_equal(out, got)
    # a non-contiguous or complex128 input takes the plain path
    strided = phase_increments(c[:, ::2])
    np.testing.assert_allclose(strided, got[:, ::2], atol=2e-6)
    np.testing.assert_allclose(phase_increments(c.astype(np.complex128)), got, atol=2e-6)
    # a float16 store (band_increments' compact dtype) and a strided one
    half = np.full((6, 12, 10), np.nan, dtype=np.float16)
    assert phase_increments(c, out=half) is half
    np.testing.assert_array_equal(half, got.astype(np.float16))
    wide = np.full((6, 12, 20), np.nan, dtype=np.float32)
    phase_increments(c, out=wide[..., ::2])
    np.testing.assert_array_equal(wide[..., ::2], got)
    assert np.isnan(wide[..., 1::2]).all()  # nothing written between


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_rotate_is_the_coefficients_change_when_the_phase_moves(dtype, kernel_path):
    c = _coefficients((5, 9, 14), seed=3)
    shift = (np.random.default_rng(4).uniform(-7, 7, (5, 9, 14))).astype(dtype)
    expected = c.astype(np.complex128) * (np.exp(1j * shift.astype(np.float64)) - 1)
    got = rotate(c, shift)
    assert got.dtype == np.complex64 and got.shape == c.shape
    np.testing.assert_allclose(got, expected, atol=2e-5 * np.abs(c).max())
    np.testing.assert_allclose(rotate(c[:, ::2], shift[:, ::2]), got[:, ::2], atol=1e-6)


@pytest.mark.parametrize("shape", [(16, 24), (15, 24), (16, 21), (15, 21)])
def test_centred_spectrum_and_real_image_match_the_shifted_fft(shape):
    rng = np.random.default_rng(1)
    image = rng.standard_normal((2,) + shape).astype(np.float32)
    expected = scipy.fft.fftshift(scipy.fft.fft2(image), axes=(-2, -1))
    spectrum = centred_spectrum(image)
    assert spectrum.dtype == np.complex64
    np.testing.assert_allclose(spectrum, expected, atol=2e-4 * np.abs(expected).max())
    kept = spectrum.copy()
    back = real_image(spectrum)
    np.testing.assert_array_equal(spectrum, kept)  # the input is left alone unless overwrite
    assert back.dtype == np.float32
    np.testing.assert_allclose(back, image, atol=1e-5)
    np.testing.assert_allclose(real_image(spectrum, overwrite=True), image, atol=1e-5)


def _plain_forecast(series, steps, order, window):
    """The model's forecast written out step by step (as before the one-dot-product loop)."""
    window = series[-window:].astype(np.float32)
    mean = window.mean(axis=0)
    centred = window - mean
    a = _burg_from_correlations(centred.reshape(len(centred), -1), order).reshape((order,) + series.shape[1:])
    history = [centred[-1 - j] for j in range(order)]
    out = np.empty((steps,) + series.shape[1:], dtype=series.dtype)
    for step in range(steps):
        value = -a[0] * history[0]
        for j in range(1, order):
            value -= a[j] * history[j]
        out[step] = value + mean
        history = [value] + history[:-1]
    return out


def test_prediction_equals_the_step_by_step_forecast(kernel_path):
    rng = np.random.default_rng(2)
    t = np.arange(131)[:, None, None]
    phases = rng.uniform(0, 6, (1, 5, 4))
    truth = 0.3 * np.sin(2 * np.pi * 0.07 * t + phases)
    series = (truth[:120] + 0.01 * rng.standard_normal((120, 5, 4))).astype(np.float32)
    extended = extend_by_prediction(series, 9, 11, window=64)
    assert extended.shape == (140, 5, 4)
    np.testing.assert_array_equal(extended[9:-11], series)
    np.testing.assert_array_equal(extended[-11:], _plain_forecast(series, 11, 8, 64))
    np.testing.assert_array_equal(extended[:9], _plain_forecast(series[::-1], 9, 8, 64)[::-1])
    # and it continues the vibration as filmed
    assert np.abs(extended[-11:] - truth[120:]).max() < 0.1  # amplitude 0.3, noise 0.01


def _direct_burg(x, order):
    """Burg's method as it is usually written, the forward and backward
    errors updated at every order, in float64: the reference."""
    forward, backward = x[1:].astype(np.float64), x[:-1].astype(np.float64)
    a = np.zeros((order, x.shape[1]))
    for m in range(order):
        k = -2.0 * (forward * backward).sum(0) / ((forward ** 2).sum(0) + (backward ** 2).sum(0))
        if m:
            a[:m] += k * a[m - 1 :: -1]
        a[m] = k
        forward, backward = forward[1:] + k * backward[1:], backward[:-1] + k * forward[:-1]
    return a


@pytest.mark.parametrize("noise", [1e-4, 1e-3, 1e-2, 1.0])
def test_burg_from_correlations_equals_burg_on_noisy_records(noise):
    """Vos's recursion gives the model of the direct fit (which updates the
    error arrays at every order) on records with noise, computed in float64."""
    rng = np.random.default_rng(11)
    t = np.arange(64)[:, None]
    signal = 0.3 * np.sin(2 * np.pi * rng.uniform(0.02, 0.45, (1, 300)) * t + rng.uniform(0, 6, (1, 300)))
    window = (signal + noise * rng.standard_normal(signal.shape)).astype(np.float32)
    centred = window - window.mean(axis=0)
    fast, direct = _burg_from_correlations(centred, 8), _direct_burg(centred, 8)
    assert fast.shape == direct.shape == (8, 300) and fast.dtype == np.float32
    # to float32's rounding (the direct fit in float32 was off by up to 1e-3 at 1e-4 noise)
    np.testing.assert_allclose(fast, direct, atol=1e-6, rtol=0)


def test_burg_from_correlations_stops_at_the_rounding_floor():
    """A noise-free sinusoid is explained by two orders; the rest would fit
    rounding, so the forecast stays on the sinusoid instead of drifting."""
    t = np.arange(119)[:, None]
    phases = np.linspace(0, 6, 40)[None, :]
    truth = np.sin(2 * np.pi * 0.07 * t + phases)
    series = truth[:64].astype(np.float32)
    extended = extend_by_prediction(series, 0, 55, window=64)
    assert np.abs(extended[64:] - truth[64:]).max() < 0.3


@pytest.mark.parametrize("length", [120, 30])  # Burg's fit at the ends; too short: mirrored
def test_fir_at_the_clip_ends_equals_filtering_the_extended_series(length, kernel_path):
    from daskmag.kernels.temporal import FIRFilter, design_bandpass, filter_increments

    rng = np.random.default_rng(5)
    t = np.arange(length + 1)[:, None, None]
    phase = 0.2 * np.sin(2 * np.pi * 0.12 * t + rng.uniform(0, 6, (1, 6, 5)))
    increments = np.diff(phase + 0.01 * rng.standard_normal(phase.shape), axis=0).astype(np.float32)
    fir = FIRFilter(design_bandpass(0.09, 0.15, 1.0, taps=41))
    window = min(len(fir.kernel), 64)
    half = fir.halo_before
    for start, stop, before, after in [(0, length, half, half), (0, 10, half, 0),
                                       (length - 10, length, 0, half), (5, 10, half - 5, 0)]:
        # the extended series written out whole, then filtered (as before)
        extended = extend_by_prediction(increments, before, after, window=window)
        expected = filter_increments(extended, fir.kernel, start + before, stop + before)
        got = fir.phase(increments, start, stop, before, after)
        assert got.shape == (stop - start, 6, 5)
        np.testing.assert_array_equal(got, expected)
    with pytest.raises(ValueError, match="needs 20 samples before"):
        fir.phase(increments, 0, 10, half - 1, 0)


def test_cached_complex_weights_give_the_plain_band_and_stay_out_of_pickles():
    import pickle

    from daskmag.kernels.pyramid import analyse, pyramid_filters, synthesise_into

    image = np.random.default_rng(6).standard_normal((2, 32, 48)).astype(np.float32)
    spectrum = centred_spectrum(image)
    for band in pyramid_filters((32, 48)).bands:
        plain = scipy.fft.ifft2(spectrum[..., band.rows, band.cols] * band.weights.astype(np.float64))
        got = analyse(spectrum, band)
        np.testing.assert_allclose(got, plain, atol=1e-5 * np.abs(plain).max())
        np.testing.assert_array_equal(analyse(spectrum, band, out=np.empty_like(got)), got)
        # synthesis: overwrite may use the coefficients as scratch, and adds the same
        added = synthesise_into(np.zeros_like(spectrum), got.copy(), band)
        scratch = got.copy()
        np.testing.assert_array_equal(synthesise_into(np.zeros_like(spectrum), scratch, band, overwrite=True), added)
        copy = pickle.loads(pickle.dumps(band))
        cached = {"_complex_weights", "_real_weights"}  # the NumPy path's and the compiled loops'
        assert cached & set(band.__dict__) and not cached & set(copy.__dict__)
        np.testing.assert_array_equal(analyse(spectrum, copy), got)


@pytest.mark.parametrize("columns", [2, 7, 100])
def test_clip_end_fit_in_column_blocks_equals_the_fit_in_one(monkeypatch, columns):
    """Fitting the clip-end models a cache-sized block of columns at a time changes no value."""
    from daskmag.kernels import temporal

    rng = np.random.default_rng(5)
    t = np.arange(90)[:, None, None]
    series = (np.sin(0.2 * t + rng.uniform(0, 6, (1, 25, 12)))
              + 0.05 * rng.standard_normal((90, 25, 12))).astype(np.float32)
    whole = extend_by_prediction(series, 13, 17, window=64)
    monkeypatch.setattr(temporal, "FORECAST_COLUMNS", columns)
    np.testing.assert_array_equal(extend_by_prediction(series, 13, 17, window=64), whole)
    half = series.astype(np.float16)  # stage 2's increments may be float16
    monkeypatch.setattr(temporal, "FORECAST_COLUMNS", 10**9)
    whole_half = extend_by_prediction(half, 13, 17, window=64)
    monkeypatch.setattr(temporal, "FORECAST_COLUMNS", columns)
    blocked_half = extend_by_prediction(half, 13, 17, window=64)
    assert blocked_half.dtype == np.float32  # continued in the filter's working precision
    np.testing.assert_array_equal(blocked_half, whole_half)
    np.testing.assert_array_equal(blocked_half, extend_by_prediction(half.astype(np.float32), 13, 17, window=64))


@pytest.mark.parametrize("kind", ["fir", "ideal", "butter"])
def test_filtered_phase_scaled_into_a_strip_of_rows(kind):
    """``phase(..., scale=, out=)`` writes ``scale`` times the filtered phase
    into a strip of a larger array's rows (the FIR straight from its matrix
    products, alpha folded into its taps) and leaves the other rows alone."""
    from daskmag.kernels.temporal import make_filter

    rng = np.random.default_rng(3)
    temporal = make_filter(kind, 3, 7, 60.0)
    t = np.arange(180)[:, None, None]
    phase = 0.2 * np.sin(2 * np.pi * 5 / 60 * t + rng.uniform(0, 6, (1, 12, 9)))
    increments = np.diff(phase + 0.01 * rng.standard_normal(phase.shape), axis=0).astype(np.float32)
    pad = (temporal.halo_before, temporal.halo_after)
    expected = temporal.phase(increments[:, 4:8], 0, 179, *pad)
    out = np.full((179, 12, 9), 7.0, dtype=np.float32)
    written = temporal.phase(increments[:, 4:8], 0, 179, *pad, scale=-2.5, out=out[:, 4:8])
    assert np.shares_memory(written, out)
    np.testing.assert_allclose(out[:, 4:8], -2.5 * expected, rtol=1e-5, atol=1e-6 * np.abs(expected).max())
    assert (out[:, :4] == 7.0).all() and (out[:, 8:] == 7.0).all()
    assert np.abs(expected).max() > 0.05  # the band is there to scale
