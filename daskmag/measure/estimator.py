"""Motion of image regions from the local phase of the complex steerable pyramid (pure NumPy kernel).

A translation ``d`` of the image moves every coefficient of a complex,
oriented band: ``c[t + 1](x) = c[t](x - d)``, so its local phase changes by
``phi(x - d) - phi(x) ~= -k(x) . d``, where ``k(x) = grad phi(x)`` is the
local spatial frequency (radians per pixel) of the band at ``x`` (Fleet &
Jepson 1990; the phase-based view of motion of Wadhwa et al. 2013 and of the
modal analysis of Chen et al. 2015).  Over all bands, orientations and the
coefficients of a region, the amplitude-weighted least-squares solution of

    ``sum_i w_i (dphi_i + k_i . d)**2  ->  min``,   ``w_i = |c_i[t]| |c_i[t + 1]|``

is the region's displacement ``d = (dx, dy)`` between the two frames.  Each
orientation only constrains the motion along its own frequency vector (the
aperture problem); with several orientations the 2x2 normal matrix is full
rank where the region has texture in two directions, and the
pseudo-inverse returns 0 along a direction that nothing constrains (a
straight edge, a grating).

Frequencies: ``k(x)`` is taken from the band itself, ``Im(conj(c) dc/dx) / |c|**2``
with ``dc/dx`` the band's exact spectral derivative, averaged over the two
frames (``frequency="local"``, the default).  ``frequency="centre"`` uses
instead each band's centre frequency vector, the amplitude-weighted mean
frequency of its filter (:func:`band_centre_frequency`), the same for every
coefficient: simpler, but biased by the ratio of the image's own spectral
centroid in the band to the filter's (a 1/f texture reads ~4 % low; a single
grating anywhere in the band far more), see ``docs/measure.md``.

Large motions: a phase increment is only known modulo ``2 pi``, so a band
measures at most half its wavelength per frame, reliably about a quarter.
The bands are used coarse to fine: the displacement from the coarser bands
predicts each finer band's phase increment, and only the wrapped difference
from that prediction is taken from the finer band.  A region's coarsest band
(see :func:`usable_levels`) then sets the limit, about a quarter of its
wavelength per frame.

Limits: a textureless region has no phase to follow (its coefficients have
little amplitude, hence little weight; with none at all the result is 0);
an edge in one direction only gives the motion across it; coefficients near
a region's border see pixels a few wavelengths outside it; the whole-frame
region wraps around the frame's edges (the pyramid is periodic); occlusion,
lighting changes, and motion blur all bias the result.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.fft

from ..kernels.colourspace import luma
from ..kernels.pyramid import BandFilter, PyramidSpec, centred_spectrum, pyramid_filters

#: Frames whose spectra are taken together (batched FFTs) in :func:`measure_block`.
BATCH_FRAMES = 8
#: A region uses pyramid levels whose centre wavelength is at most this
#: fraction of its smaller side (see :func:`usable_levels`).
WAVELENGTHS_PER_SIDE = 2.0
#: Each band leaves out the coefficients this many of its centre wavelengths
#: inside the region's border (at most a quarter of the region's side), whose
#: support reaches pixels outside the region.
BORDER_WAVELENGTHS = 1.0
#: Tiny amplitude squared guarding divisions.
_EPS = 1e-20


@dataclass(frozen=True)
class Region:
    """A rectangle of the frame, in pixels: ``x, y`` of its top-left corner, width, height."""

    name: str
    x: int
    y: int
    w: int
    h: int

    def as_roi(self) -> str:
        """``"x,y,w,h"``, as ``--roi`` takes it."""
        return f"{self.x},{self.y},{self.w},{self.h}"


def _centred_frequencies(n: int) -> np.ndarray:
    """Angular frequency (radians per pixel) of each index of a centred DFT axis of length ``n``."""
    return 2 * np.pi * scipy.fft.fftshift(scipy.fft.fftfreq(n))


def band_frequency_grid(band: BandFilter, shape: tuple[int, int]):
    """Angular frequencies ``(wx, wy)`` (radians per pixel) on ``band``'s box of the centred DFT grid."""
    wy = _centred_frequencies(shape[0])[band.rows][:, None]
    wx = _centred_frequencies(shape[1])[band.cols][None, :]
    return np.broadcast_to(wx, band.shape), np.broadcast_to(wy, band.shape)


def band_centre_frequency(band: BandFilter, shape: tuple[int, int]) -> np.ndarray:
    """The band's centre frequency vector ``(kx, ky)`` in radians per pixel.

    The mean frequency of the band's filter on its box, weighted by the
    filter's amplitude.  Its wavelength ``2 pi / |k|`` sizes the band's
    spatial reach and its phase-wrapping limit (a quarter of it per frame).
    """
    wx, wy = band_frequency_grid(band, shape)
    weights = np.asarray(band.weights, dtype=float)
    total = weights.sum()
    return np.array([(weights * wx).sum() / total, (weights * wy).sum() / total])


def band_wavelength(band: BandFilter, shape: tuple[int, int]) -> float:
    """Wavelength in pixels of the band's centre frequency."""
    return float(2 * np.pi / np.hypot(*band_centre_frequency(band, shape)))


def usable_levels(regions, shape: tuple[int, int], spec: PyramidSpec) -> list[int]:
    """For each region, the number of pyramid levels (from the finest) it uses.

    A level is used if its centre wavelength is at most the region's smaller
    side divided by :data:`WAVELENGTHS_PER_SIDE`, so that the region holds a
    few of its wavelengths and its coefficients mostly see the region's own
    pixels; at least the finest level is always used.
    """
    filters = pyramid_filters(tuple(shape), spec)
    wavelengths = {}
    for band in filters.bands:
        wavelengths[band.level] = max(wavelengths.get(band.level, 0.0), band_wavelength(band, shape))
    out = []
    for region in regions:
        side = min(region.w, region.h) / WAVELENGTHS_PER_SIDE
        out.append(max(1, sum(1 for level in sorted(wavelengths) if wavelengths[level] <= side)))
    return out


def _box_range(start: int, length: int, size: int, n: int) -> slice:
    """Samples of a band box of ``n`` samples (spanning ``size`` pixels) inside pixels ``[start, start + length)``."""
    lo = math.ceil(start * n / size - 1e-9)
    hi = math.ceil((start + length) * n / size - 1e-9)
    hi = max(hi, lo + 1)
    return slice(min(lo, n - 1), min(hi, n))


def _inset(start: int, length: int, size: int, wavelength: float) -> int:
    """Pixels left out inside a region's border along one axis (none where it is the frame's edge
    of a whole-frame axis: the pyramid is periodic there)."""
    if start == 0 and length == size:
        return 0
    return int(min(round(BORDER_WAVELENGTHS * wavelength), length // 4))


@dataclass(frozen=True)
class _Plan:
    """What the kernel needs for one frame size: the bands, and per band the region slices."""

    bands: tuple
    derivative_x: tuple  # i * wx on each band's box (complex64), or None
    derivative_y: tuple
    centre: tuple  # (kx, ky) per band
    slices: tuple  # per band: per region (rows, cols) of its box, or None when unused


def _plan(shape, regions, spec, levels) -> _Plan:
    filters = pyramid_filters(tuple(shape), spec)
    n_levels = usable_levels(regions, shape, spec) if levels is None else [int(levels)] * len(regions)
    bands, dxs, dys, centres, slices = [], [], [], [], []
    for band in filters.bands:
        wx, wy = band_frequency_grid(band, shape)
        bands.append(band)
        dxs.append((1j * wx * band.weights).astype(np.complex64))
        dys.append((1j * wy * band.weights).astype(np.complex64))
        centres.append(band_centre_frequency(band, shape))
        h_b, w_b = band.shape
        wavelength = band_wavelength(band, shape)
        per_region = []
        for region, used in zip(regions, n_levels):
            if band.level >= used:
                per_region.append(None)
                continue
            inset_y = _inset(region.y, region.h, shape[0], wavelength)
            inset_x = _inset(region.x, region.w, shape[1], wavelength)
            per_region.append((_box_range(region.y + inset_y, region.h - 2 * inset_y, shape[0], h_b),
                               _box_range(region.x + inset_x, region.w - 2 * inset_x, shape[1], w_b)))
        slices.append(tuple(per_region))
    return _Plan(tuple(bands), tuple(dxs), tuple(dys), tuple(centres), tuple(slices))


def _as_luma(frames) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim == 4:
        return luma(frames)
    return frames.astype(np.float32, copy=False)


def _band_data(spectrum, band, derivative_x, derivative_y, local: bool):
    """Coefficients (and their x, y derivatives) of one band for a batch of centred spectra."""
    box = spectrum[..., band.rows, band.cols]
    coefficients = scipy.fft.ifft2(box * band.weights, workers=1)
    if not local:
        return coefficients, None, None
    return (coefficients, scipy.fft.ifft2(box * derivative_x, workers=1),
            scipy.fft.ifft2(box * derivative_y, workers=1))


def _wrap(phase):
    """``phase`` wrapped into [-pi, pi), in its own precision."""
    two_pi = phase.dtype.type(2 * np.pi)
    return np.remainder(phase + two_pi / 2, two_pi) - two_pi / 2


def measure_block(frames, regions, spec: PyramidSpec = PyramidSpec(), *, levels: int | None = None,
                  frequency: str = "local") -> np.ndarray:
    """Displacement of each region between consecutive frames of a block.

    Parameters
    ----------
    frames : array (T, H, W, 3) uint8 or (T, H, W) float
        Consecutive frames (RGB frames are reduced to their luminance).
    regions : sequence of Region
        Rectangles inside the frame.
    spec : PyramidSpec
        The pyramid (default: octave bands, 4 orientations).
    levels : int, optional
        Use this many levels (from the finest) for every region instead of
        :func:`usable_levels`.
    frequency : {"local", "centre"}
        Each coefficient's local spatial frequency, or its band's centre
        frequency (see the module's notes).

    Returns
    -------
    ndarray (T - 1, len(regions), 2) float64
        ``dx, dy`` in pixels (+x right, +y down) from frame ``t`` to ``t + 1``.

    Notes
    -----
    Memory: one batch of :data:`BATCH_FRAMES` frames' bands at a time (and
    the last frame of the previous batch), whatever ``T``.
    """
    if frequency not in ("local", "centre"):
        raise ValueError(f"frequency must be 'local' or 'centre', got {frequency!r}")
    local = frequency == "local"
    n_frames = len(frames)
    shape = tuple(np.shape(frames)[1:3])
    plan = _plan(shape, regions, spec, levels)
    n_regions = len(regions)
    out = np.zeros((max(0, n_frames - 1), n_regions, 2))
    if n_frames < 2:
        return out
    # bands fine to coarse in the plan; solve coarse to fine
    order = sorted(range(len(plan.bands)), key=lambda i: -plan.bands[i].level)
    previous = None  # (coefficients, dx, dy) per band of the last frame of the previous batch
    for begin in range(0, n_frames, BATCH_FRAMES):
        stop = min(begin + BATCH_FRAMES, n_frames)
        spectrum = centred_spectrum(_as_luma(frames[begin:stop]))
        data = [_band_data(spectrum, band, dx, dy, local) if any(box is not None for box in boxes)
                else (None, None, None)  # no region uses this band
                for band, dx, dy, boxes in zip(plan.bands, plan.derivative_x, plan.derivative_y, plan.slices)]
        del spectrum
        if previous is not None:
            data = [tuple(None if a is None else np.concatenate([p, a]) for p, a in zip(prev, now))
                    for prev, now in zip(previous, data)]
            first = begin - 1
        else:
            first = begin
        previous = [tuple(None if a is None else a[-1:] for a in band_data) for band_data in data]
        steps = stop - first - 1
        if steps < 1:
            continue
        out[first : first + steps] = _solve_steps(data, plan, order, n_regions, local)
    return out


def _solve_steps(data, plan: _Plan, order, n_regions: int, local: bool) -> np.ndarray:
    """Coarse-to-fine weighted least squares for the steps of one batch: (steps, regions, 2)."""
    steps = next(len(c) for c, _, _ in data if c is not None) - 1
    result = np.zeros((steps, n_regions, 2))
    for r in range(n_regions):
        normal = np.zeros((steps, 2, 2))
        rhs = np.zeros((steps, 2))
        estimate = np.zeros((steps, 2))
        current_level = None
        for i in order:
            box = plan.slices[i][r]
            if box is None:
                continue
            level = plan.bands[i].level
            if current_level is not None and level != current_level:
                estimate = _solve(normal, rhs)  # the coarser levels' estimate predicts the finer ones
            current_level = level
            rows, cols = box
            c, cx, cy = (None if a is None else a[:, rows, cols] for a in data[i])
            product = c[1:] * np.conj(c[:-1])
            weight = np.abs(product)
            if local:
                power = np.abs(c) ** 2 + _EPS
                kx = (np.conj(c) * cx).imag / power
                ky = (np.conj(c) * cy).imag / power
                kx = 0.5 * (kx[1:] + kx[:-1])
                ky = 0.5 * (ky[1:] + ky[:-1])
            else:
                kx = np.full(product.shape, plan.centre[i][0])
                ky = np.full(product.shape, plan.centre[i][1])
            dphi = np.angle(product)
            if np.any(estimate):
                shift = estimate.astype(np.float32)
                predicted = -(kx * shift[:, 0, None, None] + ky * shift[:, 1, None, None])
                dphi = predicted + _wrap(dphi - predicted)
            axes = (1, 2)
            wkx, wky = weight * kx, weight * ky
            normal[:, 0, 0] += (wkx * kx).sum(axes)
            normal[:, 0, 1] += (wkx * ky).sum(axes)
            normal[:, 1, 1] += (wky * ky).sum(axes)
            rhs[:, 0] -= (wkx * dphi).sum(axes)
            rhs[:, 1] -= (wky * dphi).sum(axes)
        normal[:, 1, 0] = normal[:, 0, 1]
        result[:, r] = _solve(normal, rhs)
    return result


def _solve(normal, rhs) -> np.ndarray:
    """``pinv(normal) @ rhs`` per step, 0 along directions nothing constrains."""
    out = np.zeros_like(rhs)
    for t in range(len(rhs)):
        scale = np.trace(normal[t])
        if not scale > 0:
            continue
        out[t] = np.linalg.pinv(normal[t], rcond=1e-6) @ rhs[t]
    return out
