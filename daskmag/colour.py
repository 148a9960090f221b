"""Linear (Eulerian) colour magnification: array kernels and the lazy Dask graph.

Wu, Rubinstein, Shih, Guttag, Durand & Freeman, "Eulerian Video Magnification
for Revealing Subtle Changes in the World", SIGGRAPH 2012, as MIT's
``amplify_spatial_Gdown_temporal_ideal``: every frame's YIQ colour is blurred
and decimated to level ``L`` of a Gaussian pyramid, that small stack is
band-passed along time, multiplied by ``alpha`` (I and Q also by
``chroma_attenuation``), brought back to full size and added to the frame.  A
small colour change in the band (the pulse in a face) becomes ``1 + alpha``
times as large; no motion is added.

Two departures from MIT's code: the ideal band-pass (an FFT of the whole
clip) is the zero-phase FIR of :func:`daskmag.temporal.design_bandpass`, so
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

import dask.array as da
import numpy as np

from ._backend import array_module, fft_module
from .color import RGB_TO_YIQ, YIQ_TO_RGB, to_uint8
from .errors import UserError
from .magnify import BLOCK_BYTES, _as_frames, check_band, plan_time_chunks
from .temporal import design_bandpass, extend_by_prediction

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
    xp = array_module(frames)
    n, size_r, size_c, channels = frames.shape
    out_r, out_c = rows.shape[0], cols.shape[0]
    rows, cols = xp.asarray(rows, dtype=xp.float32), xp.asarray(cols, dtype=xp.float32)

    def along_rows(x):
        r_in, c_in = x.shape[1:3]
        return xp.matmul(rows, x.reshape(n, r_in, c_in * channels)).reshape(n, out_r, c_in, channels)

    def along_cols(x):
        r_in, c_in = x.shape[1:3]
        return xp.matmul(cols, x.reshape(n * r_in, c_in, channels)).reshape(n, r_in, out_c, channels)

    if out_r * size_r * size_c + out_c * size_c * out_r <= out_c * size_c * size_r + out_r * size_r * out_c:
        return along_cols(along_rows(frames))
    return along_rows(along_cols(frames))


def _batches(n_frames: int, frame_shape) -> tuple[range, int]:
    """Starts and length of frame batches whose full-size float32 copy fits
    :data:`BATCH_BYTES`."""
    step = max(1, BATCH_BYTES // max(1, 4 * math.prod(frame_shape)))
    return range(0, n_frames, step), step


def reduce_to_yiq(rgb, level: int):
    """Gaussian-pyramid level ``level`` of uint8 RGB frames, in YIQ.

    Parameters
    ----------
    rgb : uint8 array (T, H, W, 3)
        NumPy or CuPy.
    level : int
        Number of blur-and-decimate steps (0: full size).

    Returns
    -------
    float32 array (T, h, w, 3)
        Y, I, Q in grey levels (Y in [0, 255]); ``h, w`` from :func:`level_sizes`.
    """
    xp = array_module(rgb)
    n, height, width, _ = rgb.shape
    to_yiq = xp.asarray(RGB_TO_YIQ.T.astype(np.float32))
    out = xp.empty((n, level_sizes(height, level)[-1], level_sizes(width, level)[-1], 3), dtype=xp.float32)
    starts, step = _batches(n, rgb.shape[1:])
    for i in starts:
        small = rgb[i : i + step].astype(xp.float32)
        if level:
            small = _separable(small, reduce_matrix(height, level), reduce_matrix(width, level))
        # colour is converted after reduction: both are linear, so they commute
        out[i : i + step] = small @ to_yiq
    return out


def channel_gains(alpha: float, chroma_attenuation: float = 1.0) -> np.ndarray:
    """Matrix (3, 3) from a band-passed YIQ change to the RGB change to add.

    ``YIQ_TO_RGB @ diag(alpha, alpha * c, alpha * c)``: Y is multiplied by
    ``alpha``, I and Q by ``alpha * chroma_attenuation``, and the result is
    expressed in RGB so that it can be added to the frames directly.
    """
    scale = np.array([1.0, chroma_attenuation, chroma_attenuation]) * alpha
    return YIQ_TO_RGB * scale[None, :]


def bandpass_change(yiq, taps, gains, start: int, stop: int, pad_before: int = 0, pad_after: int = 0):
    """Amplified, band-passed colour change of frames ``[start, stop)``, in RGB.

    Parameters
    ----------
    yiq : float array (T, h, w, 3)
        Reduced frames (:func:`reduce_to_yiq`) of a block, temporal halo included.
    taps : ndarray
        Symmetric FIR band-pass taps (odd length ``2 H + 1``, zero DC gain).
    gains : ndarray (3, 3)
        From :func:`channel_gains`.
    start, stop : int
        Frames to produce; ``H`` frames on each side must be in ``yiq`` or be
        supplied by ``pad_before`` / ``pad_after`` frames of linear prediction
        (:func:`daskmag.temporal.extend_by_prediction`) at the clip's ends.

    Returns
    -------
    float32 array (stop - start, h, w, 3)
        RGB change in grey levels, at the reduced size.
    """
    xp, fft = array_module(yiq), fft_module(yiq)
    half = len(taps) // 2
    series = yiq.astype(xp.float64)
    if pad_before or pad_after:
        # Fitted on the 2 H frames at the clip's end: every block that ends
        # the clip holds at least those (plan_time_chunks), so the prediction
        # does not depend on the chunking.
        series = extend_by_prediction(series, pad_before, pad_after, window=2 * half)
    segment = series[start + pad_before - half : stop + pad_before + half]
    if segment.shape[0] != stop - start + 2 * half:
        raise ValueError("bandpass_change needs len(taps)//2 frames around [start, stop)")
    # circular convolution (the taps are symmetric, so this is the FIR) over
    # at least the segment's length: its last stop - start samples are the
    # linear ('valid') ones
    nfft = fft.next_fast_len(segment.shape[0], real=True)
    response = xp.asarray(np.fft.rfft(np.asarray(taps, dtype=np.float64), nfft))
    spectrum = fft.rfft(segment, n=nfft, axis=0)
    spectrum *= response.reshape((-1,) + (1,) * (segment.ndim - 1))
    filtered = fft.irfft(spectrum, n=nfft, axis=0)[2 * half : segment.shape[0]]
    return (filtered @ xp.asarray(gains.T)).astype(xp.float32)


def add_expanded(rgb, change, level: int):
    """Expand a reduced RGB change to full size and add it to uint8 frames.

    Parameters
    ----------
    rgb : uint8 array (T, H, W, 3)
    change : float array (T, h, w, 3)
        From :func:`bandpass_change`, grey levels.
    level : int
        The level ``change`` was reduced to.

    Returns
    -------
    uint8 array (T, H, W, 3)
        Clipped to [0, 255] and rounded.
    """
    xp = array_module(rgb)
    n, height, width, _ = rgb.shape
    out = xp.empty(rgb.shape, dtype=xp.uint8)
    starts, step = _batches(n, rgb.shape[1:])
    for i in starts:
        frames = rgb[i : i + step].astype(xp.float32)
        part = change[i : i + step].astype(xp.float32, copy=False)
        if level:
            part = _separable(part, expand_matrix(height, level), expand_matrix(width, level))
        frames += part
        out[i : i + step] = to_uint8(frames)
    return out


def magnify_colour(video, alpha: float, low: float, high: float, fps=None, *, level: int = 4,
                   chroma_attenuation: float = 1.0, taps: int | None = None,
                   time_chunk: int | None = None, min_blocks: int = 1,
                   block_bytes: int = BLOCK_BYTES) -> da.Array:
    """Linear colour magnification (Eulerian video magnification), lazily.

    Parameters
    ----------
    video : Video or array-like (T, H, W, 3) uint8
        From :func:`daskmag.open_video`, or any NumPy/Dask array of RGB frames.
    alpha : float
        Magnification: a colour change in the band becomes ``1 + alpha``
        times as large (``alpha < 0`` attenuates it).
    low, high : float
        Temporal pass band in Hz (e.g. 0.8-2 Hz for a pulse of 48-120 bpm).
    fps : float, optional
        The rate the frames were *filmed* at (default: the video's own).
    level : int
        Gaussian-pyramid level the colour is averaged to before filtering
        (each level halves the size; MIT use 4 to 6).  Higher levels average
        more pixels (less noise amplified) but localise the change less.
    chroma_attenuation : float
        Extra factor, in [0, 1] usually, on the amplification of I and Q
        (the chrominance); 0 amplifies luminance only.
    taps : int, optional
        Length of the zero-phase FIR band-pass (default from the band, see
        :func:`daskmag.temporal.default_taps`); the temporal halo is ``taps // 2``.
    time_chunk : int, optional
        Frames per block (default: from ``block_bytes``; at least the halo).
    min_blocks : int
        Split short videos into at least this many blocks (for parallelism).
    block_bytes : int
        Working-memory budget of one block, as :func:`daskmag.magnify_motion`.

    Returns
    -------
    dask.array.Array
        (T, H, W, 3) uint8, same frames as the input; nothing is computed yet.

    Notes
    -----
    Three tasks per time block: reduce the frames (``colour-reduce``),
    band-pass the small YIQ stack with a halo of ``taps // 2`` small frames
    from each neighbour (``colour-bandpass``), expand and add
    (``colour-magnify``).  At the clip's ends the small stack is continued by
    linear prediction, so the first and last frames are magnified like the
    others.  Borders are reflected: a colour change at the frame's edge is
    not carried over to the opposite edge.  The amplified change is smooth,
    so its rounding to uint8 is the same over whole regions: a region's mean
    colour can be off by a few hundredths of a grey level at any frequency.
    """
    frames, fps = _as_frames(video, fps)
    fps = float(fps)
    check_band(alpha, low, high, fps, taps)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise UserError(f"expected (frames, height, width, 3) RGB video, got shape {frames.shape}")
    if frames.dtype != np.uint8:
        raise UserError(f"expected uint8 frames, got {frames.dtype}")
    n_frames, height, width, _ = frames.shape
    check_colour(level, chroma_attenuation, height, width)
    band_taps = design_bandpass(low, high, fps, taps)
    halo = len(band_taps) // 2
    chunks = plan_time_chunks(n_frames, height * width, halo, time_chunk=time_chunk,
                              min_blocks=min_blocks, block_bytes=block_bytes)
    frames = frames.rechunk((chunks, height, width, 3))
    small = (level_sizes(height, level)[-1], level_sizes(width, level)[-1], 3)
    float_meta = np.empty((0, 0, 0, 0), dtype=np.float32)
    yiq = frames.map_blocks(reduce_to_yiq, level=level, chunks=(chunks,) + tuple((s,) for s in small),
                            dtype=np.float32, meta=float_meta, token="colour-reduce")
    depth = {0: halo if len(chunks) > 1 else 0, 1: 0, 2: 0, 3: 0}
    change = da.overlap.overlap(yiq, depth=depth, boundary="none").map_blocks(
        _bandpass_chunk,
        taps=band_taps,
        gains=channel_gains(float(alpha), float(chroma_attenuation)),
        halo=halo,
        chunks=yiq.chunks,
        dtype=np.float32,
        meta=float_meta,
        token="colour-bandpass",
    )
    return da.map_blocks(add_expanded, frames, change, level=level, chunks=frames.chunks,
                         dtype=np.uint8, meta=np.empty((0, 0, 0, 0), dtype=np.uint8),
                         token="colour-magnify")


def check_colour(level: int, chroma_attenuation: float, height: int, width: int):
    """Raise :class:`UserError` with a one-line reason if the colour settings
    are unusable for frames of ``width`` x ``height`` (callable before any
    frame is read, e.g. with :func:`daskmag.probe`'s size)."""
    if isinstance(level, bool) or not isinstance(level, (int, np.integer)) or level < 0:
        raise UserError(f"the pyramid level must be a whole number from 0, got {level!r}")
    if min(height, width) <= 2**level:
        raise UserError(
            f"frames of {width}x{height} are too small for pyramid level {level} "
            f"(need more than {2**level} pixels each way)"
        )
    if chroma_attenuation is None or not math.isfinite(chroma_attenuation) or chroma_attenuation < 0:
        raise UserError(f"chroma attenuation must be a number from 0 (usually up to 1), got {chroma_attenuation}")


def _bandpass_chunk(block, taps, gains, halo, block_info=None):
    index = block_info[None]["chunk-location"][0]
    count = block_info[None]["num-chunks"][0]
    first, last = index == 0, index == count - 1
    start = 0 if first else halo
    stop = block.shape[0] - (0 if last else halo)
    return bandpass_change(block, taps, gains, start, stop,
                           pad_before=halo if first else 0, pad_after=halo if last else 0)
