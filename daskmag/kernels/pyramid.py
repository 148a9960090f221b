"""Complex steerable pyramid in the frequency domain (pure array kernels).

The pyramid follows Portilla & Simoncelli's frequency-domain construction as
used by Wadhwa et al. (2013): a high-pass residual, ``levels`` radial bands
each split into ``orientations`` one-sided (analytic) angular bands, and a
low-pass residual.  The squared filters of the real-part reconstruction sum to
one at every frequency, so the pyramid is a tight frame: :func:`collapse`
of :func:`decompose` returns the image to float precision.

The kinds are those of MIT's phaseAmplify (:data:`PYRAMID_KINDS`): octave and
half-octave bands from raised-cosine mask pairs, and smooth-half-octave and
quarter-octave bands from ``cos**6`` windows in log frequency.  Whatever the
windows, the radial partition is normalised numerically so that the frame is
exactly tight on the DFT grid.

Every band is cropped to a box in the frequency plane that holds its whole
support (rounded up to a fast FFT length), so the band's coefficients are
decimated as far as their bandwidth allows.  Cropping a box that is not
centred on DC multiplies the band by a fixed spatial carrier; that carrier is
the same in every frame, so it cancels in every phase *difference*, which is
all that motion processing uses.

Filters depend only on the frame size and the :class:`PyramidSpec`; they are
built once per size (and cached), never per frame.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import scipy.fft

from .backend import device_key, fft_module, into, namespace
from .colourspace import RGB_TO_YIQ, add_luma, full_scale, luma
from .compiled import loops


@dataclass(frozen=True)
class PyramidKind:
    """How a kind of pyramid splits the radial frequency axis (after MIT's phaseAmplify).

    Parameters
    ----------
    bands_per_octave : int
        Radial band levels per octave of frequency.
    orientations : int
        Default number of orientations (MIT's choice for this kind).
    window : str
        ``"raised-cosine"``: MIT's ``getFilters``, Portilla & Simoncelli's
        high/low mask pairs, a transition of ``twidth`` octaves below each
        cut-off.  ``"cosine-power"``: MIT's ``getFiltersSmoothWindow``,
        ``cos**cos_order`` windows in log frequency.
    twidth : float
        Transition width in octaves (``"raised-cosine"`` only).
    cos_order : int
        Power of the cosine windows (``"cosine-power"`` only; MIT uses 6).
    """

    bands_per_octave: int
    orientations: int
    window: str
    twidth: float = 1.0
    cos_order: int = 6


#: The pyramid kinds, as ``phaseAmplify``'s ``pyrType`` (octave, halfOctave,
#: smoothHalfOctave, quarterOctave).
PYRAMID_KINDS = {
    "octave": PyramidKind(1, 4, "raised-cosine", twidth=1.0),
    "half-octave": PyramidKind(2, 8, "raised-cosine", twidth=0.75),
    "smooth-half-octave": PyramidKind(2, 8, "cosine-power"),
    "quarter-octave": PyramidKind(4, 8, "cosine-power"),
    # Wadhwa et al., ICCP 2014: one real band per octave and its Riesz
    # transform (daskmag.kernels.riesz), not a steerable pyramid
    "riesz": PyramidKind(1, 1, "riesz"),
}


@dataclass(frozen=True)
class PyramidSpec:
    """What pyramid to build.

    Parameters
    ----------
    kind : str
        One of :data:`PYRAMID_KINDS`: ``"octave"`` (one band per octave),
        ``"half-octave"``, ``"smooth-half-octave"`` or ``"quarter-octave"``.
    orientations : int or None
        Number of orientations per level (angular order ``orientations - 1``);
        ``None`` means the kind's default (4 for octave, 8 for the others, as
        MIT).  It is resolved on construction, so ``PyramidSpec("half-octave")``
        equals ``PyramidSpec("half-octave", 8)`` (and shares its cached filters).
    levels : int or None
        Number of radial band levels; ``None`` means as many as the frame
        allows: ``floor(log2(min(H, W))) - 2`` octaves (as pyrtools and MIT)
        times the kind's bands per octave.
    """

    kind: str = "octave"
    orientations: int | None = None
    levels: int | None = None

    def __post_init__(self):
        if self.kind not in PYRAMID_KINDS:
            raise ValueError(
                f"unknown pyramid kind {self.kind!r}; choose one of {', '.join(PYRAMID_KINDS)}"
            )
        if self.orientations is None:
            # frozen: the resolved value is set once, here
            object.__setattr__(self, "orientations", PYRAMID_KINDS[self.kind].orientations)
        if int(self.orientations) < 1:
            raise ValueError(f"orientations must be at least 1, got {self.orientations}")
        if self.levels is not None and int(self.levels) < 1:
            raise ValueError("levels must be at least 1")

    def octaves(self, shape: tuple[int, int]) -> int:
        """Number of octaves the pyramid spans on frames of ``shape``."""
        max_octaves = int(math.floor(math.log2(min(shape)))) - 2
        return max(1, max_octaves)

    def n_levels(self, shape: tuple[int, int]) -> int:
        """Number of radial band levels on frames of ``shape``."""
        if self.levels is None:
            return self.octaves(shape) * PYRAMID_KINDS[self.kind].bands_per_octave
        return int(self.levels)


@dataclass(frozen=True)
class BandFilter:
    """One oriented band: its frequency box and its weights on that box.

    ``rows`` and ``cols`` are slices of the centred (``fftshift``-ed) DFT
    grid; ``weights`` holds the filter on that box.
    """

    level: int
    orientation: int
    rows: slice
    cols: slice
    weights: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        """Shape of the band's coefficients."""
        return self.weights.shape

    def __getstate__(self):
        # the per-device weights cached by _complex_weights stay where they were made
        state = dict(self.__dict__)
        state.pop("_complex_weights", None)
        state.pop("_real_weights", None)
        return state


@dataclass(frozen=True)
class PyramidFilters:
    """All filters of a pyramid on one frame size."""

    shape: tuple[int, int]
    highpass: np.ndarray
    bands: tuple[BandFilter, ...]
    lowpass: BandFilter


def _frequency_grid(shape):
    """Normalised frequencies (Nyquist = 1 on each axis) on the *centred* DFT grid.

    Index ``n // 2`` of each axis is DC (``numpy.fft.fftshift`` order).
    """
    height, width = shape
    v = scipy.fft.fftshift(scipy.fft.fftfreq(height)) * 2.0
    u = scipy.fft.fftshift(scipy.fft.fftfreq(width)) * 2.0
    vv, uu = np.meshgrid(v, u, indexing="ij")
    radius = np.sqrt(uu**2 + vv**2)
    angle = np.arctan2(vv, uu)
    return radius, angle


def _radial_pair(radius, cutoff, twidth):
    """Raised-cosine (log2 frequency) high/low masks whose squares sum to one."""
    with np.errstate(divide="ignore"):
        log_rad = np.log2(radius / cutoff)
    log_rad = np.clip(log_rad, -twidth, 0.0)
    himask = np.abs(np.cos(log_rad * np.pi / (2.0 * twidth)))
    lomask = np.sqrt(np.clip(1.0 - himask**2, 0.0, None))
    return himask, lomask


def _raised_cosine_radial(radius, kind: PyramidKind, n_levels: int):
    """High-pass, band and low-pass radial masks of MIT's ``getFilters``.

    Band ``k`` lies between the cut-offs ``2**(-k / bands_per_octave)`` and
    ``2**(-(k + 1) / bands_per_octave)``, each with a transition ``twidth``
    octaves wide below it.
    """
    cutoffs = [2.0 ** (-k / kind.bands_per_octave) for k in range(n_levels + 1)]
    highpass, lomask_prev = _radial_pair(radius, cutoffs[0], kind.twidth)
    bands = []
    for cutoff in cutoffs[1:]:
        himask, lomask = _radial_pair(radius, cutoff, kind.twidth)
        bands.append(himask * lomask_prev)
        lomask_prev = lomask
    return highpass, bands, lomask_prev


def _cosine_power_radial(radius, kind: PyramidKind, n_levels: int):
    """High-pass, band and low-pass radial masks of ``cos**N`` windows in log frequency.

    As MIT's ``getFiltersSmoothWindow``: windows ``cos(pi u / (N + 1))**N``,
    ``|u| < (N + 1) / 2``, where ``u`` is the distance from the window's
    centre in band spacings (``1 / bands_per_octave`` octave).  The squares of
    such a comb sum to the constant ``(N + 1) C(2N, N) / 4**N``, so scaled
    windows tile log frequency exactly, and each residual is simply the sum
    of the squared windows that the comb would have beyond the last band.

    The bands cover the octaves of the octave pyramid (crossovers with the
    high-pass at ``2**-0.5`` of Nyquist, then one band per
    ``1 / bands_per_octave`` octave), band ``k`` centred at
    ``2**(-0.5 - (k + 0.5) / bands_per_octave)``.  (MIT instead stretches the
    comb slightly so that its ends fall on Nyquist and the lowest octave; here
    the spacing is exactly ``1 / bands_per_octave`` octave.)
    """
    order = kind.cos_order
    half_support = (order + 1) / 2.0
    scale = math.sqrt(4.0**order / ((order + 1) * math.comb(2 * order, order)))

    def window(u):
        u = np.clip(u, -half_support, half_support)
        return np.where(np.abs(u) < half_support, scale * np.cos(np.pi * u / (order + 1)) ** order, 0.0)

    def below(u):
        # summed squares of all windows centred below a window that is u spacings
        # from the frequency: only the next order + 1 reach it, and where even
        # that window is out of reach above (u <= -half_support) they sum to one
        tail = sum(window(u + j) ** 2 for j in range(1, order + 2))
        return np.where(u <= -half_support, 1.0, tail)

    log_rad = np.log2(np.maximum(radius, np.finfo(float).tiny))  # DC: far below every band
    first_centre = -0.5 - 0.5 / kind.bands_per_octave
    u = (log_rad - first_centre) * kind.bands_per_octave  # offset from band 0, in spacings
    bands = [window(u + k) for k in range(n_levels)]
    highpass = np.sqrt(below(-u))  # the comb is symmetric: "above band 0" mirrors "below"
    lowpass = np.sqrt(below(u + n_levels - 1))
    return highpass, bands, lowpass


_RADIAL = {"raised-cosine": _raised_cosine_radial, "cosine-power": _cosine_power_radial}


def _angular_masks(angle, orientations):
    """One-sided angular windows, normalised so the real reconstruction is exact."""
    order = orientations - 1
    # A single orientation is a half plane, whose window does not fall to zero
    # at its edge: the dividing line must then belong to both halves, or no
    # band holds it (the normalisation below halves its weight).
    edge = np.pi / 2 + (1e-9 if order == 0 else 0.0)
    masks = []
    for j in range(orientations):
        theta = np.mod(angle - np.pi * j / orientations + np.pi, 2 * np.pi) - np.pi
        window = np.where(np.abs(theta) < edge, np.cos(theta) ** order, 0.0)
        masks.append(window)
    # Each one-sided window w_j(theta) and its mirror w_j(theta + pi) together
    # cover the full circle; the steerable condition is that their squares sum
    # to a constant.  Normalise numerically so that it holds exactly on the grid.
    total = np.zeros_like(angle)
    for window in masks:
        total += window**2
    total = total + _mirror(total)
    scale = np.where(total > 0, 2.0 / np.sqrt(np.where(total > 0, total, 1.0)), 0.0)
    return [window * scale for window in masks]


def _mirror(grid):
    """``grid`` evaluated at the negated frequency (-omega) on a centred DFT grid."""
    mirrored = grid[::-1, ::-1]
    # centred index i holds frequency i - n//2; -f sits at n - 1 - i only for odd n
    shift = tuple(1 - n % 2 for n in grid.shape)
    return np.roll(mirrored, shift=shift, axis=(0, 1))


def _unpaired_nyquist(shape):
    """Mask of the centred DFT grid: the Nyquist row/column of each even axis."""
    mask = np.zeros(shape, dtype=bool)
    if shape[0] % 2 == 0:
        mask[0, :] = True  # centred index 0 holds -n/2, which aliases +n/2
    if shape[1] % 2 == 0:
        mask[:, 0] = True
    return mask


def _box(weights):
    """Slices of the centred DFT grid: a fast-FFT-sized box holding ``weights``' support."""
    slices = []
    for axis, n in enumerate(weights.shape):
        support = np.flatnonzero(np.any(weights != 0, axis=1 - axis))
        if support.size == 0:
            slices.append(slice(n // 2, n // 2 + 1))
            continue
        lo, hi = int(support.min()), int(support.max()) + 1
        size = scipy.fft.next_fast_len(hi - lo, real=False)
        if size >= n:
            slices.append(slice(0, n))
            continue
        # centre the box on the support, then keep it inside the grid
        start = min(max(lo - (size - (hi - lo)) // 2, 0), n - size)
        slices.append(slice(start, start + size))
    return tuple(slices)


@functools.lru_cache(maxsize=16)
def pyramid_filters(shape: tuple[int, int], spec: PyramidSpec = PyramidSpec()) -> PyramidFilters:
    """Build (once per frame size) the filters of ``spec`` on frames of ``shape``.

    Parameters
    ----------
    shape : (int, int)
        Frame height and width.
    spec : PyramidSpec
        Pyramid kind, orientations and levels.

    Returns
    -------
    PyramidFilters
        Filters on the centred (``fftshift``-ed) DFT grid.
    """
    shape = (int(shape[0]), int(shape[1]))
    kind = PYRAMID_KINDS[spec.kind]
    if kind.window not in _RADIAL:
        raise ValueError(f"{spec.kind!r} is not a steerable pyramid (see daskmag.kernels.riesz)")
    n_levels = spec.n_levels(shape)
    radius, angle = _frequency_grid(shape)
    highpass, radial_bands, lowpass = _RADIAL[kind.window](radius, kind, n_levels)

    # The Nyquist row/column of an even axis is its own negative frequency: a
    # real cosine there has no phase to shift, and where it lies on the edge
    # of a one-sided angular window no band covers it at all.  Give it to the
    # (real) high-pass residual, as MIT does.  Only the smooth windows reach
    # it; the raised-cosine high-pass is already 1 there.
    unpaired = _unpaired_nyquist(shape)
    highpass = np.where(unpaired, 1.0, highpass)
    lowpass = np.where(unpaired, 0.0, lowpass)
    radial_bands = [np.where(unpaired, 0.0, band) for band in radial_bands]

    # Make the radial partition exactly tight on the grid (it already is, up to
    # rounding, unless raised-cosine transitions overlap, as in half-octave).
    total = highpass**2 + lowpass**2 + sum(band**2 for band in radial_bands)
    norm = 1.0 / np.sqrt(total)
    highpass = highpass * norm
    lowpass = lowpass * norm
    radial_bands = [band * norm for band in radial_bands]

    angular = _angular_masks(angle, spec.orientations)
    bands = []
    for level, radial in enumerate(radial_bands):
        for j, window in enumerate(angular):
            weights = radial * window
            rows, cols = _box(weights)
            bands.append(BandFilter(level, j, rows, cols, weights[rows, cols].astype(np.float32)))
    rows, cols = _box(lowpass)
    low = BandFilter(n_levels, -1, rows, cols, lowpass[rows, cols].astype(np.float32))
    return PyramidFilters(shape, highpass.astype(np.float32), tuple(bands), low)


def _on_device(weights, like):
    return namespace(like).asarray(weights)


@functools.lru_cache(maxsize=16)
def _checkerboard(shape: tuple[int, int]):
    """``(-1)**(m * even_h + n * even_w)`` (float32) and the axes it does not cover.

    On an even axis of length ``n``, ``fftshift`` (a roll by ``n / 2``) of a
    spectrum is the spectrum of the signal times ``(-1)**m``; multiplying the
    real frame by this sign costs a fraction of rolling its complex spectrum.
    Odd axes are rolled as before.
    """
    height, width = shape
    signs = np.ones(shape, dtype=np.float32)
    if height % 2 == 0:
        signs[1::2] *= -1
    if width % 2 == 0:
        signs[:, 1::2] *= -1
    odd = tuple(axis for axis, n in ((-2, height), (-1, width)) if n % 2)
    return signs, odd


def centred_spectrum(image):
    """``fftshift(fft2(image))`` over the last two axes, complex64."""
    xp, fft = namespace(image), fft_module(image)
    signs, odd = _checkerboard(tuple(image.shape[-2:]))
    image = xp.astype(image, xp.float32, copy=False) * _on_device(signs, image)
    spectrum = fft.fft2(image, overwrite_x=True)
    return fft.fftshift(spectrum, axes=odd) if odd else spectrum


def real_image(centred, overwrite: bool = False):
    """Real part of the inverse of :func:`centred_spectrum` (float32).

    ``overwrite``: ``centred`` may be used as scratch space.
    """
    xp, fft = namespace(centred), fft_module(centred)
    signs, odd = _checkerboard(tuple(centred.shape[-2:]))
    if odd:
        centred, overwrite = fft.ifftshift(centred, axes=odd), True
    image = xp.real(fft.ifft2(centred, overwrite_x=overwrite))
    return xp.astype(image, xp.float32, copy=False) * _on_device(signs, image)


def _compiled_frames(frames):
    """The compiled loops where they take ``frames`` (C-contiguous NumPy (T, H, W, C) unsigned
    integers, C 1 or 3), else None."""
    if not (type(frames) is np.ndarray and frames.ndim == 4 and frames.shape[-1] in (1, 3)
            and frames.dtype in (np.uint8, np.uint16) and frames.flags.c_contiguous):
        return None
    return loops()


def luma_spectrum(frames):
    """``centred_spectrum(luma(frames))``: the centred spectrum of frames' luminance.

    Parameters
    ----------
    frames : uint8 or uint16 array (T, H, W, C), C 1 or 3

    Returns
    -------
    complex64 array (T, H, W)

    Where compiled (:mod:`daskmag.kernels.compiled`), the luminance and the
    checkerboard sign are one pass over the frames instead of four.
    """
    compiled = _compiled_frames(frames)
    if compiled is None:
        return centred_spectrum(luma(frames))
    signs, odd = _checkerboard(tuple(frames.shape[1:3]))
    scale = np.float32(1.0 / full_scale(frames.dtype, np))
    weights = (RGB_TO_YIQ[0] * scale if frames.shape[-1] == 3 else np.array([scale])).astype(np.float32)
    image = compiled.signed_luma(frames, weights, signs, np.empty(frames.shape[:3], dtype=np.float32))
    fft = fft_module(image)
    spectrum = fft.fft2(image, overwrite_x=True)
    return fft.fftshift(spectrum, axes=odd) if odd else spectrum


def add_luma_of_spectrum(frames, centred):
    """``add_luma(frames, real_image(centred, overwrite=True))``: frames with a luminance change added.

    Parameters
    ----------
    frames : uint8 or uint16 array (T, H, W, C), C 1 or 3
    centred : complex64 array (T, H, W)
        The change's centred spectrum (:func:`centred_spectrum`'s layout);
        used as scratch space.

    Returns
    -------
    array like ``frames``

    Where compiled, the real part, the checkerboard sign and the rounded,
    clipped sum are one pass, with the same float32 arithmetic.
    """
    compiled = _compiled_frames(frames)
    if compiled is None or not (type(centred) is np.ndarray and centred.dtype == np.complex64):
        return add_luma(frames, real_image(centred, overwrite=True))
    fft = fft_module(centred)
    signs, odd = _checkerboard(tuple(centred.shape[-2:]))
    if odd:
        centred = fft.ifftshift(centred, axes=odd)
    change = fft.ifft2(centred, overwrite_x=True)
    return compiled.add_signed_real(frames, change, signs, np.float32(full_scale(frames.dtype, np)),
                                    np.empty_like(frames))


def _complex_weights(band: BandFilter, like, weight: float = 1.0):
    """``band.weights * weight`` as complex64 on ``like``'s device, cached on the band.

    A complex64 array times float32 weights makes NumPy cast the weights in
    buffered chunks on every call (a fifth of a band's crop-and-weight);
    the product is the same.  On a GPU the cached copy also spares a
    transfer per call.
    """
    cache = band.__dict__.setdefault("_complex_weights", {})  # frozen: not a field
    key = (weight, device_key(like))
    weights = cache.get(key)
    if weights is None:
        weights = cache[key] = namespace(like).asarray((band.weights * np.float32(weight)).astype(np.complex64))
    return weights


def analyse(spectrum, band: BandFilter, out=None):
    """Complex coefficients (..., h_b, w_b) of one band from a centred spectrum (..., H, W).

    ``out``: a C-contiguous complex64 array to compute them in (saves a copy
    where the caller keeps them).
    """
    fft = fft_module(spectrum)
    crop = spectrum[..., band.rows, band.cols]
    compiled = loops() if type(spectrum) is np.ndarray and spectrum.dtype == np.complex64 else None
    if compiled is not None and crop.ndim == 3 and (out is None or (out.flags.c_contiguous
                                                                   and out.dtype == np.complex64)):
        # the crop times real weights in one pass, half the multiplications of a complex product
        box = np.empty(crop.shape, dtype=np.complex64) if out is None else out
        compiled.multiply_weighted(box, crop, _real_weights(band, 1.0))
        result = fft.ifft2(box, overwrite_x=True)
        if result is not box:
            box[...] = result
        return box
    if out is None:
        box = crop * _complex_weights(band, spectrum)
        return fft.ifft2(box, overwrite_x=True)
    into(out, "multiply", crop, _complex_weights(band, spectrum))
    result = fft.ifft2(out, overwrite_x=True)
    if result is not out:  # a backend that does not transform in place
        out[...] = result
    return out


def synthesise_into(out, coefficients, band: BandFilter, weight: float = 0.5, overwrite: bool = False):
    """Add one band's contribution to the centred spectrum ``out`` (..., H, W), in place.

    The image is the real part of the inverse transform; ``weight`` 1/2 makes
    a one-sided (analytic) band add up to its real band.  ``overwrite``:
    ``coefficients`` may be used as scratch space (spares a new array).
    """
    fft = fft_module(coefficients)
    box = fft.fft2(coefficients, overwrite_x=overwrite)
    target = out[..., band.rows, band.cols]
    compiled = loops() if type(out) is np.ndarray and out.dtype == box.dtype == np.complex64 else None
    if compiled is not None and box.ndim == 3:  # weighted and added in one pass
        compiled.add_weighted(target, box, _real_weights(band, weight))
        return out
    box *= _complex_weights(band, out, weight)
    target += box
    return out


def _real_weights(band: BandFilter, weight: float):
    """``band.weights * weight`` as float32, cached on the band (NumPy only)."""
    cache = band.__dict__.setdefault("_real_weights", {})  # frozen: not a field
    weights = cache.get(weight)
    if weights is None:
        weights = cache[weight] = np.ascontiguousarray(band.weights * np.float32(weight), dtype=np.float32)
    return weights


def sampling_step(band: BandFilter, shape: tuple[int, int]) -> int:
    """The coarsest power-of-two sampling step that holds ``band`` without aliasing.

    Level ``k`` of the octave pyramid gets ``2**k``, as pyrtools decimates.
    """
    ratio = min(shape[0] / band.weights.shape[0], shape[1] / band.weights.shape[1])
    return 2 ** max(0, int(math.floor(math.log2(ratio))))


def sampled_band(spectrum, band: BandFilter, step: int):
    """One band at full resolution, sampled every ``step`` pixels: (..., H/step, W/step).

    Unlike :func:`analyse`'s cropped box, this grid is aligned with the
    image's pixels (pyrtools' layout), so tiles of it can be stitched.
    """
    xp, fft = namespace(spectrum), fft_module(spectrum)
    full = xp.zeros(spectrum.shape, dtype=xp.complex64)
    full[..., band.rows, band.cols] = spectrum[..., band.rows, band.cols] * _on_device(band.weights, spectrum)
    return fft.ifft2(fft.ifftshift(full, axes=(-2, -1)), overwrite_x=True)[..., ::step, ::step]


def decompose(image, spec: PyramidSpec = PyramidSpec()):
    """Decompose an image (or a stack of images) into the complex pyramid.

    Parameters
    ----------
    image : ndarray, shape (..., H, W)
        Real image(s), NumPy or CuPy.
    spec : PyramidSpec

    Returns
    -------
    dict
        ``"highpass"``: real array (..., H, W); ``"bands"``: list of complex
        arrays (..., h_b, w_b) in the order of ``pyramid_filters(...).bands``;
        ``"lowpass"``: complex array on the low-pass box.
    """
    filters = pyramid_filters(image.shape[-2:], spec)
    spectrum = centred_spectrum(image)
    highpass = real_image(spectrum * _on_device(filters.highpass, image))
    bands = [analyse(spectrum, band) for band in filters.bands]
    lowpass = analyse(spectrum, filters.lowpass)
    return {"highpass": highpass, "bands": bands, "lowpass": lowpass}


def collapse(pyramid, spec: PyramidSpec = PyramidSpec()):
    """Rebuild the image(s) from a pyramid made by :func:`decompose`."""
    highpass = pyramid["highpass"]
    xp = namespace(highpass)
    filters = pyramid_filters(highpass.shape[-2:], spec)
    spectrum = centred_spectrum(highpass) * _on_device(filters.highpass, highpass)
    for coefficients, band in zip(pyramid["bands"], filters.bands):
        synthesise_into(spectrum, coefficients, band)
    # the low-pass filter is real and symmetric: no analytic factor of 1/2
    synthesise_into(spectrum, pyramid["lowpass"], filters.lowpass, weight=1.0)
    return xp.astype(real_image(spectrum), xp.float32, copy=False)
