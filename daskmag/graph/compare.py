"""The input and its magnified version side by side, as a lazy Dask array (``magnify --side-by-side``)."""

from __future__ import annotations

import dask.array as da
import numpy as np

from ..kernels.annotate import GAP, LABEL_HEIGHT, side_by_side as _side_by_side


def side_by_side(before: da.Array, after: da.Array, left: str = "input", right: str = "magnified",
                 gap: int = GAP) -> da.Array:
    """``before`` and ``after`` next to each other, each under a label, one task per time block.

    Parameters
    ----------
    before, after : dask.array.Array
        (T, H, W, 3) uint8, the same frames before and after processing.
    left, right : str
        Labels drawn above each (e.g. ``"alpha 20, 72-92 Hz"``).
    gap : int
        White columns between the two pictures.

    Returns
    -------
    dask.array.Array
        (T, H + 18, 2 W + gap, 3) uint8, chunked along time like ``after``.

    Raises
    ------
    ValueError
        The two arrays differ in shape.
    """
    if before.shape != after.shape:
        raise ValueError(f"side by side needs equal shapes, got {before.shape} and {after.shape}")
    after = after.rechunk({1: -1, 2: -1, 3: -1})
    before = before.rechunk(after.chunks)
    n, height, width, channels = after.shape
    chunks = (after.chunks[0], (height + LABEL_HEIGHT,), (2 * width + gap,), (channels,))
    return da.map_blocks(_side_by_side, before, after, left=left, right=right, gap=gap, chunks=chunks,
                         dtype=np.uint8, meta=np.empty((0, 0, 0, 0), dtype=np.uint8), token="side-by-side")
