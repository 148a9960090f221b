"""A reduced size and a region of interest, as lazy Dask steps.

What MIT's scripts do before magnifying (``scaleVideo``, a region):

* :func:`scale_video` resizes every frame by a factor (antialiased bicubic,
  as MATLAB's ``imresize``), one task per time chunk.
* :func:`in_region` applies a magnification to a region only and blends it
  into the untouched frame with a raised-cosine feather.

The time range (``--start``/``--end``) is resolved by
:meth:`daskmag.settings.Selection.frames` and only those frames are decoded.
In :func:`daskmag.magnify_file` the steps run in that order (range, scale,
region); the region is given in pixels of the *input* frame and is scaled
with the frames.
"""

from __future__ import annotations

import dask.array as da
import numpy as np

from ..kernels.spatial import FEATHER, region_weights, resize_frames
from ..plan import REGION_MARGIN, region_box
from ..settings import check_roi, check_scale


# --- scale -----------------------------------------------------------------

def scale_video(frames: da.Array, factor: float) -> da.Array:
    """Resize every frame by ``factor`` (0 < factor <= 1), lazily, one task per time chunk.

    As MIT's ``scaleVideo``: the new size is ``round(factor * size)`` on each
    side and the resize is MATLAB's antialiased bicubic (:func:`resize_matrix`).

    Parameters
    ----------
    frames : dask.array.Array
        (T, H, W, C) uint8.
    factor : float

    Returns
    -------
    dask.array.Array
        (T, h, w, C) uint8, chunked like ``frames`` along time.
    """
    height, width = check_scale(factor, *frames.shape[1:3])
    if (height, width) == frames.shape[1:3]:
        return frames
    frames = frames.rechunk({1: -1, 2: -1, 3: -1})
    return frames.map_blocks(resize_frames, height, width, dtype=frames.dtype,
                             chunks=(frames.chunks[0], (height,), (width,), frames.chunks[3]))


# --- region of interest ----------------------------------------------------

def in_region(frames: da.Array, roi, process, *, feather: int = FEATHER,
              margin: int = REGION_MARGIN) -> da.Array:
    """Apply ``process`` to a region of every frame only, lazily.

    The region plus ``margin`` pixels on each side (within the frame) is cut
    out and given to ``process``, so the pyramid works on that smaller frame,
    and its borders (periodic in the pyramid) fall in the margin, which is
    discarded.  The result is blended into the frames with
    :func:`region_weights`: pixels outside the region are the input's,
    pixels more than ``feather`` pixels inside it are ``process``'s.

    Parameters
    ----------
    frames : dask.array.Array
        (T, H, W, 3) uint8.
    roi : (x, y, w, h)
        The region, in pixels of ``frames``.
    process : callable
        Maps a (T, h, w, 3) uint8 Dask array to one of the same shape, e.g.
        ``lambda v: magnify_motion(v, 10, 3, 7, 60)``.

    Returns
    -------
    dask.array.Array
        (T, H, W, 3) uint8.
    """
    height, width = frames.shape[1:3]
    x, y, w, h = check_roi(roi, height, width)
    rows, cols = region_box((x, y, w, h), height, width, margin)
    (top, bottom), (left, right) = (rows.start, rows.stop), (cols.start, cols.stop)
    crop = frames[:, rows, cols]
    weights = np.zeros((bottom - top, right - left, 1), dtype=np.float32)  # any number of channels
    weights[y - top : y - top + h, x - left : x - left + w, 0] = region_weights((x, y, w, h), height, width, feather)
    before = crop.astype(np.float32)
    blended = before + da.from_array(weights) * (process(crop).astype(np.float32) - before)
    blended = da.clip(da.round(blended), 0, np.iinfo(frames.dtype).max).astype(frames.dtype)
    middle = da.concatenate([frames[:, top:bottom, :left], blended, frames[:, top:bottom, right:]], axis=2)
    return da.concatenate([frames[:, :top], middle, frames[:, bottom:]], axis=1)
