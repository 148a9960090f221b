"""Motion magnification at very high recording rates: decimate in time, magnify, interpolate the change back.

A narrow band far below the recording rate (24-26 Hz at 10,000 fps) needs a
band-pass of thousands of taps at the full rate (:func:`daskmag.kernels.temporal.default_taps`:
about 14,600 for that example), so every time block would carry a halo of
~7,300 frames each side.  Here instead:

1. the frames are low-passed along time and kept every ``q``-th frame
   (polyphase anti-aliasing FIR, :func:`scipy.signal.upfirdn`, zero phase,
   Kaiser design: flat to the band's high edge, 60 dB down from the decimated
   Nyquist frequency), at 16 bits whatever the input depth (the average
   of ``q`` frames has more precision than one);
2. the decimated clip is magnified at ``fps / q`` by the ordinary graph
   (:func:`daskmag.graph.motion.magnify_motion`), whose band-pass is ``q``
   times shorter;
3. the change it made (magnified minus decimated) is interpolated back to the
   full rate (the same FIR, polyphase) and added to **every original frame**.

So every input frame is output, motion outside the band (even above the
decimated Nyquist rate) is kept as filmed, and the pyramid work falls by
``q``.  The result is the full-rate method's up to the interpolation of a
band-limited change; see ``benchmarks/highrate.py`` for the measured cost.
"""

from __future__ import annotations

import math

import dask.array as da
import numpy as np

from ..errors import UserError
from ..settings import Band, MotionSettings
from . import as_frames

#: The decimated rate is at least this many times the band's high edge.
OVERSAMPLE = 8.0
#: Stop-band attenuation of the anti-aliasing / interpolation FIR, dB.
ALIAS_DB = 60.0
#: Working bytes of one block of the decimation and interpolation steps.
STEP_BYTES = 64 * 2**20


def decimation_factor(high: float, fps: float, oversample: float = OVERSAMPLE) -> int:
    """``q``: keep every ``q``-th frame, so that ``fps / q >= oversample * high`` (at least 1)."""
    return max(1, int(math.floor(fps / (oversample * high))))


def decimation_taps(q: int, high: float, fps: float) -> np.ndarray:
    """Zero-phase low-pass FIR (odd length ``2 m + 1``, ``m`` a multiple of ``q``, unit DC gain).

    Flat to ``high`` and :data:`ALIAS_DB` down from the decimated Nyquist
    frequency ``fps / (2 q)``: nothing aliases when decimating, and when the
    change is interpolated back its images (above that frequency) are
    removed, so motion outside the band is left as filmed.
    """
    import scipy.signal

    nyquist = fps / 2.0
    edge = fps / (2.0 * q)
    width = max(edge - high, 1e-6)
    numtaps, beta = scipy.signal.kaiserord(ALIAS_DB, width / nyquist)
    m = q * math.ceil((numtaps // 2) / q)
    taps = scipy.signal.firwin(2 * m + 1, (high + edge) / 2.0, window=("kaiser", beta), fs=fps)
    return taps / taps.sum()


def _rows_chunk(frames_in_block: int, width: int, channels: int) -> int:
    return max(1, STEP_BYTES // max(1, 4 * frames_in_block * width * channels))


def _decimate_block(block, taps, q, m, scale):
    """Every ``q``-th frame of the low-passed block (its ``m``-frame halos included), as uint16."""
    import scipy.signal

    core = block.shape[0] - 2 * m  # frames of the block's own
    filtered = scipy.signal.upfirdn(taps, block.astype(np.float32) * np.float32(scale), up=1, down=q, axis=0)
    keep = filtered[2 * m // q : 2 * m // q + math.ceil(core / q)]
    return np.clip(np.rint(keep), 0, 65535).astype(np.uint16)


def _interpolate_block(change, taps, q, m, d, lengths, block_info=None):
    """The low-rate change (``d`` samples of halo each side) at the full rate: ``lengths[i]`` frames."""
    import scipy.signal

    index = block_info[None]["chunk-location"][0]
    length = lengths[index]
    full = scipy.signal.upfirdn(taps * q, change, up=q, down=1, axis=0)
    return full[m + d * q : m + d * q + length]


def magnify_motion_decimated(video, alpha: float = 10.0, low: float | None = None, high: float | None = None,
                             fps=None, *, factor: int | None = None, settings: MotionSettings | None = None,
                             time_chunk: int | None = None, min_blocks: int = 1) -> da.Array:
    """Phase-based motion magnification of a narrow band at a high recording rate, lazily.

    Parameters
    ----------
    video : Video or array-like (T, H, W, C) uint8 or uint16
    alpha, low, high, fps
        As :func:`daskmag.graph.motion.magnify_motion`; ``fps`` is the
        recording rate.
    factor : int, optional
        Keep every ``factor``-th frame for the magnification (default:
        :func:`decimation_factor`; 1 runs the full-rate method).
    settings : MotionSettings, optional
        Filter, pyramid, sigma... of the magnification at the decimated rate.
    time_chunk : int, optional
        Frames per block of the decimated clip.

    Returns
    -------
    dask.array.Array
        Same shape, dtype and frames as the input: each frame plus the
        interpolated change.

    Raises
    ------
    UserError
        As :func:`~daskmag.graph.motion.magnify_motion`, or a ``factor`` that
        puts the band above the decimated Nyquist rate.
    """
    from .motion import magnify_motion

    frames, fps = as_frames(video, fps)
    fps = float(fps)
    Band(low, high, fps).at_rate(fps)  # checks the band at the full rate
    q = int(factor) if factor else decimation_factor(high, fps)
    if q < 1 or fps / q <= 2.5 * high:
        raise UserError(f"decimating {fps:g} fps by {q} leaves {fps / q:g} fps, too slow for a band up to "
                        f"{high:g} Hz (keep fps / q above {2.5 * high:g})")
    settings = settings or MotionSettings(alpha=alpha)
    if q == 1:
        return magnify_motion(frames, low=low, high=high, fps=fps, settings=settings, time_chunk=time_chunk,
                              min_blocks=min_blocks)
    n_frames, height, width, channels = frames.shape
    taps = decimation_taps(q, high, fps)
    m = len(taps) // 2
    scale = 257.0 if frames.dtype == np.uint8 else 1.0  # the decimated clip is 16-bit
    # 1. decimate: blocks of a multiple of q frames, spatial strips (the filter is per pixel)
    block = q * max(1, math.ceil(max(4 * m, 256) / q))
    time_chunks = [min(block, n_frames - s) for s in range(0, n_frames, block)]
    if len(time_chunks) > 1 and time_chunks[-1] < m:  # overlap needs blocks at least as long as the halo
        time_chunks[-2:] = [time_chunks[-2] + time_chunks[-1]]
    time_chunks = tuple(time_chunks)
    rows = _rows_chunk(block + 2 * m, width, channels)
    aligned = frames.rechunk((time_chunks, rows, width, channels))
    extended = da.overlap.overlap(aligned, depth={0: m, 1: 0, 2: 0, 3: 0},
                                  boundary={0: "nearest", 1: "none", 2: "none", 3: "none"})
    low_chunks = tuple(math.ceil(c / q) for c in time_chunks)
    decimated = extended.map_blocks(_decimate_block, taps=taps, q=q, m=m, scale=scale,
                                    chunks=(low_chunks,) + aligned.chunks[1:], dtype=np.uint16,
                                    meta=np.empty((0, 0, 0, 0), np.uint16), token="decimate")
    # 2. magnify at the decimated rate (the ordinary graph and its own block plan)
    magnified = magnify_motion(decimated, low=low, high=high, fps=fps / q, settings=settings,
                               time_chunk=time_chunk, min_blocks=min_blocks)
    change = (magnified.astype(np.float32) - decimated.astype(np.float32)) / np.float32(scale)
    # 3. interpolate the change back to every frame and add it
    change = change.rechunk((low_chunks, rows, width, channels))
    d = math.ceil(m / q) + 1
    extended = da.overlap.overlap(change, depth={0: d, 1: 0, 2: 0, 3: 0},
                                  boundary={0: "nearest", 1: "none", 2: "none", 3: "none"})
    full = extended.map_blocks(_interpolate_block, taps=taps, q=q, m=m, d=d, lengths=time_chunks,
                               dtype=np.float32, chunks=aligned.chunks, meta=np.empty((0, 0, 0, 0), np.float32),
                               token="interpolate-change")
    top = np.iinfo(frames.dtype).max
    out = da.clip(da.round(aligned.astype(np.float32) + full), 0, top).astype(frames.dtype)
    return out.rechunk({1: -1, 2: -1})
