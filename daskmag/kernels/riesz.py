"""Riesz-pyramid motion magnification of one time block (pure array kernel).

Wadhwa, Rubinstein, Durand & Freeman, "Riesz Pyramids for Fast Phase-Based
Video Magnification", ICCP 2014.  Instead of a complex steerable pyramid
(here 4 complex orientations per octave), each level holds one *real*
band-pass image ``b``; its Riesz transform ``(r1, r2)`` makes the
quaternion ``q = b + i r1 + j r2 = A exp(n phi)``, with amplitude ``A``,
local phase ``phi`` and a local orientation ``theta`` (``n = i cos theta +
j sin theta``).  Motion changes ``phi`` along ``theta`` only, so one real
band per level carries the motion of every orientation.

Design
------
Pyramid
    Frequency-domain, with the radial filters of the octave steerable
    pyramid (:mod:`daskmag.kernels.pyramid`, after Portilla & Simoncelli and MIT's
    ``getFilters``): raised cosines in log frequency whose squares sum to
    one at every frequency.  The pyramid is therefore a tight frame and
    :func:`collapse` of :func:`decompose` is exact to float32 round-off
    (measured: max error 1.7e-6 on unit-variance noise, see the tests).
    The paper builds a Laplacian-like pyramid from small spatial filters
    instead, which is fast in C++/GLSL but only nearly invertible and, in
    NumPy, many strided passes; here one real FFT (``rfft2``) per frame,
    cropped per level, gives every level (and its Riesz transform, below)
    at its own sampling, exactly band-limited and with the same wrap-around
    boundaries as the octave kernel.
Levels
    Level ``k >= 1`` is the steerable pyramid's radial band ``k + 1``:
    ``[pi / 2**(k+3), pi / 2**(k+1)]``, one-octave edges, sampled every
    ``2**(k+1)`` pixels; the low-pass residual is the octave pyramid's.
    Level 0 starts as band 1 (edge ``pi/8 .. pi/4``) but reaches up to
    ``7/12 pi`` (:data:`REACH`) with a sharp, eighth-of-an-octave upper
    edge (:data:`TOP_EDGE`), and is sampled as that allows (box of
    ``7/12`` of the frame's samples along each axis, rounded up to an even,
    7-smooth size for fast FFTs).  Above it, the high-pass residual is left
    as it is.  Why (measured by ``benchmarks/riesz_gain.py`` on the tests'
    texture; the gains below are at alpha 10, the octave kernel's 10.50):

    - With band 1 as level 0 and nothing above it, the gain was 8.34: the
      texture's motion, as registration sees it, sits mostly at ``pi/4 ..
      pi/2``, half of which band 1's one-octave upper edge leaves in the
      unprocessed residual.  A level of its own for ``[pi/4, pi]`` (the
      paper's layout, ``skip_octaves=0, reach=1, edge=1``) gives 9.39, but
      at full resolution: 4 times the coefficients, barely faster than
      the octave kernel.  Level 0 covering ``pi/4 .. 7/12 pi`` takes that
      motion with 1.36 times band 1's coefficients (on 432x192 frames).
      Above ``pi/2`` phase shifts of ``alpha`` times the motion pass the
      method's bound (MIT's ``alpha * delta < lambda / 4``); reaching
      further still raises the gain a little (``reach=0.7``: 9.79) for a
      level 0 1.6 times larger again.
    - One real band per level moves each point along its dominant
      orientation only: on isotropic texture, where orientations overlap,
      the paper's layout magnifies as the 2-orientation octave kernel
      does (9.39 against 9.45), less than 4 orientations.  To first order
      a phase-only change of a level is ``alpha (db - b dA / A)`` where
      ``alpha db`` is wanted: the part of a motion that changes the local
      amplitude is not magnified (the paper's method, kept).
    - Where orientations overlap, the phase shift also distorts: the
      third harmonic of a 0.1 px, 5 Hz motion magnified 10 times is
      0.005-0.008 px (octave kernel 0.0001), and 15 Hz, the tests'
      out-of-band frequency, is exactly 3 x 5 Hz; out-of-band motion by
      itself is left exactly as it is.  The paper's amplitude-weighted
      spatial smoothing of the phase shifts (``sigma``, default
      :data:`SIGMA` = 0.75 px; only level 0 gets more than
      :data:`MIN_SMOOTHING` samples of it) cuts the out-of-band error by a
      third for a 2.5% lower gain: 9.54 and out of band 1.019 (without it
      9.78 and 1.030).
Riesz transform
    Exact, in the frequency domain: ``R = -i omega / |omega|`` on the level's
    spectrum, computed with the band itself in one batched inverse real FFT
    (``b, r1, r2``).  The paper's 3-tap ``[0.5, 0, -0.5]`` approximation
    (response ``sin(omega)``) is accurate only near pi/2 of a level's
    sampling, while here each level spans ``[pi/4, pi]`` of its own grid;
    in the frequency domain the exact transform costs the same.

Processing (as :func:`daskmag.kernels.phase.magnify_block`)
    Per level, the quaternionic phase *increments* between consecutive
    frames, ``log(q[t + 1] conj(q[t]))`` (its ``k`` part dropped, as the
    paper), give ``phi cos theta`` and ``phi sin theta``; these two
    orientation-invariant series (``(phi, theta)`` and ``(-phi, theta + pi)``
    are the same quaternion) are band-passed from their increments with
    :meth:`daskmag.kernels.temporal.TemporalFilter.phase` (no reference frame, so
    any time chunking gives the same result; the clip's ends are continued
    by linear prediction), multiplied by ``alpha`` (or attenuate-other with
    ``reference``), smoothed with an amplitude-weighted Gaussian (as the
    paper), and each coefficient is
    phase-shifted: ``Re(q exp(n m))``.  Only the change ``Re(q exp(n m)) -
    b`` is collapsed and added to the luminance (YIQ's Y), so ``alpha = 0``
    returns the input exactly.

Measured (``benchmarks/riesz_speed.py``, one thread, guitar.mp4 432x192, a
200-frame block, FIR 72-92 Hz at 600 fps, CPU time, medians of 5 alternating
runs on the shared 2-core machine under load): 7.0 ms per output frame
against the octave kernel's 21.8 inside a clip (3.1 times faster), 5.3
against 17.4 at a clip's ends (3.3 times); the former layout (level 0 up
to pi/2, no smoothing) 4.0 and 3.6 times, for a texture gain of 8.34.
Gains (``benchmarks/riesz_gain.py``, alpha 10, the tests' clips): texture
9.54 (octave kernel 10.50, so 0.91 of it), out of band 1.019; grating
10.98, out of band 1.019.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from .angle import atan2
from .backend import fft_module, into, namespace, ndimage_module, scratch_arrays
from .colourspace import add_luma, luma
from .phase import phase_shift as _shift_rows  # the octave pyramid's strips; the two series carried along
from .temporal import FIRFilter, TemporalFilter

#: Finest octaves of the octave pyramid without a level of their own (see the module docstring).
SKIP_OCTAVES = 1
#: The finest processed level reaches ``REACH / 2**SKIP_OCTAVES`` of Nyquist (7/12 pi) ...
REACH = 7 / 6
#: ... with an upper raised-cosine edge this many octaves wide.
TOP_EDGE = 0.125
#: Default amplitude-weighted smoothing of the phase shifts, pixels of the frame.
SIGMA = 0.75
#: Levels where the smoothing is under this many of their samples are not smoothed.
MIN_SMOOTHING = 0.25
#: Bytes of the per-batch temporaries of spatial analysis and synthesis.
BATCH_BYTES = 64 * 2**20
#: Keep the core frames' Riesz triples between passes (and the increments in
#: float32) up to this size.
KEEP_BYTES = 512 * 2**20


# --------------------------------------------------------------------------- filters


def default_levels(shape: tuple[int, int], skip_octaves: int = SKIP_OCTAVES) -> int:
    """Processed levels on frames of ``shape``: the octave pyramid's octaves,
    ``floor(log2(min(H, W))) - 2``, less the ``skip_octaves`` finest (at least 1),
    so that the low-pass residual is the octave pyramid's."""
    octaves = max(1, int(math.floor(math.log2(min(shape)))) - 2)
    return max(1, octaves - skip_octaves)


@dataclass(frozen=True)
class RieszLevel:
    """One level's box of the half (``rfft2``) spectrum and its filters.

    Attributes
    ----------
    shape : (h, w)
        The level's sampling grid (about ``(H, W) / 2**(k + 1)``).
    rows : int or None
        ``h // 2``: the box takes the first ``h // 2`` and the last
        ``h - h // 2`` rows of the frame's spectrum; None: all rows (no crop).
    cols : int
        Columns ``[0, cols)`` of the half spectrum (``w // 2 + 1``).
    analysis : complex64 array (3, h, w // 2 + 1)
        Band filter, and band filter times ``-i omega_x / |omega|`` and
        ``-i omega_y / |omega|`` (the Riesz transform), times ``h w / (H W)``:
        the inverse FFT on the small grid then gives the full-resolution
        band's values.  (float32 (1, h, w // 2 + 1) for the low-pass residual.)
    synthesis : float32 array (h, w // 2 + 1)
        Band filter times ``H W / (h w)``.
    """

    shape: tuple[int, int]
    rows: int | None
    cols: int
    analysis: np.ndarray
    synthesis: np.ndarray


@dataclass(frozen=True)
class RieszFilters:
    """All filters of a Riesz pyramid on one frame size (half-spectrum layout)."""

    shape: tuple[int, int]
    highpass: np.ndarray
    levels: tuple[RieszLevel, ...]
    lowpass: RieszLevel


def _radial(radius, cutoff, width: float = 1.0):
    """Raised-cosine (log2 frequency, ``width`` octaves) high/low masks below ``cutoff``;
    their squares sum to one (as :func:`daskmag.kernels.pyramid._radial_pair`)."""
    with np.errstate(divide="ignore"):
        log_rad = np.clip(np.log2(radius / cutoff) / width, -1.0, 0.0)
    high = np.abs(np.cos(log_rad * np.pi / 2.0))
    low = np.sqrt(np.clip(1.0 - high**2, 0.0, None))
    return high, low


def _box_size(n: int, step: float) -> int:
    """Samples along an axis of ``n`` pixels for a band limited to ``pi / step``:
    even, holding every frequency up to ``n / (2 step)`` bins, and a product of
    2, 3, 5 and 7 (fast FFTs; a larger box only samples the band more finely),
    at most ``n``."""
    size = 2 * math.ceil(n / (2 * step) - 1e-9)
    while size < n and not _smooth(size):
        size += 2
    return n if size >= n else int(size)


def _smooth(n: int) -> bool:
    """``n`` has no prime factor above 7."""
    for p in (2, 3, 5, 7):
        while n % p == 0:
            n //= p
    return n == 1


def _crop(array, level: RieszLevel):
    """The level's box (..., h, w//2+1) of a half spectrum (..., H, W//2+1): a copy."""
    xp = namespace(array)
    cols = array[..., : level.cols]
    if level.rows is None:
        return xp.asarray(cols, copy=True)
    h = level.shape[0]
    out = xp.empty(array.shape[:-2] + (h, level.cols), dtype=array.dtype)
    out[..., : level.rows, :] = cols[..., : level.rows, :]
    out[..., level.rows :, :] = cols[..., array.shape[-2] - (h - level.rows) :, :]
    return out


def _add_box(out, box, level: RieszLevel):
    """Add a level's box into a half spectrum, in place (the inverse of :func:`_crop`)."""
    if level.rows is None:
        out[..., :, : level.cols] += box
        return out
    h = level.shape[0]
    out[..., : level.rows, : level.cols] += box[..., : level.rows, :]
    out[..., out.shape[-2] - (h - level.rows) :, : level.cols] += box[..., level.rows :, :]
    return out


def _make_level(filter_full, shape, step, riesz: bool) -> RieszLevel:
    height, width = shape
    h, w = _box_size(height, step), _box_size(width, step)
    rows = None if h == height else h // 2
    cols = w // 2 + 1
    grid = np.broadcast_to(filter_full, (height, width // 2 + 1))
    if rows is None:
        box = grid[:, :cols]
    else:
        box = np.concatenate([grid[:rows, :cols], grid[height - (h - rows) :, :cols]])
    if rows is not None:
        box = box.copy()
        box[rows] = 0.0  # the small grid's Nyquist row (the filter is zero there anyway)
    if w < width:
        box = box.copy()
        box[:, -1] = 0.0  # and its Nyquist column
    scale = (h * w) / (height * width)
    if riesz:
        fy = np.fft.fftfreq(h)[:, None] * np.ones((1, cols))
        fx = np.fft.rfftfreq(w)[None, :] * np.ones((h, 1))
        norm = np.hypot(fx, fy)
        norm[0, 0] = 1.0
        # fy, fx in cycles per sample of the small grid: same direction as the full grid's
        analysis = (np.stack([box, -1j * box * fx / norm, -1j * box * fy / norm]) * scale).astype(np.complex64)
    else:
        analysis = (box[None] * scale).astype(np.float32)
    return RieszLevel((h, w), rows, cols, analysis, (box / scale).astype(np.float32))


def top_cutoff(skip_octaves: int = SKIP_OCTAVES, reach: float | None = None) -> float:
    """Upper cut-off of the finest processed level, as a fraction of Nyquist:
    ``reach``, or by default ``min(1, REACH / 2**skip_octaves)``."""
    if reach is None:
        return min(1.0, REACH * 2.0 ** -int(skip_octaves))
    return float(reach)


@functools.lru_cache(maxsize=32)
def riesz_filters(shape: tuple[int, int], levels: int | None = None,
                  skip_octaves: int = SKIP_OCTAVES, reach: float | None = None,
                  edge: float = TOP_EDGE) -> RieszFilters:
    """The Riesz pyramid's filters on frames of ``shape`` (built once per size).

    Parameters
    ----------
    shape : (H, W)
    levels : int, optional
        Processed levels; default :func:`default_levels`.  With ``s =
        skip_octaves``, level ``k >= 1`` is the octave ``[pi / 2**(k+s+2),
        pi / 2**(k+s)]`` (raised-cosine edges, peak at ``pi /
        2**(k+s+1)``), sampled every ``2**(k+s)`` pixels: the octave
        steerable pyramid's radial band ``k + s``.  Level 0 has the same
        lower edge (``pi / 2**(s+2)`` to ``pi / 2**(s+1)``) but reaches up to
        ``reach * pi``, with an ``edge``-octave raised-cosine upper edge, and
        is sampled as that allows (every ``1 / reach`` pixels, rounded to an
        even number of samples).
    skip_octaves : int
        The octave pyramid's finest octaves that get no level of their own
        (0: the steerable pyramid's levels).
    reach : float, optional
        Level 0's upper cut-off as a fraction of Nyquist, in ``(0, 1]``;
        default :func:`top_cutoff` (``7/12`` with ``s = 1``).  ``2**-s`` with
        ``edge = 1`` is the octave pyramid's band ``s``.
    edge : float
        Width in octaves of level 0's upper raised-cosine edge, in ``(0, 1]``;
        the high-pass residual above it is its complement (squares sum to
        one), so the pyramid stays a tight frame.

    Returns
    -------
    RieszFilters
        ``highpass``: float32 (H, W//2+1) mask of the residual above the
        levels; ``levels``; ``lowpass``: the residual below them, on its box.
    """
    height, width = (int(n) for n in shape)
    skip_octaves = int(skip_octaves)
    levels = default_levels((height, width), skip_octaves) if levels is None else int(levels)
    if levels < 1:
        raise ValueError(f"levels must be at least 1, got {levels}")
    if skip_octaves < 0:
        raise ValueError(f"skip_octaves must be at least 0, got {skip_octaves}")
    reach, edge = top_cutoff(skip_octaves, reach), float(edge)
    if not 0.0 < edge <= 1.0:
        raise ValueError(f"edge must be in (0, 1] octaves, got {edge:g}")
    if not 2.0 ** -(skip_octaves + 1) <= reach * 2.0 ** -edge and reach <= 1.0:
        raise ValueError(f"reach must be at most 1 and its edge above pi/2**{skip_octaves + 1}, got {reach:g}")
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    radius = 2.0 * np.hypot(fx, fy)  # Nyquist = 1, as daskmag.kernels.pyramid
    # the residual above the levels
    _, low = _radial(radius, reach, edge)
    highpass = np.sqrt(np.clip(1.0 - low**2, 0.0, None))
    out = []
    for k in range(levels):
        octave = k + skip_octaves
        high, next_low = _radial(radius, 2.0 ** -(octave + 1))
        # band = low-pass at this octave's cut-off times high-pass at the next
        step = 1.0 / reach if k == 0 else 2**octave
        out.append(_make_level(low * high, (height, width), step, riesz=True))
        low = next_low
    lowpass = _make_level(low, (height, width), 2 ** (levels + skip_octaves), riesz=False)
    return RieszFilters((height, width), highpass.astype(np.float32), tuple(out), lowpass)


# --------------------------------------------------------------------------- analysis / synthesis


def half_spectrum(image, cols: int | None = None):
    """``rfft2`` over the last two axes of real image(s), complex64.

    With ``cols``, only the half spectrum's first ``cols`` columns (..., H, cols):
    the transform along the rows is then taken of those columns only.
    """
    xp, fft = namespace(image), fft_module(image)
    image = xp.astype(image, xp.float32, copy=False)
    if cols is None:
        return fft.rfft2(image)
    return fft.fft(fft.rfft(image, axis=-1)[..., :cols], axis=-2, overwrite_x=True)


def image_from_half_spectrum(spectrum, shape):
    """Inverse of :func:`half_spectrum`: real image(s) (..., H, W) from the first
    columns (..., H, cols) of a half spectrum, the others being zero."""
    fft = fft_module(spectrum)
    return fft.irfft(fft.ifft(spectrum, axis=-2, overwrite_x=True), n=shape[-1], axis=-1)


def analyse_level(spectrum, level: RieszLevel):
    """A level's band and its Riesz transform from a half spectrum.

    Parameters
    ----------
    spectrum : complex array (..., H, c)
        :func:`half_spectrum` of the frame(s), at least its first
        ``level.cols`` columns.
    level : RieszLevel

    Returns
    -------
    float32 array (3, ..., h, w)
        ``b, r1, r2``: the band, and its Riesz transform
        ``F^-1[-i omega_x / |omega| B]`` (horizontal), ``F^-1[-i omega_y / |omega| B]``
        (vertical), on the level's grid.  For ``b = A cos(omega . x + phi)``,
        ``(r1, r2) = A sin(omega . x + phi) omega / |omega|``.
    """
    xp, fft = namespace(spectrum), fft_module(spectrum)
    box = _crop(spectrum, level)
    weights = xp.reshape(xp.asarray(level.analysis), (3,) + (1,) * (box.ndim - 2) + level.analysis.shape[1:])
    return fft.irfft2(xp.expand_dims(box, axis=0) * weights, s=level.shape, overwrite_x=True)


def synthesise_level_into(out, coefficients, level: RieszLevel):
    """Add a level's real coefficients (..., h, w) into a half spectrum (..., H, c),
    ``c >= level.cols``."""
    xp, fft = namespace(coefficients), fft_module(coefficients)
    box = fft.rfft2(coefficients)
    box *= xp.asarray(level.synthesis)
    return _add_box(out, box, level)


def decompose(image, levels: int | None = None, skip_octaves: int = SKIP_OCTAVES,
              reach: float | None = None, edge: float = TOP_EDGE):
    """Decompose real image(s) into the Riesz pyramid.

    Parameters
    ----------
    image : float array (..., H, W), NumPy or CuPy
    levels, skip_octaves, reach, edge : optional
        As :func:`riesz_filters`.

    Returns
    -------
    dict
        ``"highpass"``: float32 (..., H, W) residual; ``"levels"``: list of
        float32 arrays (3, ..., h_k, w_k), each a level's ``b, r1, r2``
        (:func:`analyse_level`); ``"lowpass"``: float32 (..., h, w) residual.
    """
    xp, fft = namespace(image), fft_module(image)
    shape = image.shape[-2:]
    filters = riesz_filters(tuple(shape), levels, skip_octaves, reach, edge)
    spectrum = half_spectrum(image)
    highpass = fft.irfft2(spectrum * xp.asarray(filters.highpass), s=shape)
    bands = [analyse_level(spectrum, level) for level in filters.levels]
    lowpass = fft.irfft2(_crop(spectrum, filters.lowpass) * xp.asarray(filters.lowpass.analysis[0]),
                         s=filters.lowpass.shape)
    return {"highpass": xp.astype(highpass, xp.float32), "levels": bands, "lowpass": xp.astype(lowpass, xp.float32)}


def collapse(pyramid, levels: int | None = None, skip_octaves: int = SKIP_OCTAVES,
              reach: float | None = None, edge: float = TOP_EDGE):
    """Rebuild the image(s) from :func:`decompose` (only the bands ``b`` are used).

    Returns
    -------
    float32 array (..., H, W)
    """
    highpass = pyramid["highpass"]
    xp, fft = namespace(highpass), fft_module(highpass)
    shape = highpass.shape[-2:]
    filters = riesz_filters(tuple(shape), levels, skip_octaves, reach, edge)
    spectrum = fft.rfft2(highpass) * xp.asarray(filters.highpass)
    for triple, level in zip(pyramid["levels"], filters.levels):
        synthesise_level_into(spectrum, triple[0, ...], level)
    synthesise_level_into(spectrum, pyramid["lowpass"], filters.lowpass)
    return xp.astype(fft.irfft2(spectrum, s=shape), xp.float32)


def amplitude_phase_orientation(triple):
    """Per-pixel amplitude, quaternionic phase and orientation of a level.

    Parameters
    ----------
    triple : float array (3, ...)
        ``b, r1, r2`` (:func:`analyse_level`).

    Returns
    -------
    amplitude, phase, orientation : float32 arrays (...)
        ``A = sqrt(b**2 + r1**2 + r2**2)``, ``phi = atan2(|r|, b)`` in
        ``[0, pi]`` and ``theta = atan2(r2, r1)`` in radians (0: intensity
        varies horizontally, pi/2: vertically), with ``b = A cos phi``,
        ``(r1, r2) = A sin phi (cos theta, sin theta)``.  ``(phi, theta)``
        and ``(-phi, theta + pi)`` describe the same coefficient; the
        ``phi cos theta, phi sin theta`` that the kernel filters do not
        depend on the choice.
    """
    xp = namespace(triple)
    b, r1, r2 = triple[0, ...], triple[1, ...], triple[2, ...]
    riesz = xp.hypot(r1, r2)
    return xp.sqrt(b * b + riesz * riesz), xp.atan2(riesz, b), xp.atan2(r2, r1)


#: Norms below this had squares under float32's smallest normal number (1.18e-38).
_SQUARE_UNDERFLOW = 1.1e-19


def _norm(x, y):
    """``sqrt(x*x + y*y)``, not hypot: NumPy's float32 hypot is a C library call per
    element (6.7 ns here; these passes about 2 ns).  Squares under
    :data:`_SQUARE_UNDERFLOW` squared lose their precision (the caller decides)."""
    norm = x * x
    norm += y * y
    return into(norm, "sqrt", norm)


def quaternion_increments(current, previous, out):
    """Quaternionic phase change ``log(q_current conj(q_previous))``, its ``i, j`` parts.

    As the paper's ``ComputePhaseDifferenceAndAmplitude``: with
    ``p = q_current conj(q_previous)`` (its ``k`` part dropped), the phase
    difference ``atan2(|p_ij|, p_real)`` (in ``[0, pi]``) along the unit
    orientation ``p_ij / |p_ij|``.

    Parameters
    ----------
    current, previous : float32 arrays (3, n, h, w)
        ``b, r1, r2`` of frames ``t + 1`` and ``t``.
    out : float array (n, 2, h, w)
        Receives ``phi cos theta`` and ``phi sin theta`` (radians).
    """
    xp = namespace(current)
    b1, x1, y1 = current[0, ...], current[1, ...], current[2, ...]
    b0, x0, y0 = previous[0, ...], previous[1, ...], previous[2, ...]
    real = b1 * b0
    real += x1 * x0
    real += y1 * y0
    qx = b0 * x1
    qx -= b1 * x0
    qy = b0 * y1
    qy -= b1 * y0
    # where the squares underflow (|p_ij| under 1e-19, hardly ever for grey levels)
    # hypot takes over: a zero norm there would turn a phase of pi into pi / tiny times p_ij
    norm = _norm(qx, qy)
    small = norm < _SQUARE_UNDERFLOW
    if bool(xp.any(small)):
        norm[small] = xp.hypot(qx[small], qy[small])
    phase = atan2(norm, real)  # the polynomial one for NumPy float32 (daskmag.kernels.angle)
    norm += xp.finfo(xp.float32).smallest_normal  # p_ij = 0: no change, and 0 / tiny = 0
    phase /= norm
    into(out[:, 0, ...], "multiply", qx, phase)
    into(out[:, 1, ...], "multiply", qy, phase)
    return out


def _batch_frames(height: int, width: int) -> int:
    """Frames analysed together (temporaries of about 48 bytes per pixel per frame)."""
    return int(max(1, min(32, BATCH_BYTES // (48 * height * width))))


# --------------------------------------------------------------------------- the three passes


def level_increments(rgb, filters: RieszFilters, increments, keep=None, kept=None):
    """Pass 1: every level's quaternionic phase increments over a block of frames.

    Parameters
    ----------
    rgb : uint8 array (T, H, W, 3)
    filters : RieszFilters
    increments : list of float arrays (T - 1, 2, h_k, w_k)
        Filled in place (:func:`quaternion_increments`).
    keep : (start, stop), optional
        Also store the Riesz triples of frames ``[start, stop)`` in ``kept``
        (list of float32 arrays (3, stop - start, h_k, w_k)).
    """
    xp = namespace(rgb)
    n_frames, height, width, _ = rgb.shape
    previous = [None] * len(filters.levels)
    batch = _batch_frames(height, width)
    for t0 in range(0, n_frames, batch):
        t1 = min(t0 + batch, n_frames)
        spectrum = half_spectrum(luma(rgb[t0:t1, ...]), filters.levels[0].cols)
        for j, level in enumerate(filters.levels):
            triple = analyse_level(spectrum, level)  # (3, n, h, w)
            if previous[j] is not None:
                quaternion_increments(triple[:, :1, ...], previous[j], out=increments[j][t0 - 1 : t0, ...])
            if t1 - t0 > 1:
                quaternion_increments(triple[:, 1:, ...], triple[:, :-1, ...], out=increments[j][t0 : t1 - 1, ...])
            previous[j] = xp.asarray(triple[:, -1:, ...], copy=True)
            if kept is not None:
                lo, hi = max(t0, keep[0]), min(t1, keep[1])
                if lo < hi:
                    kept[j][:, lo - keep[0] : hi - keep[0], ...] = triple[:, lo - t0 : hi - t0, ...]
    return increments


def phase_shift(increments, temporal: TemporalFilter, alpha: float, start: int, stop: int,
                pad_before: int = 0, pad_after: int = 0, reference: TemporalFilter | None = None,
                out=None):
    """Pass 2: a level's phase change (``phi cos theta, phi sin theta``) at frames ``[start, stop)``.

    ``alpha * bandpass``, or with ``reference`` ``(1 + alpha) * bandpass - (phase - lowpass)``,
    as :func:`daskmag.kernels.phase.phase_shift`, on both series.

    Parameters
    ----------
    increments : float array (T - 1, 2, h, w)
    out : array (stop - start, 2, h, w), optional
        May be ``increments_buffer[:stop - start]`` (each strip of rows is
        filtered whole before it is written).

    Returns
    -------
    array (stop - start, 2, h, w), of the increments' dtype
    """
    return _shift_rows(increments, temporal, alpha, start, stop, pad_before, pad_after, reference, out)


def smooth_shift(shift, amplitude, sigma):
    """Amplitude-weighted Gaussian blur ``G*(shift A) / G*A`` of both series (wrapping).

    Parameters
    ----------
    shift : float array (n, 2, h, w)
    amplitude : float32 array (n, h, w)
    sigma : (float, float)
        Along rows and columns, in the level's samples; the Gaussian is cut
        at 3 sigma (the default's 0.5 samples: 3 taps).

    Returns
    -------
    float32 array (n, 2, h, w)
    """
    xp, ndimage = namespace(amplitude), ndimage_module(amplitude)
    sigmas = (0.0, 0.0) + tuple(sigma)
    weighted = xp.astype(shift, xp.float32, copy=False) * xp.expand_dims(amplitude, axis=1)
    weighted = ndimage.gaussian_filter(weighted, sigmas, mode="wrap", truncate=3.0)
    weight = ndimage.gaussian_filter(amplitude, sigmas[1:], mode="wrap", truncate=3.0)
    weight += xp.finfo(xp.float32).smallest_normal
    weighted /= xp.expand_dims(weight, axis=1)
    return weighted


def shifted_change(triple, shift):
    """``Re(q exp(n m)) - b``: a level's change when its phase moves by ``m``.

    With ``m = (m_c, m_s) = |m| (cos theta, sin theta)``, the paper's
    ``PhaseShiftCoefficientRealPart`` less the band itself:
    ``(cos|m| - 1) b - sin|m| / |m| (m_c r1 + m_s r2)``, the first term as
    ``-2 sin(|m|/2)**2`` (no cancellation for small ``m``).

    Parameters
    ----------
    triple : float32 array (3, n, h, w)
    shift : float array (n, 2, h, w)

    Returns
    -------
    float32 array (n, h, w); exactly 0 where ``m`` is 0.
    """
    xp = namespace(triple)
    b, r1, r2 = triple[0, ...], triple[1, ...], triple[2, ...]
    mc = xp.astype(shift[:, 0, ...], xp.float32, copy=False)
    ms = xp.astype(shift[:, 1, ...], xp.float32, copy=False)
    half = _norm(mc, ms)  # where its squares underflow (|m| < 1e-19) 0, as are sin(half) and the result
    dot = mc * r1
    dot += ms * r2
    dot /= half + xp.finfo(xp.float32).smallest_normal  # (m . r) / |m|, 0 where m = 0
    half *= 0.5
    s = xp.sin(half)
    c = xp.cos(half)
    c *= s  # sin|m| / 2
    c *= dot
    s *= s
    s *= b  # sin(|m|/2)**2 b
    s += c
    s *= -2.0
    return s


def apply_phase_shifts(rgb, phase_shifts, filters: RieszFilters, kept=None, sigma: float = 0.0):
    """Pass 3: shift every level's phase and add the resulting luminance change.

    Parameters
    ----------
    rgb : uint8 array (T, H, W, 3)
        The frames to change (the block's core).
    phase_shifts : list of arrays (T, 2, h_k, w_k)
    kept : list of float32 arrays (3, T, h_k, w_k), optional
        The frames' Riesz triples, if pass 1 kept them; else recomputed.
    sigma : float
        Amplitude-weighted smoothing (:func:`smooth_shift`) over this many
        pixels of the frame (scaled to each level's sampling); 0: none.
        Levels where it is under :data:`MIN_SMOOTHING` samples are not
        smoothed (a Gaussian of 0.25 samples weighs its neighbours 3e-4).

    Returns
    -------
    uint8 array (T, H, W, 3)
    """
    xp = namespace(rgb)
    n_frames, height, width, _ = rgb.shape
    out = xp.empty_like(rgb)
    batch = _batch_frames(height, width)
    for t0 in range(0, n_frames, batch):
        t1 = min(t0 + batch, n_frames)
        cols = filters.levels[0].cols  # the finest level's: no other column is changed
        spectrum = None if kept is not None else half_spectrum(luma(rgb[t0:t1, ...]), cols)
        change = xp.zeros((t1 - t0, height, cols), dtype=xp.complex64)
        for j, level in enumerate(filters.levels):
            triple = kept[j][:, t0:t1, ...] if kept is not None else analyse_level(spectrum, level)
            shift = phase_shifts[j][t0:t1, ...]
            level_sigma = (sigma * level.shape[0] / height, sigma * level.shape[1] / width)
            if max(level_sigma) >= MIN_SMOOTHING:
                amplitude = triple[0, ...] * triple[0, ...]
                amplitude += triple[1, ...] * triple[1, ...]
                amplitude += triple[2, ...] * triple[2, ...]
                shift = smooth_shift(shift, into(amplitude, "sqrt", amplitude), level_sigma)
            synthesise_level_into(change, shifted_change(triple, shift), level)
        delta = image_from_half_spectrum(change, (height, width))
        out[t0:t1, ...] = add_luma(rgb[t0:t1, ...], delta)
    return out


def magnify_block_riesz(rgb, temporal, alpha: float, start: int = 0, stop: int | None = None,
                        pad_before: int = 0, pad_after: int = 0, sigma: float | None = None,
                        reference: TemporalFilter | None = None, levels: int | None = None,
                        skip_octaves: int = SKIP_OCTAVES, keep_bytes: int = KEEP_BYTES,
                        reach: float | None = None, edge: float = TOP_EDGE):
    """Magnify motion in a block of RGB frames with a Riesz pyramid; return frames ``[start, stop)``.

    The same contract as :func:`daskmag.kernels.phase.magnify_block` (Wadhwa et al.,
    ICCP 2014, with this project's increment-based temporal filtering; see
    the module docstring).

    Parameters
    ----------
    rgb : uint8 array (T, H, W, 3)
        The block's frames, temporal halo included (NumPy or CuPy).
    temporal : TemporalFilter or ndarray
        The temporal band-pass (:func:`daskmag.kernels.temporal.make_filter`), or
        symmetric FIR taps (odd length, zero DC gain).
    alpha : float
        Magnification: in-band motion becomes ``1 + alpha`` times as large.
    start, stop : int
        Frames of the block to produce; the filter's ``halo_before`` frames
        before and ``halo_after`` after must be present in ``rgb`` or
        supplied by ``pad_before`` / ``pad_after`` (linear prediction at the
        clip's ends).
    sigma : float, optional
        Amplitude-weighted Gaussian smoothing of the phase shifts, in pixels
        of the frame (:func:`apply_phase_shifts`); 0: none; default
        :data:`SIGMA`, which the Riesz phase needs on broadband texture (see
        the module docstring).
    reference : TemporalFilter, optional
        Remove motion outside the band (``--attenuate-other``,
        :func:`daskmag.kernels.temporal.reference_highpass`).
    levels : int, optional
        Processed levels (octaves); default :func:`default_levels`.
    skip_octaves, reach, edge :
        The levels (:func:`riesz_filters`).  The default level 0 reaches
        ``7/12 pi``; ``skip_octaves=0`` gives ``[pi/4, pi]`` a level of its
        own, at full resolution: four times the coefficients, about as slow
        as the octave kernel (see the module docstring for the gains).
    keep_bytes : int
        Keep the core frames' Riesz triples between passes when they fit in
        this many bytes, else recompute them; store the increments as
        float32 when they fit, else float16.

    Returns
    -------
    uint8 array (stop - start, H, W, 3)
        Only the luminance changes; ``alpha = 0`` (without ``reference``)
        returns ``rgb[start:stop]`` exactly.

    Raises
    ------
    ValueError
        ``rgb`` is not (T, H, W, 3) uint8, ``levels`` < 1, or the temporal
        filter lacks halo frames (:meth:`TemporalFilter.phase`).
    """
    xp = namespace(rgb)
    if rgb.ndim != 4 or rgb.shape[-1] != 3 or rgb.dtype != xp.uint8:
        raise ValueError(f"expected uint8 RGB frames (T, H, W, 3), got {rgb.dtype} {rgb.shape}")
    if not isinstance(temporal, TemporalFilter):
        temporal = FIRFilter(temporal)
    stop = rgb.shape[0] if stop is None else stop
    n_frames, height, width, _ = rgb.shape
    filters = riesz_filters((height, width), levels, skip_octaves, reach, edge)
    count = sum(level.shape[0] * level.shape[1] for level in filters.levels)
    keep = (start, stop) if (stop - start) * count * 12 <= keep_bytes else None
    dtype = "float32" if n_frames * count * 8 <= keep_bytes else "float16"
    # Working memory reused between calls (daskmag._backend.scratch_arrays).
    # Each level's buffer has room for T frames: T - 1 increments, then the
    # phase shifts of the (at most T) output frames, written over them.
    specs = [((n_frames, 2) + level.shape, dtype) for level in filters.levels]
    if keep is not None:
        specs += [((3, stop - start) + level.shape, "float32") for level in filters.levels]
    arrays = scratch_arrays(xp, specs)
    buffers = arrays[: len(filters.levels)]
    kept = arrays[len(filters.levels):] if keep is not None else None
    increments = [buffer[: n_frames - 1, ...] for buffer in buffers]
    level_increments(rgb, filters, increments, keep, kept)
    shifts = [phase_shift(increments[j], temporal, alpha, start, stop, pad_before, pad_after,
                          reference, out=buffers[j][: stop - start, ...])
              for j in range(len(buffers))]
    sigma = SIGMA if sigma is None else float(sigma)
    return apply_phase_shifts(rgb[start:stop, ...], shifts, filters, kept, sigma)
