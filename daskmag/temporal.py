"""Temporal band-pass filters along the time axis (design and pure kernels)."""

from __future__ import annotations

import math

import numpy as np

from ._backend import array_module, fft_module

#: Stop-band attenuation of the default FIR design, in dB.  -60 dB keeps
#: out-of-band motion within 3% of unchanged even at alpha = 30.
STOPBAND_DB = 60.0


def default_taps(low: float, high: float, fps: float) -> int:
    """Number of taps of the default FIR band-pass for ``[low, high]`` Hz.

    The transition width is the smaller of the band's width and twice its
    lower edge (so that DC is in the stop band), and the Kaiser rule gives the
    length that reaches :data:`STOPBAND_DB` within it.  Always odd.
    """
    import scipy.signal  # imported here: workers run kernels that never need it

    nyquist = fps / 2.0
    width = min(high - low, 2.0 * low, 2.0 * (nyquist - high) if high < nyquist else high - low)
    numtaps, _ = scipy.signal.kaiserord(STOPBAND_DB, width / nyquist)
    numtaps = max(3, int(numtaps))
    return numtaps + 1 if numtaps % 2 == 0 else numtaps


def design_bandpass(low: float, high: float, fps: float, taps: int | None = None) -> np.ndarray:
    """Zero-phase (symmetric) FIR band-pass taps for ``[low, high]`` Hz at ``fps``.

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
    import scipy.signal

    if taps is None:
        taps = default_taps(low, high, fps)
    taps = int(taps)
    if taps % 2 == 0:
        taps += 1
    beta = scipy.signal.kaiser_beta(STOPBAND_DB)
    window = scipy.signal.get_window(("kaiser", beta), taps, fftbins=False)
    h = scipy.signal.firwin(taps, [low, high], pass_zero=False, window=("kaiser", beta), fs=fps)
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


def _burg(centred, order: int):
    """AR polynomial ``a`` (order, ...) by Burg's method, one model per column.

    Prediction is ``x[t] ~ -sum_k a[k-1] x[t-k]``.  Burg's reflection
    coefficients never exceed 1 in size, so the model is stable, and it fits
    sinusoids well from short records (unlike Yule-Walker's biased estimate).
    """
    xp = array_module(centred)
    columns = centred.reshape(centred.shape[0], -1)
    forward, backward = columns[1:].copy(), columns[:-1].copy()
    a = xp.zeros((order, columns.shape[1]), dtype=columns.dtype)
    tiny = xp.finfo(columns.dtype).tiny
    for m in range(order):
        numerator = -2.0 * xp.einsum("ij,ij->j", forward, backward)
        denominator = xp.einsum("ij,ij->j", forward, forward) + xp.einsum("ij,ij->j", backward, backward)
        k = numerator / (denominator + tiny)
        if m:
            a[:m] += k * a[m - 1 :: -1]
        a[m] = k
        new_forward = forward[1:] + k * backward[1:]
        backward = backward[:-1] + k * forward[:-1]
        forward = new_forward
    return a.reshape((order,) + centred.shape[1:])


def _forecast(series, steps: int, order: int, window: int):
    """``steps`` samples after ``series`` (n, ...) from an AR(order) fit per column
    to its last ``window`` samples."""
    xp = array_module(series)
    window = series[-window:].astype(xp.float32)
    mean = window.mean(axis=0)
    centred = window - mean
    a = _burg(centred, order)
    history = [centred[-1 - j] for j in range(order)]  # newest first
    out = xp.empty((steps,) + series.shape[1:], dtype=series.dtype)
    for step in range(steps):
        value = -a[0] * history[0]
        for j in range(1, order):
            value -= a[j] * history[j]
        out[step] = value + mean
        history = [value] + history[:-1]
    return out


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
    """
    xp = array_module(increments)
    n = increments.shape[0]
    window = min(int(window), n)
    if window < 2 * order + 2:
        widths = [(before, after)] + [(0, 0)] * (increments.ndim - 1)
        return xp.pad(increments, widths, mode="symmetric")
    parts = []
    if before:
        parts.append(_forecast(increments[::-1], before, order, window)[::-1])
    parts.append(increments)
    if after:
        parts.append(_forecast(increments, after, order, window))
    return xp.concatenate(parts, axis=0)


def filter_increments(increments, kernel, start: int, stop: int, pad_before: int = 0,
                      pad_after: int = 0):
    """Band-passed signal at samples ``[start, stop)`` from its increments.

    Parameters
    ----------
    increments : float array (T - 1, ...)
        ``d[i] = x[i + 1] - x[i]`` along axis 0, for samples ``0 .. T-1``.
    kernel : ndarray
        From :func:`increment_kernel`; its length is ``2 * H``.
    start, stop : int
        Samples to produce.  Increments ``[start - H, stop + H - 1)`` are
        used; those before 0 or after the end are supplied by ``pad_before`` /
        ``pad_after`` samples of linear prediction
        (:func:`extend_by_prediction`), so the first and last frames are
        filtered (and magnified) like the rest.

    Returns
    -------
    float array (stop - start, ...)
    """
    xp, fft = array_module(increments), fft_module(increments)
    half = len(kernel) // 2
    if pad_before or pad_after:
        # fit on (at most) one filter length of samples: the same in any time block
        window = min(len(kernel), PREDICTION_WINDOW)
        increments = extend_by_prediction(increments, pad_before, pad_after, window=window)
    first = start + pad_before - half
    last = stop + pad_before + half - 1
    if first < 0 or last > increments.shape[0]:
        raise ValueError("filter_increments needs len(kernel)//2 samples around [start, stop)")
    segment = increments[first:last]
    nfft = fft.next_fast_len(segment.shape[0], real=True)
    # correlation = convolution with the reversed kernel; 'valid' part only
    reversed_kernel = np.zeros(nfft)
    reversed_kernel[: len(kernel)] = kernel[::-1]
    kernel_f = xp.asarray(np.fft.rfft(reversed_kernel).astype(np.complex64))
    spectrum = fft.rfft(segment, n=nfft, axis=0)
    spectrum *= kernel_f.reshape((-1,) + (1,) * (segment.ndim - 1))
    out = fft.irfft(spectrum, n=nfft, axis=0)
    offset = len(kernel) - 1
    return out[offset : offset + (stop - start)]
