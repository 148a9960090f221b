"""Region and range: a time range, a reduced size, a region of interest.

What MIT's scripts do before magnifying (``scaleVideo``, a frame range, a
region), as lazy Dask steps:

* :func:`frame_range` turns ``start``/``end`` (frames, or seconds with an
  ``s`` suffix) into frame indices; :func:`daskmag.open_video` then decodes
  only those frames.
* :func:`scale_video` resizes every frame by a factor (antialiased bicubic,
  as MATLAB's ``imresize``), one task per time chunk.
* :func:`in_region` applies a magnification to a region only and blends it
  into the untouched frame with a raised-cosine feather.

In :func:`daskmag.magnify_file` they run in that order; the region is given
in pixels of the *input* frame and is scaled with the frames.
"""

from __future__ import annotations

import functools
import math
from fractions import Fraction

import dask.array as da
import numpy as np

from .errors import UserError

#: Width of the raised-cosine blend inside a region's border, in pixels.
FEATHER = 16
#: Frame around a region that is magnified with it (and then discarded), in
#: pixels: the pyramid's periodic borders and its coarse filters reach about
#: this far, as a tile's margin (:data:`daskmag.magnify.TILE_MARGIN`).
REGION_MARGIN = 64


# --- time range ------------------------------------------------------------

def frame_index(value, fps, name: str = "--start") -> int:
    """A frame index from frames (``120``, ``"120"``) or seconds (``"2.5s"``).

    Seconds are on the stored file's time line, first frame at 0 s, at the
    stored rate ``fps``; they give the first frame shown at or after that
    time (as ``ffmpeg -ss``), so ``start="2s", end="3s"`` is one second of
    frames whatever the rate.
    """
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    text = value.strip() if isinstance(value, str) else None
    try:
        if text and text.endswith("s"):
            return math.ceil(Fraction(text[:-1]) * Fraction(fps))
        return int(text)
    except (TypeError, ValueError, ZeroDivisionError):
        raise UserError(f"{name} must be frames (e.g. 120) or seconds (e.g. 2.5s), got {value!r}") from None


def frame_range(n_frames: int, fps, start=None, end=None, max_frames: int | None = None) -> tuple[int, int]:
    """Frames ``[first, stop)`` to process, checked against the video's length.

    Parameters
    ----------
    n_frames : int
        Frames in the video.
    fps : Fraction
        Its stored frame rate (for times in seconds, see :func:`frame_index`).
    start, end : int or str, optional
        First frame and the frame after the last (default: the whole video).
    max_frames : int, optional
        At most this many frames, counted from ``start``.

    Raises
    ------
    UserError
        A malformed value, a range outside the video, or ``start >= end``.
    """
    first = 0 if start is None else frame_index(start, fps, "--start")
    stop = n_frames if end is None else frame_index(end, fps, "--end")
    length = f"the video has {n_frames} frames ({float(n_frames / fps):.3f} s)"
    if not 0 <= first < n_frames:
        raise UserError(f"--start {start} is frame {first}, outside the video: {length}")
    if not 0 < stop <= n_frames:
        raise UserError(f"--end {end} is frame {stop}, outside the video: {length}")
    if first >= stop:
        raise UserError(f"--start (frame {first}) must come before --end (frame {stop})")
    if max_frames is not None:
        if max_frames < 1:
            raise UserError(f"--max-frames must be at least 1, got {max_frames}")
        stop = min(stop, first + int(max_frames))
    return first, stop


# --- scale -----------------------------------------------------------------

def scaled_size(size: int, factor: float) -> int:
    """``round(factor * size)``, halves rounded up."""
    return math.floor(factor * size + 0.5)


def check_scale(factor: float, height: int, width: int) -> tuple[int, int]:
    """The (height, width) after scaling by ``factor``; a :class:`UserError` if unusable."""
    if factor is None or not math.isfinite(factor) or not 0 < factor <= 1:
        raise UserError(f"--scale must be above 0 and at most 1, got {factor}")
    size = scaled_size(height, factor), scaled_size(width, factor)
    if min(size) < 1:
        raise UserError(f"--scale {factor:g} leaves no pixels of a {width}x{height} frame")
    return size


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
    """Resize (n, H, W, C) uint8 frames to (n, height, width, C) with :func:`resize_matrix`."""
    n, old_height, old_width, channels = frames.shape
    rows, cols = resize_matrix(old_height, height), resize_matrix(old_width, width)
    out = np.empty((n, height, width, channels), dtype=np.uint8)
    for i, frame in enumerate(frames):
        tall = rows @ frame.reshape(old_height, old_width * channels).astype(np.float32)
        wide = cols @ tall.reshape(height, old_width, channels).transpose(1, 0, 2).reshape(old_width, -1)
        small = wide.reshape(width, height, channels).transpose(1, 0, 2)
        out[i] = np.clip(np.rint(small), 0, 255)
    return out


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
    return frames.map_blocks(resize_frames, height, width, dtype=np.uint8,
                             chunks=(frames.chunks[0], (height,), (width,), frames.chunks[3]))


# --- region of interest ----------------------------------------------------

def parse_roi(text) -> tuple[int, int, int, int]:
    """``"x,y,w,h"`` (or a sequence of four) as four integers, unchecked."""
    parts = text.split(",") if isinstance(text, str) else list(text)
    try:
        if len(parts) != 4:
            raise ValueError
        values = tuple(int(str(p).strip()) for p in parts)
    except (TypeError, ValueError):
        raise UserError(f"--roi must be x,y,w,h in pixels (e.g. 100,50,320,240), got {text!r}") from None
    return values


def check_roi(roi, height: int, width: int) -> tuple[int, int, int, int]:
    """The region ``(x, y, w, h)``, checked to lie inside a ``width`` x ``height`` frame."""
    x, y, w, h = parse_roi(roi)
    if w < 1 or h < 1:
        raise UserError(f"--roi {x},{y},{w},{h} has no pixels (width and height must be at least 1)")
    if x < 0 or y < 0 or x + w > width or y + h > height:
        raise UserError(f"--roi {x},{y},{w},{h} reaches outside the {width}x{height} frame")
    return x, y, w, h


def scale_roi(roi, factor: float) -> tuple[int, int, int, int]:
    """A region of the input frame in pixels of the frame scaled by ``factor``."""
    x, y, w, h = roi
    left, top = scaled_size(x, factor), scaled_size(y, factor)
    right, bottom = scaled_size(x + w, factor), scaled_size(y + h, factor)
    return left, top, max(right - left, 1), max(bottom - top, 1)


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


def region_box(roi, height: int, width: int, margin: int = REGION_MARGIN) -> tuple[slice, slice]:
    """Rows and columns of a region ``(x, y, w, h)`` plus ``margin``, within the frame."""
    x, y, w, h = roi
    return (slice(max(y - margin, 0), min(y + h + margin, height)),
            slice(max(x - margin, 0), min(x + w + margin, width)))


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
    weights = np.zeros((bottom - top, right - left, 1), dtype=np.float32)
    weights[y - top : y - top + h, x - left : x - left + w, 0] = region_weights((x, y, w, h), height, width, feather)
    before = crop.astype(np.float32)
    blended = before + da.from_array(weights) * (process(crop).astype(np.float32) - before)
    blended = da.clip(da.round(blended), 0, 255).astype(np.uint8)
    middle = da.concatenate([frames[:, top:bottom, :left], blended, frames[:, top:bottom, right:]], axis=2)
    return da.concatenate([frames[:, :top], middle, frames[:, bottom:]], axis=1)
