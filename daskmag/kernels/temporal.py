"""Temporal band-pass filters along the time axis (design and pure kernels)."""

from __future__ import annotations

import math

import numpy as np

from .backend import assignable, column_dot, fft_module, is_numpy, namespace
from .compiled import loops

#: Stop-band attenuation of the default FIR design, in dB.  -60 dB keeps
#: out-of-band motion within 3% of unchanged even at alpha = 30.
STOPBAND_DB = 60.0


def kaiser_beta(attenuation: float) -> float:
    """Kaiser window ``beta`` for a stop-band ``attenuation`` in dB (Kaiser 1974;
    Oppenheim and Schafer, *Discrete-Time Signal Processing*, eq. 7.62), as
    :func:`scipy.signal.kaiser_beta`."""
    a = float(attenuation)
    if a > 50.0:
        return 0.1102 * (a - 8.7)
    if a > 21.0:
        return 0.5842 * (a - 21.0) ** 0.4 + 0.07886 * (a - 21.0)
    return 0.0


def kaiser_length(attenuation: float, width: float) -> int:
    """Taps a Kaiser-window FIR needs for ``attenuation`` dB over a transition
    ``width`` (a fraction of Nyquist): Kaiser's formula (Oppenheim and
    Schafer, eq. 7.63), as :func:`scipy.signal.kaiserord`."""
    return int(math.ceil((abs(attenuation) - 7.95) / 2.285 / (math.pi * width) + 1))


def windowed_sinc(taps: int, bands, fps: float, beta: float) -> np.ndarray:
    """Kaiser-windowed sinc FIR passing ``bands`` (``[(low, high), ...]`` Hz),
    scaled to unit gain at the first band's centre (or at DC, or Nyquist, for
    a band reaching either): the window method, as :func:`scipy.signal.firwin`.

    Written with NumPy alone because importing :mod:`scipy.signal` costs
    about 0.7 CPU-s, a tenth of a short clip's whole run; tests hold it to
    SciPy's design.
    """
    nyquist = fps / 2.0
    m = np.arange(taps) - 0.5 * (taps - 1)
    h = np.zeros(taps)
    for low, high in bands:
        h += high / nyquist * np.sinc(high / nyquist * m) - low / nyquist * np.sinc(low / nyquist * m)
    h *= np.kaiser(taps, beta)
    low, high = bands[0][0] / nyquist, bands[0][1] / nyquist
    centre = 0.0 if low == 0 else 1.0 if high == 1 else 0.5 * (low + high)
    return h / np.sum(h * np.cos(np.pi * m * centre))


def default_taps(low: float, high: float, fps: float) -> int:
    """Number of taps of the default FIR band-pass for ``[low, high]`` Hz.

    The transition width is the smaller of the band's width and twice its
    lower edge (so that DC is in the stop band), and the Kaiser rule gives the
    length that reaches :data:`STOPBAND_DB` within it.  Always odd.
    """
    nyquist = fps / 2.0
    width = min(high - low, 2.0 * low, 2.0 * (nyquist - high) if high < nyquist else high - low)
    numtaps = max(3, kaiser_length(STOPBAND_DB, width / nyquist))
    return numtaps + 1 if numtaps % 2 == 0 else numtaps


def design_bandpass(low: float, high: float, fps: float, taps: int | None = None) -> np.ndarray:
    """Zero-phase (symmetric) FIR band-pass taps for ``[low, high]`` Hz at ``fps``.

    The window method with a Kaiser window (:func:`windowed_sinc`).

    Parameters
    ----------
    low, high : float
        Pass-band edges in Hz (the -6 dB points, as :func:`scipy.signal.firwin`).
    fps : float
        Sampling rate of the frames in Hz.
    taps : int, optional
        Filter length (odd; an even number is rounded up).  Default:
        :func:`default_taps`.

    Returns
    -------
    ndarray of float64, shape (taps,)
        Symmetric taps with exactly zero DC gain, so that a constant phase
        offset (each time block's own reference) has no effect on the output.
    """
    if taps is None:
        taps = default_taps(low, high, fps)
    taps = int(taps)
    if taps % 2 == 0:
        taps += 1
    beta = kaiser_beta(STOPBAND_DB)
    window = np.kaiser(taps, beta)
    h = windowed_sinc(taps, [(low, high)], fps, beta)
    # Remove the tiny residual DC gain along the window's shape, which changes
    # the response only near 0 Hz.
    h = h - window * (h.sum() / window.sum())
    return h


def frequency_response(taps: np.ndarray, freqs, fps: float) -> np.ndarray:
    """Magnitude response of ``taps`` at ``freqs`` Hz."""
    import scipy.signal

    _, response = scipy.signal.freqz(taps, worN=np.asarray(freqs, dtype=float), fs=fps)
    return np.abs(response)


def increment_kernel(taps) -> np.ndarray:
    """Taps that apply the FIR ``taps`` to a signal given by its increments.

    With ``d[i] = x[i + 1] - x[i]`` and ``H = len(taps) // 2``, the filtered
    ``sum_k taps[k] x[t + k - H]`` equals ``sum_j G[j] d[t - H + j]`` for
    ``G[j] = sum(taps[j + 1:])`` (``j < 2H``), because ``taps`` sums to zero.
    Filtering increments needs no running sum and no reference frame.
    """
    taps = np.asarray(taps, dtype=np.float64)
    tails = np.cumsum(taps[::-1])[::-1]  # tails[j] = sum(taps[j:])
    return tails[1:]


#: Order of the autoregressive model that continues a signal past a clip's ends.
PREDICTION_ORDER = 8
#: Most samples it is fitted to (fewer when the filter is shorter).
PREDICTION_WINDOW = 64


def _burg_from_correlations(centred, order: int):
    """AR polynomial ``a`` (order, C), float32, by Burg's method, one model per
    column of (n, C) ``centred`` samples; prediction is
    ``x[t] ~ -sum_k a[k-1] x[t-k]``.  Burg's reflection coefficients never
    exceed 1 in size, so the model is stable, and it fits sinusoids well from
    short records (unlike Yule-Walker's biased estimate).

    Vos's recursion computes them from the columns' autocorrelations
    (``order + 1`` passes over the samples) and a few edge samples per order,
    instead of updating the (n, C) forward and backward errors at every order
    (about seven passes each; the tests keep that direct form as the reference).

    Float64 throughout, since the coefficients come from differences of
    sums; a reflection coefficient is kept within [-1, 1] (Burg's own bound,
    which rounding could break where the residual is at the data's noise
    level), so the model stays stable, and is 0 once the residual's energy is
    below 1e-10 of the signal's (a noise-free sinusoid: 0.24-0.59 instead of
    0.57-7 worst error in 55 steps, where the direct fit chases float32
    rounding).

    K. Vos, "A fast implementation of Burg's method", 2013
    (https://www.opus-codec.org/docs/vos_fastburg.pdf), algorithm 1.
    """
    xp = namespace(centred)
    x = xp.astype(centred, xp.float64)
    n, width = x.shape
    # c[j] = sum_t x[t] x[t + j]
    c = [column_dot(x[: n - j, ...], x[j:, ...]) for j in range(order + 1)]
    a = xp.zeros((order + 2, width), dtype=xp.float64)  # a[0] = 1; a[i + 1] = 0 at order i
    a[0, ...] = 1.0
    g = xp.zeros((order + 2, width), dtype=xp.float64)
    g[0, ...] = 2.0 * c[0] - x[0, ...] ** 2 - x[n - 1, ...] ** 2
    g[1, ...] = 2.0 * c[1]
    r = xp.zeros((order + 1, width), dtype=xp.float64)
    r[0, ...] = 2.0 * c[1]
    # orders past the point where the model leaves 1e-10 of the energy would
    # fit rounding, not signal (the sums cancel there), so they add nothing
    floor = 1e-10 * g[0, ...]
    for i in range(order):
        head = a[: i + 2, ...]
        numerator = column_dot(head, xp.flip(g[: i + 2, ...], axis=0))
        denominator = column_dot(head, g[: i + 2, ...])
        positive = denominator > floor
        k = -numerator / xp.where(positive, denominator, 1.0)
        k = xp.clip(xp.where(positive, k, 0.0), -1.0, 1.0)
        a[: i + 2, ...] = head + k * xp.flip(head, axis=0)
        if i == order - 1:
            break
        m = i + 1
        # r[j + 1] = r[j] - x[j] x[m] - x[n-1-j] x[n-1-m], then r[0] = 2 c[m + 1]
        r[1 : m + 1, ...] = (r[:m, ...] - x[:m, ...] * x[m, ...]
                             - xp.flip(x[n - m :, ...], axis=0) * x[n - 1 - m, ...])
        r[0, ...] = 2.0 * c[m + 1]
        # g[j] += k g[m - j] + dR a, dR's rows from the samples at either end
        early, late = xp.flip(x[: m + 1, ...], axis=0), x[n - 1 - m :, ...]
        first, last = column_dot(early, a[: m + 1, ...]), column_dot(late, a[: m + 1, ...])
        g[: m + 1, ...] = (g[: m + 1, ...] + k * xp.flip(g[: m + 1, ...], axis=0)
                           - early * first - late * last)
        g[m + 1, ...] = column_dot(r[: m + 1, ...], a[: m + 1, ...])
    return xp.astype(a[1 : order + 1, ...], xp.float32)


#: Columns fitted together by :func:`_forecast` on the CPU: the fit's
#: (order, columns) float64 arrays and its (window, columns) samples stay in
#: a core's cache at this width instead of streaming from memory at every
#: step, and the blocks are wide enough that two worker threads do not queue
#: for the GIL between the fit's ~200 small NumPy calls per block.  275,000
#: columns of 120 samples, one thread: 0.36 CPU-s at 2,048 or 8,192, 0.41 at
#: 16,384, 0.56 at 32,768; a whole guitar.mp4 run (2 threads, 4 alternating
#: rounds): 7.64-7.94 CPU-s at 8,192 against 7.90-8.11 at 2,048.
FORECAST_COLUMNS = 8192
#: The same for the compiled fit (:mod:`daskmag.kernels.compiled`): its
#: float64 samples and state, about 0.6 KiB a column, stay in a core's L2.
COMPILED_FORECAST_COLUMNS = 1024


def _forecast(series, steps: int, order: int, window: int):
    """``steps`` samples after ``series`` (n, ...) from an AR(order) fit per column
    to its last ``window`` samples."""
    xp = namespace(series)
    columns = xp.reshape(series, (series.shape[0], -1))
    width = columns.shape[1]
    most = COMPILED_FORECAST_COLUMNS if is_numpy(xp) and loops() is not None else FORECAST_COLUMNS
    if not is_numpy(xp) or width <= most:  # a GPU takes them all at once
        return xp.reshape(_forecast_columns(columns, steps, order, window), (steps,) + series.shape[1:])
    # blocks of equal width: no sliver of a column or two (einsum sums a lone column in another order)
    block = -(-width // -(-width // most))
    out = xp.empty((steps, width), dtype=_working_dtype(xp, series.dtype))
    for j in range(0, width, block):
        out[:, j : j + block] = _forecast_columns(columns[:, j : j + block], steps, order, window)
    return out.reshape((steps,) + series.shape[1:])


def _working_dtype(xp, dtype):
    """The dtype the temporal filter computes in for samples of ``dtype``:
    float32 for float16 storage (exact: every float16 is a float32), else ``dtype``
    (the array API standard has no float16: then always ``dtype``)."""
    half = getattr(xp, "float16", None)
    return xp.float32 if half is not None and dtype == half else dtype


def _forecast_columns(columns, steps: int, order: int, window: int):
    """:func:`_forecast` of (n, C) ``columns``: (steps, C) in their working dtype (:func:`_working_dtype`)."""
    xp = namespace(columns)
    compiled = loops() if is_numpy(xp) else None
    if compiled is not None:  # the same arithmetic in one pass per step, not ~200 NumPy calls
        out = np.empty((steps, columns.shape[1]), dtype=np.float32)
        compiled.burg_forecast(np.ascontiguousarray(columns[-window:, ...], dtype=np.float32),
                               np.ascontiguousarray(columns[-order:, ...], dtype=np.float32), steps, order, out)
        return out.astype(_working_dtype(xp, columns.dtype), copy=False)
    window = xp.astype(columns[-window:, ...], xp.float32, copy=False)
    mean = xp.mean(window, axis=0)
    a = _burg_from_correlations(window - mean, order)
    # history, oldest first, then each prediction in turn; one dot product per
    # step over the newest ``order`` samples (newest first, as the model's sum)
    history = xp.empty((order + steps, a.shape[1]), dtype=xp.float32)
    history[:order, ...] = xp.astype(columns[-order:, ...], xp.float32, copy=False) - mean
    for step in range(steps):
        newest_first = history[step + order - 1 :: -1, ...][:order, ...]
        history[step + order, ...] = -column_dot(a, newest_first)
    out = history[order:, ...]
    out += mean
    return xp.astype(out, _working_dtype(xp, columns.dtype), copy=False)


def extend_by_prediction(increments, before: int, after: int, window: int,
                         order: int = PREDICTION_ORDER):
    """Continue a signal's increments past its ends by linear prediction.

    Fits an autoregressive model (Burg's method, per column) to the increments
    of the ``window`` samples at each end and forecasts ``before`` samples
    backwards and ``after`` forwards.  The fit depends only on those samples,
    so any split of a clip into time blocks gives the same extension.  A steady vibration continues as it was, a steady drift too,
    and noise fades to its mean, so the temporal filter sees a plausible
    signal beyond a clip's ends and the first and last frames are magnified
    like the others.  Series too short to fit fall back to mirroring.
    float16 increments are continued in float32 (the result is float32).
    """
    xp = namespace(increments)
    parts = _predictions(increments, before, after, window, order)
    if parts is None:  # mirrored, the edge sample repeated (numpy.pad's "symmetric")
        n = increments.shape[0]
        index = np.arange(-before, n + after) % (2 * n)
        index = np.where(index >= n, 2 * n - 1 - index, index)
        return xp.astype(xp.take(increments, xp.asarray(index), axis=0), _working_dtype(xp, increments.dtype),
                         copy=False)
    return xp.concat([parts[0], increments, parts[1]], axis=0)


def _predictions(increments, before: int, after: int, window: int, order: int = PREDICTION_ORDER):
    """The ``before`` and ``after`` samples of :func:`extend_by_prediction`, or
    None where the series is too short to fit (then it mirrors).

    ``increments``: an array, or a list of consecutive pieces along axis 0
    (only the ``window`` samples at either end are read)."""
    pieces = _as_pieces(increments)
    total = _length(pieces)
    window = min(int(window), total)
    if window < 2 * order + 2:
        return None
    empty = pieces[0][:0, ...]
    head = (_forecast(_rows(pieces, 0, window)[::-1, ...], before, order, window)[::-1, ...] if before
            else empty)
    tail = _forecast(_rows(pieces, total - window, total), after, order, window) if after else empty
    return head, tail


def _as_pieces(increments) -> list:
    """A series given as one array or as consecutive pieces along axis 0, as a list of pieces."""
    return list(increments) if isinstance(increments, (list, tuple)) else [increments]


def _length(pieces) -> int:
    return sum(piece.shape[0] for piece in pieces)


def _rows(pieces, first: int, last: int):
    """Samples ``[first, last)`` of consecutive ``pieces``: a view where one
    piece holds them all, else a copy of just those samples."""
    parts = sample_range(pieces, first, last)
    return parts[0] if len(parts) == 1 else namespace(pieces[0]).concat(parts, axis=0)


def sample_range(pieces, first: int, last: int) -> list:
    """Views of samples ``[first, last)`` of consecutive ``pieces`` (axis 0), one per piece they reach."""
    views, position = [], 0
    for piece in pieces:
        lo, hi = max(first, position), min(last, position + piece.shape[0])
        if lo < hi:
            views.append(piece[lo - position : hi - position, ...])
        position += piece.shape[0]
    return views


def filter_increments(increments, kernel, start: int, stop: int, pad_before: int = 0,
                      pad_after: int = 0, window: int | None = None, out=None):
    """Band-passed signal at samples ``[start, stop)`` from its increments.

    Parameters
    ----------
    increments : float array (T - 1, ...), or a list of them
        ``d[i] = x[i + 1] - x[i]`` along axis 0, for samples ``0 .. T-1``;
        a list holds consecutive pieces of the series (stage 2's time
        chunks), copied straight into the products' buffer.  float16
        storage is read as it is copied into the float32 buffer (no
        converted copy of the series first).
    kernel : ndarray
        From :func:`increment_kernel`; its length is ``2 * H``.
    start, stop : int
        Samples to produce.  Increments ``[start - H, stop + H - 1)`` are
        used; those before 0 or after the end are supplied by ``pad_before`` /
        ``pad_after`` samples of linear prediction
        (:func:`extend_by_prediction`), so the first and last frames are
        filtered (and magnified) like the rest.
    window : int, optional
        Samples the prediction is fitted to; default one filter length, at
        most :data:`PREDICTION_WINDOW`.
    out : array (stop - start, ...), optional
        Where to write the result (it may be a view with strided rows, such
        as a strip of a larger array's rows).

    Returns
    -------
    float array (stop - start, ...)
        float32 for float16 or float32 increments, float64 for float64;
        ``out`` if given.
    """
    series = _as_pieces(increments)
    xp, fft = namespace(series[0]), fft_module(series[0])
    half = len(kernel) // 2
    # the extended series as pieces, copied straight into the FFT's buffer
    # below (concatenating them first cost one more pass over the strip)
    pieces = series
    if pad_before or pad_after:
        # fit on (at most) one filter length of samples: the same in any time block
        if window is None:
            window = min(len(kernel), PREDICTION_WINDOW)
        parts = _predictions(series, pad_before, pad_after, window)
        if parts is None:  # too short to fit: mirrored, from the (short) series joined
            pieces = [extend_by_prediction(_rows(series, 0, _length(series)), pad_before, pad_after,
                                           window=window)]
        else:
            pieces = [parts[0], *series, parts[1]]
    first = start + pad_before - half
    last = stop + pad_before + half - 1
    if first < 0 or last > _length(pieces):
        raise ValueError("filter_increments needs len(kernel)//2 samples around [start, stop)")
    length, dtype, columns = last - first, _working_dtype(xp, series[0].dtype), series[0].shape[1:]
    if is_numpy(xp) and len(kernel) <= DIRECT_MAX_TAPS and dtype in (np.float32, np.float64):
        width = math.prod(columns)
        # the pieces copied in their own shape (a strip of a Riesz level's rows,
        # (n, 2, r, c), has no (n, 2 r c) view), then seen as one matrix
        padded = xp.empty((length,) + columns, dtype=dtype)
        _copy_samples(pieces, first, last, padded)
        target = _as_matrix(out, width) if out is not None and out.dtype == dtype else None
        result = _banded_correlation(xp.reshape(padded, (length, width)), kernel, stop - start, out=target)
        if target is not None:
            return out
        # no out, or a layout the products cannot write (then one more pass)
        return _delivered(xp.reshape(result, (stop - start,) + columns), out)
    nfft = fft.next_fast_len(length, real=True)
    # correlation = convolution with the reversed kernel; 'valid' part only
    reversed_kernel = np.zeros(nfft)
    reversed_kernel[: len(kernel)] = kernel[::-1]
    # float32 increments (motion) keep complex64 arithmetic; float64 (colour) keep their precision
    complex_type = np.complex128 if dtype == xp.float64 else np.complex64
    kernel_f = xp.asarray(np.fft.rfft(reversed_kernel).astype(complex_type))
    # zero-pad to nfft here: scipy's own padding (n=nfft) zeroes a whole new
    # array before copying the segment in (measured: 6% of the kernel)
    padded = xp.empty((nfft,) + columns, dtype=dtype)
    _copy_samples(pieces, first, last, padded)
    padded[length:, ...] = 0
    spectrum = fft.rfft(padded, axis=0, overwrite_x=True)
    spectrum *= xp.reshape(kernel_f, (-1,) + (1,) * len(columns))
    result = fft.irfft(spectrum, n=nfft, axis=0, overwrite_x=True)
    offset = len(kernel) - 1
    return _delivered(result[offset : offset + (stop - start), ...], out)


def _delivered(result, out):
    """``result``, or ``out`` with ``result`` written into it."""
    if out is None:
        return result
    out[...] = assignable(result, out)
    return out


#: Longest kernel that :func:`filter_increments` applies directly, as banded
#: matrix products (BLAS), rather than through FFTs.  CPU time of the
#: products against the FFTs, one core (AVX-512, OpenBLAS), 10,000 columns
#: (``benchmarks/fir_direct.py``): 0.20 at 31 taps, 0.40 at 111, 0.57 at
#: 301, 0.69 at 601, 0.95 at 1,001.
DIRECT_MAX_TAPS = 768
_BANDED_CACHE: dict = {}


def _banded_matrix(kernel, rows: int, dtype):
    """(rows, rows + L - 1) Toeplitz matrix of ``kernel`` (length L): row ``t``
    holds the kernel at columns ``t .. t + L - 1``.  Cached per kernel."""
    key = (kernel.tobytes(), rows, np.dtype(dtype).str)
    matrix = _BANDED_CACHE.get(key)
    if matrix is None:
        if len(_BANDED_CACHE) > 32:
            _BANDED_CACHE.clear()
        length = len(kernel)
        matrix = np.zeros((rows, rows + length - 1), dtype=dtype)
        matrix[np.arange(rows)[:, None], np.arange(rows)[:, None] + np.arange(length)] = kernel
        matrix = _BANDED_CACHE[key] = matrix
    return matrix


def _as_matrix(out, width: int):
    """``out`` (n, ...) as an (n, width) view whose rows BLAS can write in
    place (unit stride along a row), or None where no such view exists."""
    try:
        matrix = np.reshape(out, (out.shape[0], width), copy=False)
    except (ValueError, TypeError, AttributeError):  # not a NumPy array, or no view
        return None
    return matrix if matrix.strides[1] == matrix.itemsize else None


def _banded_correlation(padded, kernel, n_out: int, out=None):
    """``out[t] = sum_i kernel[i] padded[t + i]`` for ``t < n_out``, of a (n_out + L - 1, C) array.

    The correlation as products of one small Toeplitz block with successive
    row blocks of ``padded``: BLAS runs them near the core's peak, so for
    kernels up to a few hundred taps this beats two FFTs of the whole
    series, though it does about ``4 L`` operations per sample to their
    ``~10 log2(n)``.  Blocks of about ``L / 2`` rows balance the matrix
    product's efficiency against the zeros it multiplies.
    """
    length = len(kernel)
    rows = int(min(256, max(32, 2 ** round(math.log2(max(1, length / 2))))))
    matrix = _banded_matrix(np.asarray(kernel), rows, padded.dtype)
    if out is None:
        out = np.empty((n_out, padded.shape[1]), dtype=padded.dtype)
    for t0 in range(0, n_out, rows):
        t1 = min(t0 + rows, n_out)
        np.matmul(matrix[: t1 - t0, : t1 - t0 + length - 1], padded[t0 : t1 + length - 1], out=out[t0:t1])
    return out


def _copy_samples(pieces, first: int, last: int, out):
    """Write samples ``[first, last)`` of the concatenation of ``pieces`` (axis 0)
    to ``out[:last - first]``."""
    row = 0
    compiled = loops() if type(out) is np.ndarray and out.dtype == np.float32 else None
    for view in sample_range(pieces, first, last):
        target = out[row : row + view.shape[0], ...]
        if not (compiled is not None and type(view) is np.ndarray and view.dtype == np.float16
                and _halves_to_singles(compiled, view, target)):
            target[...] = view
        row += view.shape[0]


def _halves_to_singles(compiled, view, target) -> bool:
    """float16 ``view`` into the C-contiguous float32 ``target`` by a compiled
    loop per contiguous run of samples (a strip's rows of one frame): 0.34
    against NumPy's 0.95 ns an element (NumPy converts halves without SIMD).
    False, with nothing written, where the runs are too short to pay the calls."""
    lead, run = view.ndim, 1
    while lead > 0 and view.strides[lead - 1] == view.itemsize * run:
        lead -= 1
        run *= view.shape[lead]
    if run < 4096 or not target.flags.c_contiguous:
        return False
    bits, rows = view.view(np.uint16), target.reshape(-1, run)
    for i, index in enumerate(np.ndindex(view.shape[:lead])):
        compiled.half_to_single(bits[index].reshape(-1), rows[i])
    return True


# --------------------------------------------------------------------------- filters behind one interface

#: Temporal filters of ``daskmag magnify --filter``.
FILTER_KINDS = ("fir", "ideal", "butter", "diff-iir", "window")
#: Default window of ``--filter window``, in frames (the predecessor's).
DEFAULT_WINDOW = 30
#: An IIR filter's warm-up halo is long enough that the part of its impulse
#: response beyond it holds less than this fraction of the response's L1 norm:
#: a block's output then differs from that of a filter run over everything
#: before it (its state carried) by less than this fraction of the phase's peak.
IIR_TOLERANCE = 1e-4
#: Longest impulse response examined for the warm-up (frames).
IIR_MAX_HALO = 100_000


class TemporalFilter:
    """A temporal band-pass of the phase, computed from its increments.

    The graph gives every time block ``halo_before`` frames before its own
    and ``halo_after`` after (:func:`daskmag.graph.motion.magnify_motion`), and the
    clip's ends are continued by linear prediction (:func:`extend_by_prediction`)
    over the same widths; ``whole_clip`` filters need the whole clip in one block.

    Attributes
    ----------
    halo_before, halo_after : int
    whole_clip : bool
    """

    halo_before = 0
    halo_after = 0
    whole_clip = False
    #: Samples at each end that the clip-end prediction is fitted to (the
    #: filter's reach), at most :attr:`prediction_cap` (None: no cap).
    prediction_window = PREDICTION_WINDOW
    prediction_cap = PREDICTION_WINDOW

    def phase(self, increments, start: int, stop: int, pad_before: int = 0, pad_after: int = 0,
              *, scale: float = 1.0, out=None):
        """The filtered phase at samples ``[start, stop)``.

        Parameters
        ----------
        increments : float array (T - 1, ...)
            ``d[i] = x[i + 1] - x[i]`` along axis 0.  :class:`FIRFilter`
            also takes a list of consecutive pieces of the series.
        start, stop : int
            Samples to produce; ``halo_before`` samples before ``start`` and
            ``halo_after`` after ``stop`` must be present, or supplied by
            ``pad_before`` / ``pad_after`` samples of linear prediction.
        scale : float
            A factor for the result (motion magnification's ``alpha``): a
            FIR filter folds it into its taps, sparing a pass over the output.
        out : array (stop - start, ...), optional
            Where to write the result, e.g. a strip of a larger array's rows.

        Returns
        -------
        float array (stop - start, ...)
            float32, or float64 for float64 increments (FIR filters);
            ``out`` if given.
        """
        extended = _length(_as_pieces(increments)) + pad_before + pad_after
        if start + pad_before - self.halo_before < 0 or stop + pad_before + self.halo_after > extended + 1:
            raise ValueError(f"{type(self).__name__} needs {self.halo_before} samples before "
                             f"and {self.halo_after} after [start, stop)")
        return self._padded_phase(increments, start, stop, pad_before, pad_after, scale, out)

    def _padded_phase(self, increments, start, stop, pad_before, pad_after, scale=1.0, out=None):
        """:meth:`_phase` of the series extended by its clip-end predictions."""
        if pad_before or pad_after:
            increments = extend_by_prediction(increments, pad_before, pad_after,
                                              window=self._fit_window())
        result = self._phase(increments, start + pad_before, stop + pad_before)
        if scale != 1.0:
            result *= scale
        return _delivered(result, out)

    def _fit_window(self) -> int:
        """Samples the clip-end prediction is fitted to."""
        if self.prediction_cap is None:
            return self.prediction_window
        return min(self.prediction_window, self.prediction_cap)

    def _phase(self, increments, start, stop):  # pragma: no cover - abstract
        raise NotImplementedError

    def response(self, freqs, fps: float) -> np.ndarray:
        """Designed magnitude response at ``freqs`` Hz (what the tests measure against)."""
        raise NotImplementedError


class FIRFilter(TemporalFilter):
    """A FIR filter of the phase: ``y[t] = sum_k taps[k] x[t + k - H]``, ``H = len(taps) // 2``.

    The one FIR along time of daskmag: motion magnification filters the
    phase of every pyramid coefficient with it, colour magnification the
    small YIQ stack (:func:`daskmag.kernels.linear.bandpass_change`).

    Parameters
    ----------
    taps : ndarray, odd length, summing to zero
    prediction_cap : int or None
        Most samples the clip-end prediction is fitted to; it is otherwise
        fitted to one filter length.  Motion caps it at
        :data:`PREDICTION_WINDOW` (Burg's fit per coefficient is a tenth of
        the kernel's time at that size); colour's small stack affords the
        whole filter length (None), which follows a slow pulse better.
    """

    def __init__(self, taps, prediction_cap: int | None = PREDICTION_WINDOW):
        taps = np.asarray(taps, dtype=np.float64)
        if len(taps) % 2 == 0:
            raise ValueError("FIR taps must have an odd length (centred)")
        self.taps = taps
        self.kernel = increment_kernel(taps)
        self.halo_before = self.halo_after = len(taps) // 2
        self.prediction_window = len(self.kernel)
        self.prediction_cap = prediction_cap

    def _padded_phase(self, increments, start, stop, pad_before, pad_after, scale=1.0, out=None):
        # the extended series is never materialised: its pieces go straight into
        # the products' (or FFT's) buffer; the scale goes into the taps
        kernel = self.kernel if scale == 1.0 else self.kernel * scale
        return filter_increments(increments, kernel, start, stop, pad_before, pad_after,
                                 window=self._fit_window(), out=out)

    def _phase(self, increments, start, stop):
        return filter_increments(increments, self.kernel, start, stop)

    def response(self, freqs, fps):
        return frequency_response(self.taps, freqs, fps)


def window_taps(low: float, high: float, fps: float, window: int = DEFAULT_WINDOW) -> np.ndarray:
    """Taps of the predecessor's sliding-window ideal band-pass, centred.

    The predecessor took the ``window`` frames up to each frame, zeroed the
    FFT bins outside ``[low, high]`` Hz and kept the *last* sample (a lag of
    ``window - 1`` frames).  Here the window is centred on the frame
    (``window // 2`` frames before it): the same linear filter without the lag.
    Its taps are the inverse DFT of the bin mask, which has no DC bin, so they
    sum to zero.  An even window has one more frame before than after; the
    taps are padded with a zero to an odd, centred length.
    """
    window = int(window)
    mask = ideal_mask(np.fft.fftfreq(window, 1.0 / fps), low, high)
    impulse = np.fft.ifft(mask).real  # impulse[m]: weight of x[t - m], m taken mod window
    before = window // 2
    lags = np.arange(-(window - 1 - before), before + 1)  # m = t - n over the window
    half = max(abs(lags[0]), lags[-1])
    taps = np.zeros(2 * half + 1)
    # correlation form: taps[k] weighs x[t + k - half], i.e. m = half - k
    taps[half - lags] = impulse[lags % window]
    return taps


def ideal_mask(freqs, low: float, high: float) -> np.ndarray:
    """1 at frequencies whose magnitude lies in ``[low, high]``, else 0 (MIT's ideal band)."""
    freqs = np.abs(np.asarray(freqs, dtype=float))
    return ((freqs >= low) & (freqs <= high)).astype(float)


class IdealFilter(TemporalFilter):
    """MIT's ideal band-pass: the FFT of the phase over the whole clip, masked.

    The phase is rebuilt from its increments (from 0 at the first frame; the
    mask has no DC bin, so the offset does not matter) and the straight line
    from its first to its last sample is removed, so that the periodic
    extension the FFT assumes has no jump: a drift of many radians over the
    clip would otherwise leak into every bin as a sawtooth.
    """

    whole_clip = True

    def __init__(self, low: float, high: float, fps: float):
        self.low, self.high, self.fps = low, high, fps

    def phase(self, increments, start, stop, pad_before=0, pad_after=0, *, scale=1.0, out=None):
        """As :meth:`TemporalFilter.phase`; the clip is taken as it is (the pads are ignored)."""
        return super()._padded_phase(increments, start, stop, 0, 0, scale, out)

    def _phase(self, increments, start, stop):
        xp, fft = namespace(increments), fft_module(increments)
        n = increments.shape[0] + 1
        phase = xp.cumulative_sum(increments, axis=0, dtype=xp.float64, include_initial=True)
        ramp = xp.reshape(xp.linspace(0.0, 1.0, n, dtype=xp.float64), (n,) + (1,) * (phase.ndim - 1))
        phase -= ramp * phase[-1, ...]
        mask = xp.asarray(ideal_mask(np.fft.rfftfreq(n, 1.0 / self.fps), self.low, self.high))
        spectrum = fft.rfft(phase, axis=0)
        spectrum *= xp.reshape(mask, (-1,) + (1,) * (phase.ndim - 1))
        return xp.astype(fft.irfft(spectrum, n=n, axis=0)[start:stop, ...], xp.float32)

    def response(self, freqs, fps):
        return ideal_mask(freqs, self.low, self.high)


def _increment_sos(sos) -> np.ndarray:
    """Second-order sections of ``H(z) / (1 - z^-1)`` for a filter ``H`` with a zero at DC.

    A section whose numerator vanishes at ``z = 1`` has
    ``b0 + b1 z^-1 + b2 z^-2 = (1 - z^-1)(b0 - b2 z^-1)``; dropping the
    factor turns a filter of the phase into one of its increments, with no
    running sum and no reference.
    """
    sos = np.array(sos, dtype=np.float64)
    sums = np.abs(sos[:, :3].sum(axis=1)) / np.abs(sos[:, :3]).sum(axis=1)
    index = int(np.argmin(sums))
    if sums[index] > 1e-9:
        raise ValueError("the filter has no zero at DC")
    b0, _, b2 = sos[index, :3]
    sos[index, :3] = (b0, -b2, 0.0)
    return sos


def _warmup(sos) -> int:
    """Samples after which the impulse response of ``sos`` holds less than
    :data:`IIR_TOLERANCE` of its L1 norm."""
    import scipy.signal

    impulse = np.zeros(IIR_MAX_HALO)
    impulse[0] = 1.0
    h = np.abs(scipy.signal.sosfilt(sos, impulse))
    tail = np.cumsum(h[::-1])[::-1]  # tail[n] = sum(|h[n:]|)
    beyond = np.nonzero(tail < IIR_TOLERANCE * tail[0])[0]
    if not len(beyond):
        raise ValueError("the IIR filter's response does not decay within "
                         f"{IIR_MAX_HALO} frames; widen the band")
    return int(beyond[0])


class IIRFilter(TemporalFilter):
    """A recursive filter of the phase, causal or forward-backward (zero-phase).

    Parameters
    ----------
    sos : ndarray (n, 6)
        Second-order sections of ``H``, with a zero at DC.
    zero_phase : bool
        Run ``H`` forwards then backwards (as :func:`scipy.signal.sosfiltfilt`;
        response ``|H|**2``, no delay), else forwards only (causal, as MIT's
        IIR filters; response ``H``).

    Notes
    -----
    Every block starts the filter afresh ``halo_before`` frames before its
    own first frame (and the backward pass ``halo_after`` after its last),
    with the state that a constant input would have (:func:`scipy.signal.sosfilt_zi`),
    instead of receiving the previous block's final state.  The halo is as
    long as the impulse response takes to fall to :data:`IIR_TOLERANCE` of its
    L1 norm (:func:`_warmup`), so the result equals the state-carried one
    within that tolerance, yet blocks need nothing from each other and run in
    parallel; a causal filter streams over hours with memory of one block.
    The forward pass filters the increments by ``H(z) / (1 - z^-1)``
    (:func:`_increment_sos`), whose output is ``H`` of the phase one frame on.
    """

    def __init__(self, sos, zero_phase: bool):
        import scipy.signal

        self.sos = np.asarray(sos, dtype=np.float64)
        self.increment_sos = _increment_sos(self.sos)
        self.zero_phase = bool(zero_phase)
        self.zi = scipy.signal.sosfilt_zi(self.increment_sos)
        self.halo_before = _warmup(self.increment_sos) + 1  # + the increment before a sample
        self.halo_after = _warmup(self.sos) if zero_phase else 0
        # fitted within the first and last blocks whatever the chunking (a block
        # has at least max(halo) frames of its own)
        self.prediction_window = max(self.halo_before, self.halo_after) - 1

    def _phase(self, increments, start, stop):
        import scipy.signal

        from .backend import to_numpy

        xp = namespace(increments)
        # the forward filter's output at increment i is H of the phase at sample i + 1
        first = start - self.halo_before
        last = stop + self.halo_after
        segment = to_numpy(increments[first : last - 1, ...]).astype(np.float64)
        zi = self.zi.reshape(self.zi.shape + (1,) * (segment.ndim - 1)) * segment[0]
        out, _ = scipy.signal.sosfilt(self.increment_sos, segment, axis=0, zi=zi)
        if self.zero_phase:
            reverse = out[::-1]
            zi = scipy.signal.sosfilt_zi(self.sos)
            zi = zi.reshape(zi.shape + (1,) * (segment.ndim - 1)) * reverse[0]
            out = scipy.signal.sosfilt(self.sos, reverse, axis=0, zi=zi)[0][::-1]
        out = out[start - first - 1 : stop - first - 1]
        return xp.asarray(out.astype(np.float32))

    def response(self, freqs, fps):
        import scipy.signal

        _, h = scipy.signal.sosfreqz(self.sos, worN=np.asarray(freqs, dtype=float), fs=fps)
        h = np.abs(h)
        return h**2 if self.zero_phase else h


def diff_iir_sos(low: float, high: float, fps: float) -> np.ndarray:
    """MIT's difference of two first-order IIR low-passes, as one section.

    MIT's ``differenceOfIIR`` runs ``l = (1 - r) l + r x`` with ``r`` from
    each band edge and outputs ``l_high - l_low``.  Here ``r = 1 - exp(-2 pi f / fps)``,
    the smoothing whose time constant is ``1 / (2 pi f)``: each low-pass is
    ``r / (1 - (1 - r) z^-1)``, and their difference has exactly zero DC gain.
    """
    r_high, r_low = (1.0 - math.exp(-2.0 * math.pi * f / fps) for f in (high, low))
    p_high, p_low = 1.0 - r_high, 1.0 - r_low
    b = np.array([r_high - r_low, r_low * p_high - r_high * p_low, 0.0])
    a = np.array([1.0, -(p_high + p_low), p_high * p_low])
    return np.concatenate([b, a])[None, :]


def make_filter(kind: str = "fir", low: float = 3.0, high: float = 7.0, fps: float = 60.0, *,
                taps: int | None = None, order: int = 2, causal: bool = False) -> TemporalFilter:
    """The temporal filter of ``daskmag magnify --filter``.

    Parameters
    ----------
    kind : {"fir", "ideal", "butter", "diff-iir", "window"}
        ``fir``: zero-phase Kaiser FIR (:func:`design_bandpass`, ``taps``
        long); ``ideal``: MIT's whole-clip FFT mask; ``butter``: Butterworth
        band-pass of ``order`` (zero-phase forward-backward, or ``causal``);
        ``diff-iir``: MIT's difference of first-order low-passes (causal);
        ``window``: the predecessor's sliding-window ideal filter over
        ``taps`` frames (default :data:`DEFAULT_WINDOW`), centred.
    low, high, fps : float
        Band edges and the filming rate, Hz.
    """
    if kind == "fir":
        return FIRFilter(design_bandpass(low, high, fps, taps))
    if kind == "window":
        return FIRFilter(window_taps(low, high, fps, DEFAULT_WINDOW if taps is None else taps))
    if kind == "ideal":
        return IdealFilter(low, high, fps)
    if kind == "butter":
        import scipy.signal

        sos = scipy.signal.butter(int(order), [low, high], btype="bandpass", output="sos", fs=fps)
        return IIRFilter(sos, zero_phase=not causal)
    if kind == "diff-iir":
        return IIRFilter(diff_iir_sos(low, high, fps), zero_phase=False)
    raise ValueError(f"unknown temporal filter {kind!r}: use one of {', '.join(FILTER_KINDS)}")


def reference_highpass(low: float, fps: float) -> FIRFilter:
    """``phase - reference`` for ``--attenuate-other``: a zero-phase FIR high-pass.

    MIT's attenuateOtherFreq takes the first frame's phase as the reference
    and sets ``phase = reference + (1 + alpha) * bandpass``.  A fixed frame
    cannot serve time blocks or long footage (a slow drift or pan would pile
    up against it), so the reference here is the phase's own low-pass: a
    Kaiser FIR (:data:`STOPBAND_DB`) with its -6 dB point at ``low / 2`` and
    its stop band from ``low``.  Motion slower than ``low / 2`` (drift, pans)
    is kept as filmed, motion in and above the band is replaced by
    ``(1 + alpha)`` times the band-pass.  Being a FIR of the phase with exact
    unit DC gain, its high-pass complement is computed from the increments
    like the band-pass, over a halo of its own half-length, so the result
    does not depend on the chunking.
    """
    numtaps = max(3, kaiser_length(STOPBAND_DB, low / (fps / 2.0))) | 1  # odd
    lowpass = windowed_sinc(numtaps, [(0.0, low / 2.0)], fps, kaiser_beta(STOPBAND_DB))
    highpass = -lowpass / lowpass.sum()
    highpass[numtaps // 2] += 1.0
    return FIRFilter(highpass)
