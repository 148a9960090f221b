"""Spatial kernels: resizing (MATLAB's ``imresize``) and a region's blend weights (pure NumPy)."""

from __future__ import annotations

import functools
import math

import numpy as np

#: Width of the raised-cosine blend inside a region's border, in pixels.
FEATHER = 16


def _cubic(x):
    """Keys' cubic convolution kernel (a = -0.5), as MATLAB's ``imresize``."""
    x = np.abs(x)
    return np.where(x <= 1, (1.5 * x - 2.5) * x * x + 1,
                    np.where(x < 2, ((-0.5 * x + 2.5) * x - 4) * x + 2, 0.0))


@functools.lru_cache(maxsize=32)
def resize_matrix(size: int, new_size: int):
    """Sparse linear map (new_size, size) that resizes one image axis.

    MATLAB's ``imresize`` (bicubic, antialiased when shrinking, symmetric
    borders): the cubic kernel is stretched by ``size / new_size`` when
    shrinking, so it low-passes to the new Nyquist frequency, and each row is
    normalised to sum to 1.
    """
    from scipy import sparse

    scale = new_size / size
    stretch = min(scale, 1.0)
    centres = (np.arange(new_size) + 0.5) / scale - 0.5
    reach = math.ceil(2.0 / stretch) + 1
    taps = np.floor(centres)[:, None].astype(int) + np.arange(-reach, reach + 1)[None, :]
    weights = stretch * _cubic(stretch * (centres[:, None] - taps))
    weights /= weights.sum(axis=1, keepdims=True)
    # symmetric border: pixel -1 is pixel 0, pixel `size` is pixel size - 1
    period = 2 * size
    taps = np.mod(taps, period)
    taps = np.where(taps >= size, period - 1 - taps, taps)
    rows = np.repeat(np.arange(new_size), taps.shape[1])
    matrix = sparse.csr_matrix((weights.ravel(), (rows, taps.ravel())), shape=(new_size, size))
    matrix.sum_duplicates()
    return matrix.astype(np.float32)


def resize_frames(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize (n, H, W, C) uint8 or uint16 frames to (n, height, width, C) with :func:`resize_matrix`."""
    n, old_height, old_width, channels = frames.shape
    rows, cols = resize_matrix(old_height, height), resize_matrix(old_width, width)
    out = np.empty((n, height, width, channels), dtype=frames.dtype)
    top = np.iinfo(frames.dtype).max
    for i, frame in enumerate(frames):
        tall = rows @ frame.reshape(old_height, old_width * channels).astype(np.float32)
        wide = cols @ tall.reshape(height, old_width, channels).transpose(1, 0, 2).reshape(old_width, -1)
        small = wide.reshape(width, height, channels).transpose(1, 0, 2)
        out[i] = np.clip(np.rint(small), 0, top)
    return out


def _ramp(length: int, before: int, after: int) -> np.ndarray:
    """1 inside, rising as a raised cosine over ``before``/``after`` samples at the ends."""
    ramp = np.ones(length)
    for width, sl in ((before, slice(None)), (after, slice(None, None, -1))):
        if width:
            rise = 0.5 - 0.5 * np.cos(np.pi * (np.arange(width) + 0.5) / width)
            ramp[sl][:width] = np.minimum(ramp[sl][:width], rise)
    return ramp


def region_weights(roi, height: int, width: int, feather: int = FEATHER) -> np.ndarray:
    """Blend weights (h, w) of a region: 1 inside, 0 at its border.

    The weight rises as a raised cosine over ``feather`` pixels inside each
    side of the region (fewer in a region narrower than twice that); a side
    on the frame's edge is not feathered, having nothing outside to blend with.
    """
    x, y, w, h = roi
    ramps = []
    for start, size, full in ((y, h, height), (x, w, width)):
        limit = min(feather, size // 2)
        ramps.append(_ramp(size, limit if start > 0 else 0, limit if start + size < full else 0))
    return np.outer(*ramps).astype(np.float32)
