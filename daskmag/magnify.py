"""Lazy, Dask-parallel motion magnification: argument checks, overlap depth, graph.

The graph is one task per time block: the block's frames plus a halo of
``taps // 2`` frames on each side (``dask.array.overlap``) go through the
fused kernel :func:`daskmag.phase.magnify_block` (frames -> bands -> phase ->
filter -> collapse -> frames), which returns only the block's own frames.
No band is ever held whole and nothing is rechunked into whole-length time
columns, so memory depends on the block size, never on the video's length.
"""

from __future__ import annotations

import math
from fractions import Fraction

import dask
import dask.array as da
import numpy as np

from .color import luma
from .errors import UserError
from .io import Video
from .phase import magnify_block
from .pyramid import PyramidSpec, decompose, pyramid_filters
from .temporal import design_bandpass

#: Default working-memory budget of one time block (one task), in bytes.
BLOCK_BYTES = 1 * 2**30
#: Working bytes per pixel per frame of a block: the phase increments of all
#: bands (~3.3 coefficients per pixel, float16 in large blocks), the phase
#: shifts of the core frames, and the RGB frames in and out.
BYTES_PER_PIXEL_FRAME = 16


def check_band(alpha: float, low: float, high: float, fps: float, taps: int | None = None):
    """Raise :class:`UserError` with a one-line reason if the settings are unusable."""
    if alpha is None or not math.isfinite(alpha):
        raise UserError(f"alpha must be a finite number, got {alpha}")
    if not (math.isfinite(low) and math.isfinite(high)):
        raise UserError("the band edges must be finite numbers")
    if low <= 0:
        raise UserError(f"the low frequency must be above 0 Hz, got {low:g}")
    if low >= high:
        raise UserError(f"the low frequency ({low:g} Hz) must be below the high one ({high:g} Hz)")
    if not fps or not math.isfinite(fps) or fps <= 0:
        raise UserError(f"the frame rate must be positive, got {fps}")
    nyquist = fps / 2.0
    if high >= nyquist:
        raise UserError(
            f"the band {low:g}-{high:g} Hz reaches the Nyquist frequency ({nyquist:g} Hz) of "
            f"{fps:g} fps; if the footage was filmed faster than it is stored, give the real "
            f"rate with --fps (e.g. --fps 600)"
        )
    if taps is not None and taps < 3:
        raise UserError(f"the temporal filter needs at least 3 taps, got {taps}")


def plan_time_chunks(n_frames: int, frame_pixels: int, halo: int, *, time_chunk: int | None = None,
                     min_blocks: int = 1, block_bytes: int = BLOCK_BYTES) -> tuple[int, ...]:
    """Frames per time block.

    By default each block (with its two halos) fits ``block_bytes``, holds at
    least ``halo`` frames (so that only direct neighbours overlap) and the
    video is split into at least ``min_blocks`` blocks when it is short.  A
    trailing block shorter than the halo joins the one before it.
    """
    if time_chunk is None:
        fit = block_bytes // max(1, BYTES_PER_PIXEL_FRAME * frame_pixels) - 2 * halo
        time_chunk = min(max(fit, halo, 8), max(1, math.ceil(n_frames / max(1, min_blocks))))
    time_chunk = max(int(time_chunk), halo, 1)
    chunks = [time_chunk] * (n_frames // time_chunk)
    remainder = n_frames - sum(chunks)
    if remainder:
        if chunks and remainder < halo:
            chunks[-1] += remainder
        else:
            chunks.append(remainder)
    return tuple(chunks)


def _as_frames(video, fps):
    if isinstance(video, Video):
        return video.frames, (fps if fps is not None else video.fps)
    if not isinstance(video, da.Array):
        video = da.from_array(np.asarray(video))
    if fps is None:
        raise UserError("give fps for a bare array")
    return video, fps


def magnify_motion(video, alpha: float, low: float, high: float, fps=None, *, taps: int | None = None,
                   pyramid: PyramidSpec | None = None, time_chunk: int | None = None,
                   min_blocks: int = 1, block_bytes: int = BLOCK_BYTES) -> da.Array:
    """Phase-based motion magnification, lazily.

    Parameters
    ----------
    video : Video or array-like (T, H, W, 3) uint8
        From :func:`daskmag.open_video`, or any NumPy/Dask array of RGB frames.
    alpha : float
        Magnification: motion in the band becomes ``1 + alpha`` times as large
        (``alpha < 0`` attenuates it).
    low, high : float
        Temporal pass band in Hz.
    fps : float, optional
        The rate the frames were *filmed* at (default: the video's own).
    taps : int, optional
        Length of the zero-phase FIR band-pass (default from the band, see
        :func:`daskmag.temporal.default_taps`); the temporal halo is ``taps // 2``.
    pyramid : PyramidSpec, optional
        Default: octave bandwidth, 4 orientations, as many levels as fit.
    time_chunk : int, optional
        Frames per block (default: from ``block_bytes``).
    min_blocks : int
        Split short videos into at least this many blocks (for parallelism).

    Returns
    -------
    dask.array.Array
        (T, H, W, 3) uint8, same frames as the input; nothing is computed yet.

    Notes
    -----
    At the clip's ends the phase signal is continued by odd reflection (as
    :func:`scipy.signal.filtfilt` pads), so the first and last frames are
    magnified like the others and every input frame is in the output.
    """
    frames, fps = _as_frames(video, fps)
    fps = float(fps)
    check_band(alpha, low, high, fps, taps)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise UserError(f"expected (frames, height, width, 3) RGB video, got shape {frames.shape}")
    if frames.dtype != np.uint8:
        raise UserError(f"expected uint8 frames, got {frames.dtype}")
    spec = pyramid or PyramidSpec()
    n_frames, height, width, _ = frames.shape
    if min(height, width) < 16:
        raise UserError(f"frames of {width}x{height} are too small for a pyramid (need 16x16)")
    band_taps = design_bandpass(low, high, fps, taps)
    halo = len(band_taps) // 2
    chunks = plan_time_chunks(n_frames, height * width, halo, time_chunk=time_chunk,
                              min_blocks=min_blocks, block_bytes=block_bytes)
    frames = frames.rechunk((chunks, height, width, 3))
    depth = {0: halo if len(chunks) > 1 else 0, 1: 0, 2: 0, 3: 0}
    extended = da.overlap.overlap(frames, depth=depth, boundary="none")
    return extended.map_blocks(
        _magnify_chunk,
        taps=band_taps.astype(np.float32),
        alpha=float(alpha),
        spec=spec,
        halo=halo,
        chunks=frames.chunks,
        dtype=np.uint8,
        meta=np.empty((0, 0, 0, 0), dtype=np.uint8),
        token="magnify-motion",
    )


def _magnify_chunk(block, taps, alpha, spec, halo, block_info=None):
    index = block_info[None]["chunk-location"][0]
    count = block_info[None]["num-chunks"][0]
    first, last = index == 0, index == count - 1
    start = 0 if first else halo
    stop = block.shape[0] - (0 if last else halo)
    return magnify_block(
        block, taps, alpha, spec, start, stop,
        pad_before=halo if first else 0, pad_after=halo if last else 0,
    )


def pyramid_bands(video, pyramid: PyramidSpec | None = None):
    """The complex steerable pyramid of every frame's luminance, as lazy Dask arrays.

    Parameters
    ----------
    video : Video or array-like (T, H, W, 3) uint8
    pyramid : PyramidSpec, optional

    Returns
    -------
    list of (BandFilter, dask.array.Array)
        One entry per oriented band, fine to coarse; each array is complex64
        (T, h_b, w_b), chunked like the video along time.  One task per time
        block computes all bands of that block.
    """
    frames = video.frames if isinstance(video, Video) else da.asarray(video)
    spec = pyramid or PyramidSpec()
    height, width = frames.shape[1:3]
    filters = pyramid_filters((height, width), spec)
    frames = frames.rechunk({1: -1, 2: -1, 3: -1})
    per_block = [dask.delayed(_block_bands)(block, spec) for block in frames.to_delayed().ravel()]
    out = []
    for index, band in enumerate(filters.bands):
        pieces = [
            da.from_delayed(bands[index], (n,) + band.shape, dtype=np.complex64)
            for bands, n in zip(per_block, frames.chunks[0])
        ]
        out.append((band, da.concatenate(pieces, axis=0)))
    return out


def _block_bands(block, spec):
    return decompose(luma(block), spec)["bands"]


def as_fraction(rate) -> Fraction:
    """A frame rate as an exact fraction (29.97 stays 30000/1001)."""
    if isinstance(rate, Fraction):
        return rate
    return Fraction(rate).limit_denominator(1001)
