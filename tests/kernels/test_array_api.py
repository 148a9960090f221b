"""The motion kernels on ``array_api_strict`` arrays: the code a GPU runs, run on the CPU.

(And on CuPy arrays where a GPU is usable: the same tests, ids ``[cupy]``.)

``array_api_strict`` implements the array API standard and nothing more, so
a call that exists only in NumPy (an array method, an ``out=`` argument, flat
indexing of an n-d array, a dtype NumPy casts implicitly) fails here, where
CI can see it, instead of on a GPU.  Every result is compared with the same
kernel on NumPy arrays; they differ only by the FFT library (NumPy's pocketfft
against SciPy's), so float results agree to float32 precision and frames to
within one grey level.
"""

import numpy as np
import pytest

from conftest import BAND, FPS
from daskmag.kernels.backend import cupy_or_none, fft_module, namespace, to_numpy
from daskmag.kernels.colourspace import add_luma, luma
from daskmag.kernels.linear import add_expanded, bandpass_change, channel_gains, reduce_to_yiq
from daskmag.kernels.phase import (analyse_chunk, apply_phase_shifts, magnify_block, phase_increments,
                                   rotate, shift_strip)
from daskmag.kernels import riesz
from daskmag.kernels.pyramid import PyramidSpec, collapse, decompose
from daskmag.kernels.temporal import FIRFilter, IdealFilter, design_bandpass, extend_by_prediction
from daskmag.synthetic import pulsing_clip, translating_clip

SPEC = PyramidSpec()
NO_STRICT = "array_api_strict is not installed (pip install -e '.[test]')"


@pytest.fixture(params=["strict", pytest.param("cupy", marks=pytest.mark.gpu)])
def put(request):
    """Copies a NumPy array into the backend under test."""
    if request.param == "strict":
        xps = pytest.importorskip("array_api_strict", reason=NO_STRICT)
        return lambda array: xps.asarray(np.ascontiguousarray(array))
    cupy = cupy_or_none()
    return cupy.asarray


def back(array):
    """A kernel's result as NumPy, after checking it stayed a strict array."""
    assert not isinstance(array, np.ndarray), "the kernel returned a NumPy array for strict input"
    return to_numpy(array)


@pytest.fixture(scope="module")
def clip():
    return translating_clip(48, 40, 48, FPS, components=((0.2, 5.0),))


@pytest.fixture(scope="module")
def taps():
    return design_bandpass(*BAND, FPS)


def test_namespace_and_fft_of_a_strict_array():
    xps = pytest.importorskip("array_api_strict", reason=NO_STRICT)
    strict = xps.asarray
    x = strict(np.zeros((4, 6), np.float32))
    assert namespace(x) is xps or namespace(x).__name__.startswith("array_api_strict")
    assert namespace(np.zeros(3)) is np
    fft = fft_module(x)
    assert fft.next_fast_len(97) == 100 and fft.next_fast_len(7) == 8
    spectrum = fft.fft2(strict(np.arange(24, dtype=np.float32).reshape(4, 6)))
    np.testing.assert_allclose(back(spectrum), np.fft.fft2(np.arange(24).reshape(4, 6)), atol=1e-4)


@pytest.mark.parametrize("kind", ["rgb8", "mono16"])
def test_luma_and_add_luma(put, clip, kind):
    frames = clip[:4] if kind == "rgb8" else (clip[:4, ..., :1].astype(np.uint16) * 257)
    y = luma(frames)
    np.testing.assert_allclose(back(luma(put(frames))), y, rtol=1e-6, atol=1e-7)
    delta = np.sin(np.arange(y.size, dtype=np.float32)).reshape(y.shape) * 0.01
    expected = add_luma(frames, delta)
    got = back(add_luma(put(frames), put(delta)))
    assert got.dtype == frames.dtype
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1
    np.testing.assert_array_equal(back(add_luma(put(frames), put(np.zeros_like(delta)))), frames)


def test_pyramid_decompose_and_collapse(put, clip):
    image = luma(clip[:3])
    pyramid = decompose(image, SPEC)
    pyramid_there = decompose(put(image), SPEC)
    for expected, got in zip(pyramid["bands"], pyramid_there["bands"]):
        np.testing.assert_allclose(back(got), expected, atol=2e-6)
    np.testing.assert_allclose(back(pyramid_there["highpass"]), pyramid["highpass"], atol=2e-6)
    np.testing.assert_allclose(back(collapse(pyramid_there, SPEC)), image, atol=2e-5)


def test_phase_increments_and_rotation(put, clip):
    band = decompose(luma(clip[:6]), SPEC)["bands"][1]
    np.testing.assert_allclose(back(phase_increments(put(band))), phase_increments(band), atol=2e-6)
    shift = np.linspace(-2, 2, band[1:].size, dtype=np.float32).reshape(band[1:].shape)
    np.testing.assert_allclose(back(rotate(put(band[1:]), put(shift))), rotate(band[1:], shift),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("length", [40, 12])  # Burg's fit at the ends; too short to fit: mirrored
def test_fir_filter_with_clip_end_prediction(put, taps, length):
    rng = np.random.default_rng(0)
    t = np.arange(length)[:, None, None]
    increments = (0.05 * np.sin(2 * np.pi * 5 * t / FPS + rng.uniform(0, 6, (1, 3, 5)))
                  + rng.normal(0, 0.01, (length, 3, 5))).astype(np.float32)
    fir = FIRFilter(taps)
    half = fir.halo_before
    expected = fir.phase(increments, 0, length + 1, half, half)
    got = back(fir.phase(put(increments), 0, length + 1, half, half))
    np.testing.assert_allclose(got, expected, atol=2e-6)
    np.testing.assert_allclose(back(extend_by_prediction(put(increments), 5, 7, window=length)),
                               extend_by_prediction(increments, 5, 7, window=length), atol=2e-6)


def test_ideal_filter(put):
    increments = np.random.default_rng(1).normal(0, 0.1, (59, 4, 3)).astype(np.float32)
    ideal = IdealFilter(*BAND, FPS)
    np.testing.assert_allclose(back(ideal.phase(put(increments), 5, 50)), ideal.phase(increments, 5, 50),
                               atol=1e-6)


def test_staged_kernels(put, clip, taps):
    """Stage 1 (analysis), 2 (a strip's temporal filter), 3 (synthesis), as the staged graph runs them."""
    fir = FIRFilter(taps)
    n = len(clip)
    increments, kept = analyse_chunk(clip[16:32], SPEC, previous=clip[15], keep=True)
    increments_there, kept_there = analyse_chunk(put(clip[16:32]), SPEC, previous=put(clip[15]), keep=True)
    for expected, got in zip(kept, kept_there):
        np.testing.assert_allclose(back(got), expected, atol=2e-6)
    # a phase is as exact as its coefficient is large: weak ones differ most
    for expected, got in zip(increments, increments_there):
        difference = np.abs(back(got) - expected)
        assert difference.max() < 1e-3 and np.quantile(difference, 0.99) < 3e-5
    first, _ = analyse_chunk(clip[:16], SPEC)
    last, _ = analyse_chunk(clip[32:], SPEC, previous=clip[31])
    pieces = [first[2], increments[2], last[2]]
    expected = shift_strip(pieces, 0, 16, 32, n, fir, 10.0)
    got = back(shift_strip([put(p) for p in pieces], 0, 16, 32, n, fir, 10.0))
    np.testing.assert_allclose(got, expected, atol=5e-5)
    shifts = [shift_strip([a, b, c], 0, 16, 32, n, fir, 10.0) for a, b, c in zip(first, increments, last)]
    expected = apply_phase_shifts(clip[16:32], shifts, SPEC, kept)
    for keep in (kept_there, None):
        got = back(apply_phase_shifts(put(clip[16:32]), [put(s) for s in shifts], SPEC, keep))
        assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1


def test_fused_kernel_magnifies_as_on_numpy(put, clip, taps):
    half = len(taps) // 2
    expected = magnify_block(clip, taps, 10.0, SPEC, 0, len(clip), half, half)
    got = back(magnify_block(put(clip), taps, 10.0, SPEC, 0, len(clip), half, half))
    assert got.shape == expected.shape and got.dtype == np.uint8
    difference = np.abs(got.astype(int) - expected.astype(int))
    assert difference.max() <= 1 and (difference > 0).mean() < 0.01
    # and the change is there: the magnified clip is not the input
    assert np.abs(got.astype(int) - clip.astype(int)).max() >= 5


@pytest.mark.parametrize("channels", [3, 1])
def test_colour_kernels(put, taps, channels):
    """Linear colour magnification (Wu et al. 2012): reduce, band-pass the small stack, expand and add."""
    frames = pulsing_clip(48, 36, 44, FPS, components=((0.5, 5.0),), patch=24)
    frames = frames if channels == 3 else frames[..., 1:2]
    level = 2
    small = reduce_to_yiq(frames, level)
    small_there = reduce_to_yiq(put(frames), level)
    np.testing.assert_allclose(back(small_there), small, rtol=1e-5, atol=1e-3)
    gains = channel_gains(20.0, 0.5, channels)
    half = len(taps) // 2
    change = bandpass_change(small, taps, gains, 0, len(frames), half, half)
    change_there = bandpass_change(small_there, taps, gains, 0, len(frames), half, half)
    np.testing.assert_allclose(back(change_there), change, atol=1e-3)
    expected = add_expanded(frames, change, level)
    got = back(add_expanded(put(frames), put(change), level))
    assert got.dtype == frames.dtype and np.abs(got.astype(int) - expected.astype(int)).max() <= 1
    assert np.abs(got.astype(int) - frames.astype(int)).max() >= 5  # the pulse was magnified


def test_riesz_kernels(put, clip, taps):
    """The Riesz pyramid (Wadhwa et al., ICCP 2014): decomposition, collapse and the fused kernel.

    Without smoothing: the amplitude-weighted blur is ``scipy.ndimage``'s or
    CuPy's, which the standard does not cover.
    """
    image = luma(clip[:3])
    pyramid = riesz.decompose(image)
    pyramid_there = riesz.decompose(put(image))
    for expected, got in zip(pyramid["levels"], pyramid_there["levels"]):
        np.testing.assert_allclose(back(got), expected, atol=2e-6)
    np.testing.assert_allclose(back(riesz.collapse(pyramid_there)), image, atol=2e-5)
    half = len(taps) // 2
    expected = riesz.magnify_block_riesz(clip, taps, 10.0, 0, len(clip), half, half, sigma=0.0)
    got = back(riesz.magnify_block_riesz(put(clip), taps, 10.0, 0, len(clip), half, half, sigma=0.0))
    difference = np.abs(got.astype(int) - expected.astype(int))
    assert got.dtype == np.uint8 and difference.max() <= 1 and (difference > 0).mean() < 0.01
    assert np.abs(got.astype(int) - clip.astype(int)).max() >= 5
