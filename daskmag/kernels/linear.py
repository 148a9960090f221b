"""Linear (Eulerian) colour magnification: pure array kernels (NumPy or CuPy).

Wu, Rubinstein, Shih, Guttag, Durand & Freeman, "Eulerian Video Magnification
for Revealing Subtle Changes in the World", SIGGRAPH 2012, as MIT's
``amplify_spatial_Gdown_temporal_ideal``: every frame's YIQ colour is blurred
and decimated to level ``L`` of a Gaussian pyramid, that small stack is
band-passed along time, multiplied by ``alpha`` (I and Q also by
``chroma_attenuation``), brought back to full size and added to the frame.  A
small colour change in the band (the pulse in a face) becomes ``1 + alpha``
times as large; no motion is added.

Two departures from MIT's code: the ideal band-pass (an FFT of the whole
clip) is the zero-phase FIR of :func:`daskmag.kernels.temporal.design_bandpass`, so
the clip can be cut into time blocks, and the way back to full size is the
pyramid's own expand (zero insertion and the same binomial blur) instead of
``imresize``.

Every step but the temporal filter is a linear map over space or over the
three channels, and those commute.  So frames are reduced in RGB and turned
into YIQ only at low resolution, and the change goes back to RGB before it is
expanded: no full-size YIQ frame is ever formed, and only the small stack
crosses block borders (the temporal halo), never full-size frames.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from .backend import namespace
from .colourspace import RGB_TO_YIQ, YIQ_TO_RGB, to_dtype
from .temporal import FIRFilter, TemporalFilter, extend_by_prediction

#: 5-tap binomial blur of the Gaussian pyramid (MIT's and pyrTools' ``binom5``).
BINOMIAL5 = np.array([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0

#: Bytes of full-size float32 temporaries per step of the spatial kernels.
BATCH_BYTES = 64 * 2**20


def level_sizes(size: int, level: int) -> list[int]:
    """Lengths of one image axis at pyramid levels ``0 .. level`` (halved, rounded up)."""
    sizes = [int(size)]
    for _ in range(level):
        sizes.append((sizes[-1] + 1) // 2)
    return sizes


def _blur_rows(x, weights):
    """Convolve the rows (axis 0) of ``x`` with a 5-tap kernel, reflecting at
    the ends without repeating the edge sample (pyrTools' ``reflect1``), which
    keeps a constant image constant."""
    padded = np.pad(x, ((2, 2), (0, 0)), mode="reflect")
    n = x.shape[0]
    return sum(w * padded[k : k + n] for k, w in enumerate(weights))


@functools.lru_cache(maxsize=32)
def reduce_matrix(size: int, level: int) -> np.ndarray:
    """Linear map (size_L, size) that blurs and decimates one axis ``level`` times.

    Built by pushing the identity through the pyramid's REDUCE step
    (binomial blur, reflected borders, keep every other sample), so applying
    it along rows and columns gives exactly Gaussian-pyramid level ``level``
    (pyrTools' ``blurDn``, as MIT's ``blurDnClr``).  Rows sum to 1.  Dense on
    purpose: two matrix products per frame do all the levels at once, on
    NumPy or CuPy alike.
    """
    matrix = np.eye(size)
    for _ in range(level):
        matrix = _blur_rows(matrix, BINOMIAL5)[::2]
    matrix.setflags(write=False)
    return matrix


@functools.lru_cache(maxsize=32)
def expand_matrix(size: int, level: int) -> np.ndarray:
    """Linear map (size, size_L) that expands one axis back from level ``level``.

    Each EXPAND step puts the samples at the even positions of the finer
    axis, zeros between, and blurs with twice the binomial kernel (reflected
    borders), as pyrTools' ``upBlur``: smooth, and a constant stays constant.
    """
    sizes = level_sizes(size, level)
    matrix = np.eye(sizes[-1])
    for finer in reversed(sizes[:-1]):
        spread = np.zeros((finer, matrix.shape[1]))
        spread[::2] = matrix
        matrix = _blur_rows(spread, 2.0 * BINOMIAL5)
    matrix.setflags(write=False)
    return matrix


def _separable(frames, rows, cols):
    """Apply ``rows`` (r, R) along axis 1 and ``cols`` (c, C) along axis 2 of
    ``frames`` (n, R, C, 3), contracting first along whichever axis makes the
    cheaper pair of matrix products."""
    xp = namespace(frames)
    n, size_r, size_c, channels = frames.shape
    out_r, out_c = rows.shape[0], cols.shape[0]
    rows, cols = xp.asarray(rows.astype(np.float32)), xp.asarray(cols.astype(np.float32))

    def along_rows(x):
        r_in, c_in = x.shape[1:3]
        return xp.reshape(xp.matmul(rows, xp.reshape(x, (n, r_in, c_in * channels))), (n, out_r, c_in, channels))

    def along_cols(x):
        r_in, c_in = x.shape[1:3]
        return xp.reshape(xp.matmul(cols, xp.reshape(x, (n * r_in, c_in, channels))), (n, r_in, out_c, channels))

    if out_r * size_r * size_c + out_c * size_c * out_r <= out_c * size_c * size_r + out_r * size_r * out_c:
        return along_cols(along_rows(frames))
    return along_rows(along_cols(frames))


def _batches(n_frames: int, frame_shape) -> tuple[range, int]:
    """Starts and length of frame batches whose full-size float32 copy fits
    :data:`BATCH_BYTES`."""
    step = max(1, BATCH_BYTES // max(1, 4 * math.prod(frame_shape)))
    return range(0, n_frames, step), step


def reduce_to_yiq(rgb, level: int):
    """Gaussian-pyramid level ``level`` of frames, in YIQ (mono: the grey level itself).

    Parameters
    ----------
    rgb : uint8 or uint16 array (T, H, W, C)
        NumPy or CuPy; ``C`` 3 (RGB) or 1 (mono, which has no I and Q).
    level : int
        Number of blur-and-decimate steps (0: full size).

    Returns
    -------
    float32 array (T, h, w, C)
        Y, I, Q in grey levels of the input's dtype (Y in [0, 255] for
        uint8); ``h, w`` from :func:`level_sizes`.
    """
    xp = namespace(rgb)
    n, height, width, channels = rgb.shape
    to_yiq = xp.asarray(RGB_TO_YIQ.T.astype(np.float32)) if channels == 3 else None
    out = xp.empty((n, level_sizes(height, level)[-1], level_sizes(width, level)[-1], channels), dtype=xp.float32)
    starts, step = _batches(n, rgb.shape[1:])
    for i in starts:
        j = min(i + step, n)
        small = xp.astype(rgb[i:j, ...], xp.float32)
        if level:
            small = _separable(small, reduce_matrix(height, level), reduce_matrix(width, level))
        # colour is converted after reduction: both are linear, so they commute
        out[i:j, ...] = small @ to_yiq if to_yiq is not None else small
    return out


def channel_gains(alpha: float, chroma_attenuation: float = 1.0, channels: int = 3) -> np.ndarray:
    """Matrix (C, C) from a band-passed YIQ change to the RGB change to add.

    ``YIQ_TO_RGB @ diag(alpha, alpha * c, alpha * c)``: Y is multiplied by
    ``alpha``, I and Q by ``alpha * chroma_attenuation``, and the result is
    expressed in RGB so that it can be added to the frames directly.  Mono
    (``channels=1``): ``[[alpha]]``.
    """
    if channels == 1:
        return np.array([[float(alpha)]])
    scale = np.array([1.0, chroma_attenuation, chroma_attenuation]) * alpha
    return YIQ_TO_RGB * scale[None, :]


def bandpass_change(yiq, temporal, gains, start: int, stop: int, pad_before: int = 0, pad_after: int = 0):
    """Amplified, band-passed colour change of frames ``[start, stop)``, in RGB.

    The band-pass is the same temporal filter as motion magnification's
    (:class:`daskmag.kernels.temporal.FIRFilter`), applied to the frame to
    frame changes of the small YIQ stack: with taps that sum to zero that is
    exactly the FIR of the stack itself.  At the clip's ends the stack is
    continued by the same linear prediction
    (:func:`daskmag.kernels.temporal.extend_by_prediction`), fitted on the
    filter's own prediction window.

    Parameters
    ----------
    yiq : float array (T, h, w, 3)
        Reduced frames (:func:`reduce_to_yiq`) of a block, temporal halo included.
    temporal : TemporalFilter or ndarray
        The band-pass, or symmetric FIR taps (odd length ``2 H + 1``, zero DC gain).
    gains : ndarray (3, 3)
        From :func:`channel_gains`.
    start, stop : int
        Frames to produce; ``halo_before`` frames before and ``halo_after``
        after must be in ``yiq`` or be supplied by ``pad_before`` /
        ``pad_after`` frames of linear prediction at the clip's ends
        (:meth:`daskmag.kernels.temporal.TemporalFilter.phase`).

    Returns
    -------
    float32 array (stop - start, h, w, 3)
        RGB change in grey levels, at the reduced size.

    Raises
    ------
    ValueError
        Too few frames around ``[start, stop)``.
    """
    xp = namespace(yiq)
    if not isinstance(temporal, TemporalFilter):
        temporal = FIRFilter(temporal, prediction_cap=None)
    series = xp.astype(yiq, xp.float64)
    if pad_before or pad_after:
        # The colour itself is continued (not its changes, as the phase is):
        # it has a level to return to, which its changes lack.  Fitted on one
        # filter length at the clip's end, the window the filter itself reports.
        series = extend_by_prediction(series, pad_before, pad_after, window=temporal.prediction_window)
        start, stop = start + pad_before, stop + pad_before
    filtered = temporal.phase(series[1:, ...] - series[:-1, ...], start, stop)
    return xp.astype(filtered @ xp.asarray(gains.T), xp.float32)


def add_expanded(rgb, change, level: int):
    """Expand a reduced change to full size and add it to the frames.

    Parameters
    ----------
    rgb : uint8 or uint16 array (T, H, W, C)
    change : float array (T, h, w, C)
        From :func:`bandpass_change`, grey levels.
    level : int
        The level ``change`` was reduced to.

    Returns
    -------
    array like ``rgb``
        Clipped to the dtype's range and rounded.
    """
    xp = namespace(rgb)
    n, height, width, _ = rgb.shape
    out = xp.empty(rgb.shape, dtype=rgb.dtype)
    starts, step = _batches(n, rgb.shape[1:])
    for i in starts:
        j = min(i + step, n)
        frames = xp.astype(rgb[i:j, ...], xp.float32)
        part = xp.astype(change[i:j, ...], xp.float32, copy=False)
        if level:
            part = _separable(part, expand_matrix(height, level), expand_matrix(width, level))
        frames += part
        out[i:j, ...] = to_dtype(frames, rgb.dtype)
    return out
