"""The complex steerable pyramid: tight frame, agreement with pyrtools, cropping."""

import numpy as np
import pytest

from daskmag.pyramid import (
    PyramidSpec,
    collapse,
    decompose,
    pyramid_filters,
)


@pytest.mark.parametrize("shape", [(64, 96), (63, 81), (48, 200)])
@pytest.mark.parametrize("kind,orientations", [("octave", 4), ("octave", 2), ("half-octave", 8)])
def test_perfect_reconstruction(shape, kind, orientations):
    image = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    spec = PyramidSpec(kind=kind, orientations=orientations)
    rebuilt = collapse(decompose(image, spec), spec)
    assert np.abs(rebuilt - image).max() < 1e-5


def test_reconstruction_of_a_stack_of_frames():
    frames = np.random.default_rng(2).random((5, 40, 56)).astype(np.float32)
    pyramid = decompose(frames)
    assert pyramid["bands"][0].shape[0] == 5
    assert np.abs(collapse(pyramid) - frames).max() < 1e-5


def test_squared_filters_tile_the_frequency_plane():
    spec = PyramidSpec()
    filters = pyramid_filters((60, 90), spec)
    total = filters.highpass.astype(float) ** 2
    full = np.zeros((60, 90))
    for band in filters.bands:
        full[:] = 0
        full[band.rows, band.cols] = band.weights
        # a one-sided band counts half for omega and half for -omega
        mirror = np.roll(full[::-1, ::-1], (1, 1), axis=(0, 1))
        total += (full**2 + mirror**2) / 4
    low = np.zeros((60, 90))
    low[filters.lowpass.rows, filters.lowpass.cols] = filters.lowpass.weights
    total += low**2
    assert np.allclose(total, 1.0, atol=1e-5)


def test_bands_agree_with_pyrtools():
    pt = pytest.importorskip("pyrtools")
    image = np.random.default_rng(3).standard_normal((128, 192))
    reference = pt.pyramids.SteerablePyramidFreq(image, order=3, is_complex=True)
    filters = pyramid_filters(image.shape, PyramidSpec(orientations=4))
    assert len(filters.bands) == reference.num_scales * 4
    spectrum = np.fft.fftshift(np.fft.fft2(image))
    for band in filters.bands:
        weights = np.zeros(image.shape)
        weights[band.rows, band.cols] = band.weights
        full_res = np.fft.ifft2(np.fft.ifftshift(spectrum * weights))
        ref = reference.pyr_coeffs[(band.level, band.orientation)]
        step = 2**band.level
        # pyrtools decimates each level by 2 and multiplies every band by (-1j)**order
        mine = full_res[::step, ::step] * (image.size / ref.size) * (-1j) ** 3
        assert ref.shape == mine.shape
        assert np.abs(mine - ref).max() < 1e-4 * np.abs(ref).max()


def test_cropped_bands_hold_the_full_resolution_band():
    """The decimated coefficients are the full band on a coarser grid (up to a fixed carrier)."""
    image = np.random.default_rng(4).standard_normal((64, 64)).astype(np.float32)
    pyramid = decompose(image)
    filters = pyramid_filters(image.shape, PyramidSpec())
    spectrum = np.fft.fftshift(np.fft.fft2(image))
    for coefficients, band in zip(pyramid["bands"], filters.bands):
        weights = np.zeros(image.shape)
        weights[band.rows, band.cols] = band.weights
        energy_full = np.sum(np.abs(np.fft.ifft2(np.fft.ifftshift(spectrum * weights))) ** 2)
        # Parseval on both grids: same spectrum, different normalisation
        energy_crop = np.sum(np.abs(coefficients) ** 2) * coefficients.size / image.size
        assert energy_crop == pytest.approx(energy_full, rel=1e-4)
        assert coefficients.size <= image.size


def test_levels_and_decimation():
    spec = PyramidSpec()
    filters = pyramid_filters((192, 432), spec)
    assert spec.n_levels((192, 432)) == 5  # floor(log2(192)) - 2, as pyrtools and MIT
    assert len(filters.bands) == 5 * 4
    sizes = [band.weights.size for band in filters.bands if band.orientation == 2]
    assert all(b < a for a, b in zip(sizes, sizes[1:]))  # each level is smaller


def test_filters_are_built_once_per_size():
    assert pyramid_filters((50, 70), PyramidSpec()) is pyramid_filters((50, 70), PyramidSpec())


def test_half_octave_has_twice_the_levels():
    assert PyramidSpec("half-octave", 8).n_levels((128, 128)) == 2 * PyramidSpec().n_levels((128, 128))


@pytest.mark.parametrize("bad", [dict(kind="third-octave"), dict(orientations=0), dict(levels=0)])
def test_bad_spec(bad):
    with pytest.raises(ValueError):
        PyramidSpec(**bad)
