"""Phase-based motion magnification of one time block (pure array kernel).

Wadhwa, Rubinstein, Durand & Freeman, "Phase-Based Video Motion Processing",
SIGGRAPH 2013.  For every complex pyramid band the local phase is followed
through time, band-passed, multiplied by ``alpha`` and added back; in-band
motion then becomes ``1 + alpha`` times as large (MIT's convention).

Phase is tracked by its frame-to-frame increments
``angle(c[t + 1] * conj(c[t]))``, each well inside (-pi, pi] for the small
motions this method is for, and the band-pass is applied to the increments
directly (:func:`daskmag.kernels.temporal.filter_increments`).  That is the filter of
the unwrapped phase, so a slow drift of many radians over minutes of footage
never wraps into a spike, and no reference frame is needed: the taps have
exactly zero DC gain, so every time block gives the same filtered phase
whatever the chunking.  Other temporal filters (ideal, Butterworth, MIT's
difference of IIRs, a sliding window) sit behind the same interface,
:class:`daskmag.kernels.temporal.TemporalFilter`, which also says how many frames
of halo a block needs.  Pass 3 may smooth each band's phase shift spatially
(MIT's ``sigma``) before it is applied.
"""

from __future__ import annotations

import math

import numpy as np

from .angle import product_angle
from .backend import assignable, dtype_named, is_numpy, namespace, ndimage_module, scratch_arrays
from .compiled import loops
from .pyramid import PyramidSpec, add_luma_of_spectrum, analyse, luma_spectrum, pyramid_filters, synthesise_into
from .temporal import FIRFilter, TemporalFilter, _as_pieces, _length, sample_range

#: Bytes of one working strip of a band's phase (over all frames of the
#: block); bounds the temporaries of the temporal filter.
STRIP_BYTES = 16 * 2**20
#: Bytes of the per-batch temporaries of spatial analysis and synthesis.
BATCH_BYTES = 64 * 2**20
#: Keep the core frames' complex coefficients between passes up to this size.
KEEP_BYTES = 512 * 2**20


def phase_increments(coefficients, out=None):
    """Frame-to-frame phase change of complex coefficients along axis 0.

    Parameters
    ----------
    coefficients : complex64 array (T, ...)
    out : float32 array (T - 1, ...), optional
        Where to write the result.

    Returns
    -------
    float32 array (T - 1, ...)
        ``angle(c[t + 1] * conj(c[t]))``, in [-pi, pi] (-pi only for a
        product on the negative real axis with a zero of negative sign).

    Notes
    -----
    :func:`daskmag.kernels.angle.product_angle`: for NumPy complex64, the
    product and its arctangent block by block in cache, with a polynomial
    ``atan2`` that NumPy vectorises (about 3x faster than ``np.angle`` of the
    product on an AVX2 machine, within 4e-7 rad).
    """
    return product_angle(coefficients[1:, ...], coefficients[:-1, ...], out=out)


def _batch_frames(height: int, width: int) -> int:
    """Frames analysed together: enough for efficient batched FFTs, few enough
    that the batch's temporaries (~40 bytes per pixel per frame) stay near
    :data:`BATCH_BYTES`."""
    return int(max(1, min(32, BATCH_BYTES // (40 * height * width))))


def band_increments(rgb, spec: PyramidSpec, keep: tuple[int, int] | None = None, dtype="float16",
                    out=None, before=None):
    """Pass 1: every band's phase increments over a block of frames.

    Frames are analysed in small batches, so no full-block spectrum is ever
    held; the last coefficients of each batch carry over to the next.

    Parameters
    ----------
    rgb : uint8 array (T, H, W, 3)
    spec : PyramidSpec
    keep : (start, stop), optional
        Also return the complex coefficients of frames ``[start, stop)``.
    dtype : str
        Storage of the increments: ``"float16"`` keeps a 0.1 rad increment to
        5e-5 rad and halves the block's largest store; ``"float32"`` spares
        the conversions where memory allows.
    out : (increments, kept), optional
        Arrays to fill instead of allocating them (as returned, ``kept`` None
        when ``keep`` is).
    before : array (H, W, C), optional
        The frame before ``rgb[0]``: then the increments start with the step
        from it into ``rgb[0]`` (T of them).

    Returns
    -------
    increments : list of arrays (T - 1, h_b, w_b), or (T, h_b, w_b) with ``before``
        One per band: ``angle(c[t + 1] conj(c[t]))``.
    kept : list of complex64 arrays (stop - start, h_b, w_b) or None
    """
    xp = namespace(rgb)
    n_frames, height, width, _ = rgb.shape
    bands = pyramid_filters((height, width), spec).bands
    if out is not None:
        increments, kept = out
    else:
        increments = [xp.empty((n_frames - (before is None),) + band.shape, dtype=dtype_named(xp, dtype))
                      for band in bands]
        kept = None
        if keep is not None:
            kept = [xp.empty((keep[1] - keep[0],) + band.shape, dtype=xp.complex64) for band in bands]
    previous = [None] * len(bands)
    if before is not None:  # its coefficients carry into the first step, as a batch's last frame does
        spectrum = luma_spectrum(xp.expand_dims(before, axis=0))
        previous = [analyse(spectrum, band)[0, ...] for band in bands]
    shift = 0 if before is None else 1  # row of the step into frame t: t - 1, or t with ``before``
    batch = _batch_frames(height, width)
    for t0 in range(0, n_frames, batch):
        t1 = min(t0 + batch, n_frames)
        spectrum = luma_spectrum(rgb[t0:t1, ...])
        for j, band in enumerate(bands):
            inside = kept is not None and keep[0] <= t0 and t1 <= keep[1]
            coefficients = analyse(spectrum, band,
                                   out=kept[j][t0 - keep[0] : t1 - keep[0], ...] if inside else None)
            if previous[j] is not None:  # the step from the previous batch's last frame
                # as views, not a stacked copy of the two frames: at 1080p a
                # batch is one frame, so this is every frame's step (2% of a run)
                product_angle(coefficients[:1, ...], xp.expand_dims(previous[j], axis=0),
                              out=increments[j][t0 - 1 + shift : t0 + shift, ...])
            phase_increments(coefficients, out=increments[j][t0 + shift : t1 - 1 + shift, ...])
            previous[j] = coefficients[-1, ...]
            if kept is not None and not inside:
                lo, hi = max(t0, keep[0]), min(t1, keep[1])
                if lo < hi:
                    kept[j][lo - keep[0] : hi - keep[0], ...] = coefficients[lo - t0 : hi - t0, ...]
    return increments, kept


def phase_shift(increments, temporal: TemporalFilter, alpha: float, start: int, stop: int,
                pad_before: int = 0, pad_after: int = 0, reference: TemporalFilter | None = None,
                out=None):
    """Pass 2: a band's phase change at frames ``[start, stop)``.

    ``alpha * bandpass(phase)``, or with a ``reference`` (``--attenuate-other``)
    ``(1 + alpha) * bandpass(phase) - (phase - lowpass(phase))``: the new phase
    is the slow reference plus ``1 + alpha`` times the band, so motion outside
    the band but above the reference's cut-off is removed.

    Parameters
    ----------
    increments : float array (T - 1, ..., h, w), or a list of them
        One band's phase increments (:func:`band_increments`); axes between
        time and the rows (the Riesz pyramid's two series) are carried along.
        A list holds consecutive pieces of the series along time (stage 2's
        time chunks): a FIR filter copies them straight into its buffer.
    temporal : TemporalFilter
        The band-pass (:func:`daskmag.kernels.temporal.make_filter`).
    start, stop, pad_before, pad_after
        As :meth:`daskmag.kernels.temporal.TemporalFilter.phase`.
    reference : TemporalFilter, optional
        The high-pass ``phase - reference`` (:func:`daskmag.kernels.temporal.reference_highpass`).
    out : array (stop - start, ..., h, w), optional
        Where to write the result.  It may share memory with ``increments``
        as ``increments_buffer[:stop - start]`` does: each strip of rows is
        filtered whole before it is written, and only over its own rows.

    Returns
    -------
    array (stop - start, ..., h, w), of the increments' dtype
    """
    pieces = _as_pieces(increments)
    xp, inner = namespace(pieces[0]), tuple(pieces[0].shape[1:])
    n_frames, rows = _length(pieces), inner[-2]
    if out is None:
        out = xp.empty((stop - start,) + inner, dtype=pieces[0].dtype)
    # the filter works on the series with its clip-end pads: a strip's samples include them
    row_bytes = (n_frames + pad_before + pad_after) * math.prod(inner[:-2]) * inner[-1] * 4
    strip = max(1, STRIP_BYTES // max(1, row_bytes))
    # FIR filters read float16 increments as they copy them into their float32
    # buffer; the others get a float32 copy of each strip (1080p: the copy was
    # 3% of a run's CPU)
    direct = all(isinstance(f, FIRFilter) for f in (temporal, reference) if f is not None)
    for r0 in range(0, rows, strip):
        r1 = min(r0 + strip, rows)
        part = [piece[..., r0:r1, :] for piece in pieces]
        if not direct:  # one float32 array
            part = xp.astype(part[0] if len(part) == 1 else xp.concat(part, axis=0), xp.float32, copy=False)
        elif len(part) == 1:
            part = part[0]
        if reference is None:  # alpha in the filter, the result straight into its rows
            temporal.phase(part, start, stop, pad_before, pad_after, scale=alpha, out=out[..., r0:r1, :])
            continue
        filtered = temporal.phase(part, start, stop, pad_before, pad_after, scale=1.0 + alpha)
        filtered -= reference.phase(part, start, stop, pad_before, pad_after)
        out[..., r0:r1, :] = assignable(filtered, out)
    return out


def smooth_phase(phase_shift, coefficients, sigma):
    """Amplitude-weighted Gaussian blur of a band's phase shift, ``G*(shift |c|) / G*|c|``.

    Noise dominates the phase where the amplitude is small; weighting by the
    amplitude lets the well-measured neighbours decide there (MIT's
    ``AmplitudeWeightedBlur``).  The blur wraps around the edges, as the
    pyramid's FFTs do.

    Parameters
    ----------
    phase_shift : float array (T, h, w)
    coefficients : complex array (T, h, w)
    sigma : (float, float)
        Standard deviation along rows and columns, in the band's own samples.
    """
    xp, ndimage = namespace(coefficients), ndimage_module(coefficients)
    amplitude = xp.abs(coefficients)
    sigmas = (0.0,) + tuple(sigma)
    weighted = ndimage.gaussian_filter(xp.astype(phase_shift, xp.float32) * amplitude, sigmas, mode="wrap")
    weight = ndimage.gaussian_filter(amplitude, sigmas, mode="wrap")
    weight += xp.finfo(xp.float32).smallest_normal
    weighted /= weight
    return weighted


def rotate(coefficients, phase_shift):
    """``c * (exp(i phase_shift) - 1)``: a band's change when its phase moves."""
    xp = namespace(coefficients)
    shift = xp.astype(phase_shift, xp.float32, copy=False)
    compiled = loops() if is_numpy(xp) else None
    if (compiled is not None and type(coefficients) is np.ndarray and coefficients.dtype == np.complex64
            and coefficients.flags.c_contiguous and shift.flags.c_contiguous and shift.shape == coefficients.shape):
        # one pass, sine and cosine by polynomials: a third of the ufuncs' time
        rotation = np.empty_like(coefficients)
        compiled.rotate(coefficients.reshape(-1).view(np.float32), shift.reshape(-1),
                        rotation.reshape(-1).view(np.float32))
        return rotation
    if is_numpy(xp):
        # NumPy's vectorised cos/sin need contiguous output, which the parts
        # of a complex array are not: compute into one plane, then copy
        rotation = xp.empty(shift.shape, dtype=xp.complex64)
        plane = xp.cos(shift, dtype=xp.float32)
        plane -= 1
        xp.copyto(rotation.real, plane)
        xp.sin(shift, out=plane)
        xp.copyto(rotation.imag, plane)
    else:  # the standard has no complex(real, imag): exp(i shift) - 1 in complex64
        rotation = xp.exp(xp.astype(shift, xp.complex64) * 1j)
        rotation -= 1.0
    rotation *= coefficients
    return rotation


def apply_phase_shifts(rgb, phase_shifts, spec: PyramidSpec, kept=None, sigma: float = 0.0):
    """Pass 3: shift every band's phase and add the resulting luminance change.

    Parameters
    ----------
    rgb : uint8 array (T, H, W, 3)
        The frames to change (the block's core).
    phase_shifts : list of arrays (T, h_b, w_b)
        Per band, the phase change of every coefficient; or per band a list
        of arrays (T, r, w_b), runs of its rows in order (stage 2's strips,
        joined a batch of frames at a time instead of all at once).
    kept : list of complex64 arrays (T, h_b, w_b), optional
        The frames' coefficients, if pass 1 kept them; else recomputed.
    sigma : float
        Smooth each band's phase shift (:func:`smooth_phase`) over a Gaussian
        of this many pixels of the frame, i.e. ``sigma`` divided by the
        band's decimation in its own samples (as MIT does per level); 0: none.

    Returns
    -------
    uint8 array (T, H, W, 3)
    """
    xp = namespace(rgb)
    n_frames, height, width, _ = rgb.shape
    bands = pyramid_filters((height, width), spec).bands
    out = xp.empty_like(rgb)
    batch = _batch_frames(height, width)
    for t0 in range(0, n_frames, batch):
        t1 = min(t0 + batch, n_frames)
        spectrum = None if kept is not None else luma_spectrum(rgb[t0:t1, ...])
        change = xp.zeros((t1 - t0, height, width), dtype=xp.complex64)
        for j, band in enumerate(bands):
            coefficients = kept[j][t0:t1, ...] if kept is not None else analyse(spectrum, band)
            shift = phase_shifts[j]
            shift = (shift[t0:t1, ...] if not isinstance(shift, (list, tuple))
                     else xp.concat([rows[t0:t1, ...] for rows in shift], axis=1))
            if sigma:
                band_sigma = (sigma * band.shape[0] / height, sigma * band.shape[1] / width)
                shift = smooth_phase(shift, coefficients, band_sigma)
            synthesise_into(change, rotate(coefficients, shift), band, overwrite=True)  # a temporary
        out[t0:t1, ...] = add_luma_of_spectrum(rgb[t0:t1, ...], change)
    return out


def magnify_block(rgb, temporal, alpha: float, spec: PyramidSpec = PyramidSpec(), start: int = 0,
                  stop: int | None = None, pad_before: int = 0, pad_after: int = 0,
                  keep_bytes: int = KEEP_BYTES, sigma: float = 0.0,
                  reference: TemporalFilter | None = None):
    """Magnify motion in a block of RGB frames; return frames ``[start, stop)``.

    Parameters
    ----------
    rgb : uint8 array (T, H, W, 3)
        The block's frames, temporal halo included (NumPy or CuPy).
    temporal : TemporalFilter or ndarray
        The temporal band-pass (:func:`daskmag.kernels.temporal.make_filter`), or
        symmetric FIR taps (odd length, zero DC gain).
    alpha : float
        Magnification: in-band motion becomes ``1 + alpha`` times as large
        (``-1`` removes it).
    spec : PyramidSpec
    start, stop : int
        Frames of the block to produce; the filter's ``halo_before`` frames
        before and ``halo_after`` after must be present in ``rgb`` or supplied
        by ``pad_before`` / ``pad_after`` (linear prediction at the clip's ends).
    keep_bytes : int
        Keep the core frames' coefficients from pass 1 when they fit in this
        many bytes (saves recomputing them), else recompute them in pass 3;
        store phase increments as float32 when they fit, else as float16.
    sigma : float
        Amplitude-weighted spatial smoothing of the phase shifts, in pixels
        (:func:`apply_phase_shifts`); 0: none.
    reference : TemporalFilter, optional
        Remove motion outside the band (:func:`phase_shift`).

    Returns
    -------
    uint8 array (stop - start, H, W, 3)
        Only the luminance (YIQ's Y) changes; colour (I, Q) passes through.
    """
    if not isinstance(temporal, TemporalFilter):
        temporal = FIRFilter(temporal)
    stop = rgb.shape[0] if stop is None else stop
    height, width = rgb.shape[1:3]
    bands = pyramid_filters((height, width), spec).bands
    coefficient_count = sum(band.weights.size for band in bands)
    keep = (start, stop) if (stop - start) * coefficient_count * 8 <= keep_bytes else None
    dtype = "float32" if rgb.shape[0] * coefficient_count * 4 <= keep_bytes else "float16"
    # Working memory reused between calls (see scratch_arrays).  Each band's
    # buffer has room for T frames: T - 1 increments, then the phase shifts
    # of the (at most T) output frames, written over them in place.
    n_frames = rgb.shape[0]
    specs = [((n_frames,) + band.shape, dtype) for band in bands]
    if keep is not None:
        specs += [((stop - start,) + band.shape, "complex64") for band in bands]
    buffers = scratch_arrays(namespace(rgb), specs)
    increments = [buffer[: n_frames - 1, ...] for buffer in buffers[: len(bands)]]
    kept = buffers[len(bands):] if keep is not None else None
    band_increments(rgb, spec, keep, dtype, out=(increments, kept))
    phase_shifts = [phase_shift(increments[j], temporal, alpha, start, stop, pad_before, pad_after,
                                reference, out=buffers[j][: stop - start, ...])
                    for j in range(len(bands))]
    return apply_phase_shifts(rgb[start:stop, ...], phase_shifts, spec, kept, sigma)


# --------------------------------------------------------------------------- the staged kernels
# The same three passes as magnify_block, as separate tasks (daskmag.graph.motion
# builds the graph): each frame is analysed once, and neighbouring time chunks
# exchange only the phase increments of their halos instead of re-analysing
# the halo frames.  The temporal filter works per coefficient, so stage 2 is
# cut into strips: segments of rows of the bands (band_strips).


def coefficient_count(shape: tuple[int, int], spec: PyramidSpec) -> int:
    """N, the complex coefficients of every band of one frame of ``shape``."""
    return sum(band.weights.size for band in pyramid_filters(tuple(shape), spec).bands)


def band_strips(shape: tuple[int, int], spec: PyramidSpec, bytes_per_row_frame: int, max_bytes: int,
                min_strips: int = 1):
    """Stage 2's strips: lists of ``(band, first_row, stop_row)`` segments.

    The bands' rows, fine to coarse, are cut into the fewest strips of at
    most about ``max_bytes`` (``bytes_per_row_frame`` per coefficient per
    frame of the window), their number rounded up to a multiple of
    ``min_strips``, each as near the same size as whole rows allow (over by
    less than one row): a short clip's one group then keeps every worker
    busy to the end of stage 2, where a smaller last strip left one idle.
    """
    bands = pyramid_filters(tuple(shape), spec).bands
    total = coefficient_count(shape, spec) * bytes_per_row_frame
    multiple = max(1, min_strips)
    count = -(-max(1, -(-total // max(1, max_bytes))) // multiple) * multiple
    share = total / count
    strips = [[] for _ in range(count)]
    placed = 0  # bytes of the rows given to strips so far
    for j, band in enumerate(bands):
        height, width = band.shape
        row_bytes = width * bytes_per_row_frame
        r0 = 0
        while r0 < height:
            index = min(count - 1, int(placed // share))
            rows = height - r0 if index == count - 1 else max(1, math.ceil(((index + 1) * share - placed) / row_bytes))
            r1 = min(height, r0 + rows)
            strips[index].append((j, r0, r1))
            placed += (r1 - r0) * row_bytes
            r0 = r1
    return [strip for strip in strips if strip]


def analyse_chunk(rgb, spec: PyramidSpec, previous=None, dtype: str = "float32", keep: bool = False):
    """Stage 1: a time chunk's phase increments (and coefficients), per band.

    Parameters
    ----------
    rgb : uint8 or uint16 array (T, H, W, C)
        The chunk's frames.
    spec : PyramidSpec
    previous : array (H, W, C), optional
        The frame before the chunk (none for the clip's first chunk).
    dtype : {"float32", "float16"}
        Storage of the increments.
    keep : bool
        Also return the chunk's complex coefficients, for stage 3.

    Returns
    -------
    increments : list of arrays (T, h_b, w_b)
        Per band, row ``t``: the phase change into the chunk's frame ``t``
        from the one before it, ``angle(c[t] conj(c[t - 1]))``; row 0 of the
        clip's first chunk is 0 (there is no frame before).
    coefficients : list of complex64 arrays (T, h_b, w_b), or None
    """
    xp = namespace(rgb)
    bands = pyramid_filters(tuple(rgb.shape[1:3]), spec).bands
    n_frames = rgb.shape[0]
    increments = [xp.empty((n_frames,) + band.shape, dtype=dtype_named(xp, dtype)) for band in bands]
    if previous is None:
        for band in increments:
            band[0, ...] = 0
    kept = [xp.empty((n_frames,) + band.shape, dtype=xp.complex64) for band in bands] if keep else None
    rows = increments if previous is not None else [band[1:, ...] for band in increments]
    band_increments(rgb, spec, (0, n_frames) if keep else None, dtype, out=(rows, kept), before=previous)
    return increments, kept


def shift_strip(pieces, first: int, start: int, stop: int, n_frames: int, temporal: TemporalFilter,
                alpha: float, reference: TemporalFilter | None = None, halos: tuple[int, int] | None = None):
    """Stage 2: the phase shifts of frames ``[start, stop)`` in one segment of a band.

    The temporal filter needs ``halos`` frames before ``start`` and after
    ``stop``; they come from the neighbouring chunks, or, past the clip's
    ends, from linear prediction.

    Parameters
    ----------
    pieces : list of arrays (T_k, r, w)
        The segment's increments (:func:`analyse_chunk`) in consecutive
        chunks, from frame ``first`` on, covering ``[start - halo_before,
        stop + halo_after)`` within the clip.
    first, start, stop : int
        Frame numbers in the clip.
    n_frames : int
        The clip's length.
    temporal, alpha, reference
        As :func:`phase_shift`.
    halos : (int, int), optional
        Frames the window reaches before and after (default the temporal
        filter's; with a ``reference``, the larger of the two filters').

    Returns
    -------
    float32 array (stop - start, r, w)
    """
    xp = namespace(pieces[0])
    if halos is None:
        filters = [temporal] + ([reference] if reference is not None else [])
        halos = (max(f.halo_before for f in filters), max(f.halo_after for f in filters))
    before, after = halos
    w0 = max(start - before, 0)
    w1 = min(stop + after, n_frames)
    # The window's increments as views of the chunks' pieces, not a joined
    # copy: the filter copies them into its own buffer anyway (the copy here
    # was 2.8% of a 1080p run's CPU).  Row 0, the change into the window's
    # first frame, is not needed.  The shifts get their own array (written
    # over the increments, they would keep the chunks alive until stage 3).
    # float32 whatever the increments' storage: float16 shifts (up to alpha
    # times a phase) rounded to 0.002 rad at 2-4 rad, a grey level or two on
    # strong edges, and cost a slow conversion each way.
    window = sample_range(pieces, w0 - first + 1, w1 - first)
    out = xp.empty((stop - start,) + tuple(pieces[0].shape[1:]), dtype=xp.float32)
    return phase_shift(window, temporal, alpha, start - w0, stop - w0,
                       before - (start - w0), after - (w1 - stop), reference, out=out)
