"""The lazy Dask graph of a measurement: time blocks with one frame of overlap.

Each task gets its block's frames plus the last frame of the block before
(``dask.array.overlap``, one frame, before only) and returns one
displacement step per frame pair (:func:`daskmag.measure.estimator.measure_block`):
the step between two blocks is computed once, by the later block, and the
steps of all blocks together are exactly the ``T - 1`` steps of the clip.
A task returns a few numbers per frame; memory depends on the block's size,
never on the footage's length.
"""

from __future__ import annotations

import math

import dask.array as da
import numpy as np

from ..io import Video
from ..kernels.pyramid import PyramidSpec
from .estimator import measure_block

#: Working bytes per pixel of a frame in a block: the RGB frame, its spectrum
#: and its bands (three complex arrays per band while measuring).
BYTES_PER_PIXEL = 3
#: Default bytes of RGB frames per block.
BLOCK_BYTES = 64 * 2**20
MIN_BLOCK_FRAMES = 16


def block_frames(n_frames: int, height: int, width: int, min_blocks: int = 1,
                 block_bytes: int = BLOCK_BYTES) -> int:
    """Frames per time block: ~``block_bytes`` of RGB frames, at least 16 (2 for tiny clips),
    and short clips split into ``min_blocks`` blocks."""
    fit = max(MIN_BLOCK_FRAMES, block_bytes // max(1, BYTES_PER_PIXEL * height * width))
    split = math.ceil(n_frames / max(1, min_blocks))
    return int(max(2, min(fit, split, n_frames)))


def region_steps(video, regions, pyramid: PyramidSpec | None = None, *, time_chunk: int | None = None,
                 min_blocks: int = 1, levels: int | None = None, frequency: str = "local") -> da.Array:
    """Displacement steps between consecutive frames of every region, lazily.

    Parameters
    ----------
    video : Video or array-like (T, H, W, 3) uint8
    regions : sequence of :class:`~daskmag.measure.estimator.Region`
    pyramid : PyramidSpec, optional
        Default: octave bands, 4 orientations.
    time_chunk : int, optional
        Frames per block (default :func:`block_frames`).
    min_blocks : int
        Split a short clip into at least this many blocks (parallelism).
    levels, frequency
        As :func:`~daskmag.measure.estimator.measure_block`.

    Returns
    -------
    dask.array.Array
        (T - 1, len(regions), 2) float64: ``dx, dy`` in pixels from frame
        ``t`` to ``t + 1``; nothing is computed yet.
    """
    frames = video.frames if isinstance(video, Video) else da.asarray(video)
    n_frames, height, width = frames.shape[:3]
    if n_frames < 2:
        raise ValueError("a measurement needs at least two frames")
    chunk = time_chunk or block_frames(n_frames, height, width, min_blocks)
    chunk = max(2, int(chunk))
    chunks = [chunk] * (n_frames // chunk)
    if n_frames % chunk:
        if chunks and n_frames % chunk < 2:
            chunks[-1] += n_frames % chunk
        else:
            chunks.append(n_frames % chunk)
    frames = frames.rechunk((tuple(chunks),) + tuple((s,) for s in frames.shape[1:]))
    spec = pyramid or PyramidSpec()
    regions = tuple(regions)
    if len(chunks) > 1:
        extended = da.overlap.overlap(frames, depth={0: (1, 0)} | {a: 0 for a in range(1, frames.ndim)},
                                      boundary="none")
    else:
        extended = frames
    out_chunks = ((chunks[0] - 1,) + tuple(chunks[1:]), (len(regions),), (2,))
    drop = tuple(range(3, frames.ndim))  # the colour axis, if any
    return extended.map_blocks(
        _steps_block, regions=regions, spec=spec, levels=levels, frequency=frequency,
        chunks=out_chunks, drop_axis=drop, new_axis=None, dtype=np.float64,
        meta=np.empty((0, 0, 0), dtype=np.float64), token="measure-steps",
    )


def _steps_block(block, regions, spec, levels, frequency):
    return measure_block(np.asarray(block), regions, spec, levels=levels, frequency=frequency)


def displacement(steps: da.Array) -> da.Array:
    """Cumulative displacement from the first frame, (T, R, 2), lazily: 0 at frame 0."""
    zero = da.zeros((1,) + steps.shape[1:], dtype=steps.dtype, chunks=(1,) + steps.chunks[1:])
    return da.concatenate([zero, da.cumsum(steps, axis=0)], axis=0)
