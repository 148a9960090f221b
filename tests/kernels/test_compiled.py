"""The compiled loops (Numba) against the NumPy paths they replace."""

import os
import subprocess
import sys

import numpy as np
import pytest

from daskmag.kernels import compiled
from daskmag.kernels.angle import product_angle
from daskmag.kernels.temporal import COMPILED_FORECAST_COLUMNS, extend_by_prediction

needs_numba = pytest.mark.skipif(compiled.loops() is None,
                                 reason="Numba is not importable here (or DASKMAG_COMPILED=0)")


def _series(n=120, columns=7 * (3 * COMPILED_FORECAST_COLUMNS // 7 + 5), seed=0):
    """Vibrations of many rates and sizes in noise, and columns the fit finds hard:
    noise-free sinusoids (the rounding floor), constants, zeros."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)[:, None]
    series = (rng.uniform(0.01, 1.0, columns) * np.sin(2 * np.pi * rng.uniform(0.02, 0.3, columns) * t
                                                        + rng.uniform(0, 6, columns))
              + 0.05 * rng.standard_normal((n, columns)))
    series[:, :40] = np.sin(2 * np.pi * 0.1 * t)
    series[:, 40:50] = 0.25
    series[:, 50:60] = 0.0
    return series.astype(np.float32)


@needs_numba
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_compiled_prediction_equals_the_numpy_path(dtype):
    series = _series().astype(dtype).reshape(120, -1, 7)  # blocks of columns, a ragged last one
    fast = extend_by_prediction(series, 28, 28, window=64)
    with compiled.disabled():
        plain = extend_by_prediction(series, 28, 28, window=64)
    assert fast.dtype == plain.dtype == np.float32
    # the same sums in the same order: equal here, to float32 rounding at worst
    np.testing.assert_allclose(fast, plain, rtol=0, atol=1e-6 * np.abs(plain).max())
    assert np.isfinite(fast).all()


@needs_numba
def test_compiled_product_angle_into_float16_storage():
    rng = np.random.default_rng(4)
    shape = (3, 300, 257)  # more than one block of the float32 scratch
    current = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)
    previous = (current * np.exp(1j * rng.uniform(-np.pi, np.pi, shape))).astype(np.complex64)
    half = np.empty(shape, np.float16)
    assert product_angle(current, previous, out=half) is half
    exact = np.angle(current.astype(np.complex128) * np.conj(previous))
    # float16 storage rounds to half a unit in its last place: 1e-3 rad near pi
    assert np.abs(np.angle(np.exp(1j * (half.astype(np.float64) - exact)))).max() < 2e-3
    with compiled.disabled():
        plain = product_angle(current, previous, out=np.empty(shape, np.float16))
    wrapped = np.angle(np.exp(1j * (half.astype(np.float64) - plain.astype(np.float64))))
    assert np.abs(wrapped).max() <= 2e-3  # one float16 step where the two round differently
    # the compiled angles, rounded to float16 as NumPy rounds them
    single = product_angle(current, previous, out=np.empty(shape, np.float32))
    np.testing.assert_array_equal(half.view(np.uint16), single.astype(np.float16).view(np.uint16))


def _edge_singles():
    """float32 values at every boundary of the float16 conversion."""
    halves = np.arange(2**16, dtype=np.uint32)  # every half, exactly, and half-way to its neighbours
    exact = halves.astype(np.uint16).view(np.float16).astype(np.float32).view(np.uint32)
    finite = exact[(exact & 0x7F800000) != 0x7F800000].astype(np.int64)
    near = np.concatenate([finite + d for d in (-1, 0, 1)] + [finite + 0x1000, finite + 0xFFF, finite + 0x1001])
    specials = np.array([0x7F800000, 0xFF800000, 0x7FC00000, 0x7F800001, 0x7FBFFFFF, 0xFFC02000,
                         0x477FEFFF, 0x477FF000, 0x477FF001, 0x47800000, 0x7F7FFFFF,  # 65504 .. 65520 .. max
                         0x33000000, 0x33000001, 0x32FFFFFF, 0x00000001, 0x80000001, 0x38800000, 0x387FFFFF],
                        dtype=np.uint32)
    return np.concatenate([(near % 2**32).astype(np.uint32), specials])


@needs_numba
def test_half_conversions_are_numpys_bit_for_bit():
    """float32 to float16 (round to nearest even, subnormals, overflow, NaN
    payloads) and back, on the bits, as NumPy converts: every half, the
    float32 values at and around each half's edges, and a spread of all the
    rest (every 2**32 pattern was checked once, outside the suite)."""
    loops = compiled.loops()
    halves = np.arange(2**16, dtype=np.uint32).astype(np.uint16)
    singles = np.empty(halves.size, np.float32)
    loops.half_to_single(halves, singles)
    np.testing.assert_array_equal(singles.view(np.uint32), halves.view(np.float16).astype(np.float32).view(np.uint32))
    spread = np.random.default_rng(7).integers(0, 2**32, 2**22, dtype=np.uint64).astype(np.uint32)
    bits = np.concatenate([_edge_singles(), spread, np.arange(0, 2**32, 4093, dtype=np.uint64).astype(np.uint32)])
    values = bits.view(np.float32)
    ours = np.empty(values.size, np.uint16)
    loops.single_to_half(values, ours)
    with np.errstate(over="ignore", invalid="ignore"):
        numpys = values.astype(np.float16).view(np.uint16)
    np.testing.assert_array_equal(ours, numpys)


def test_disabled_and_the_environment_switch_the_loops_off():
    with compiled.disabled():
        assert compiled.loops() is None
    code = "from daskmag.kernels import compiled; print(compiled.loops() is None)"
    env = dict(os.environ, DASKMAG_COMPILED="0")
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "True"


@pytest.mark.parametrize("shape, dtype", [((3, 24, 40, 3), np.uint8), ((2, 25, 33, 1), np.uint16),
                                          ((2, 24, 31, 3), np.uint16)])
def test_luma_spectrum_and_adding_the_change_back_equal_their_parts(shape, dtype, kernel_path):
    from daskmag.kernels.colourspace import add_luma, luma
    from daskmag.kernels.pyramid import add_luma_of_spectrum, centred_spectrum, luma_spectrum, real_image

    rng = np.random.default_rng(7)
    top = np.iinfo(dtype).max
    frames = rng.integers(0, top + 1, shape, dtype=dtype)
    frames[0, 0, :4, 0] = [0, top, top - 1, 1]  # changes that clip at both ends
    spectrum = luma_spectrum(frames)
    expected = centred_spectrum(luma(frames))
    assert spectrum.dtype == np.complex64 and spectrum.shape == shape[:3]
    np.testing.assert_allclose(spectrum, expected, rtol=0, atol=2e-6 * np.abs(expected).max())
    # a change of up to +-3 levels: its rounding, and clipping at 0 and the top
    change = centred_spectrum(rng.uniform(-3.0, 3.0, shape[:3]).astype(np.float32) / top)
    got = add_luma_of_spectrum(frames, change.copy())
    want = add_luma(frames, real_image(change.copy(), overwrite=True))
    assert got.dtype == dtype and got.shape == shape
    np.testing.assert_array_equal(got, want)
    assert got.min() == 0 and got.max() == top


@pytest.mark.parametrize("scale", [1e-3, 1.0, 30.0, 3000.0])
def test_rotation_is_exact_to_float32_at_small_and_large_shifts(scale, kernel_path):
    from daskmag.kernels.phase import rotate

    rng = np.random.default_rng(8)
    shape = (4, 50, 61)
    c = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)
    shift = (rng.standard_normal(shape) * scale).astype(np.float32)
    got = rotate(c, shift)
    exact = c.astype(np.complex128) * np.expm1(1j * shift.astype(np.float64))
    # relative to the change itself: cos - 1 must not cancel for small shifts
    # (NumPy's cos(x) - 1 in float32 does, to 6e-8 of |c| absolute)
    if scale < 1:
        error = np.abs(got - exact) / np.abs(exact)
        assert np.quantile(error, 0.999) < (3e-6 if kernel_path == "compiled" else 1e-3)
    assert (np.abs(got - exact) / np.abs(c)).max() < 6e-7


@needs_numba
def test_compiled_synthesis_adds_what_the_numpy_path_adds():
    from daskmag.kernels.pyramid import analyse, centred_spectrum, pyramid_filters, synthesise_into

    image = np.random.default_rng(9).standard_normal((3, 40, 56)).astype(np.float32)
    spectrum = centred_spectrum(image)
    fast, plain = np.zeros_like(spectrum), np.zeros_like(spectrum)
    for band in pyramid_filters((40, 56)).bands:
        coefficients = analyse(spectrum, band)
        synthesise_into(fast, coefficients.copy(), band)
        with compiled.disabled():
            synthesise_into(plain, coefficients.copy(), band)
    assert np.abs(plain).max() > 0
    np.testing.assert_array_equal(fast, plain)  # a real weight times a complex: the same products


@needs_numba
def test_compiled_analysis_gives_what_the_numpy_path_gives():
    from daskmag.kernels.pyramid import analyse, centred_spectrum, pyramid_filters

    image = np.random.default_rng(10).standard_normal((3, 40, 56)).astype(np.float32)
    spectrum = centred_spectrum(image)
    for band in pyramid_filters((40, 56)).bands:
        fast = analyse(spectrum, band)
        into = analyse(spectrum, band, out=np.empty_like(fast))
        with compiled.disabled():
            plain = analyse(spectrum, band)
        np.testing.assert_array_equal(fast, plain)  # a real weight times a complex: the same products
        np.testing.assert_array_equal(into, plain)


@needs_numba
@pytest.mark.parametrize("shape, index", [
    ((6, 90, 128), np.s_[:, 20:70, :]),         # a strip of an octave band's rows
    ((5, 2, 64, 80), np.s_[1:4, :, 8:60, :]),   # of a Riesz level's two parts
    ((4, 8192), np.s_[:, :]),                   # whole frames
])
def test_float16_samples_copy_into_float32_as_numpy_copies_them(shape, index):
    """Stage 2's copy of float16 increments into its float32 buffer, a compiled
    loop per contiguous run: NumPy's values, NaN and infinities included."""
    from daskmag.kernels.temporal import _halves_to_singles

    rng = np.random.default_rng(len(shape))
    samples = rng.integers(0, 2**16, shape, dtype=np.uint64).astype(np.uint16).view(np.float16)
    view = samples[index]
    target = np.full(view.shape, -1.0, np.float32)
    assert _halves_to_singles(compiled.loops(), view, target)
    np.testing.assert_array_equal(target.view(np.uint32), view.astype(np.float32).view(np.uint32))
    # runs too short to pay a call each: left to NumPy, nothing written
    short = samples[..., :3]
    untouched = np.full(short.shape, -1.0, np.float32)
    assert not _halves_to_singles(compiled.loops(), short, untouched)
    assert (untouched == -1.0).all()
