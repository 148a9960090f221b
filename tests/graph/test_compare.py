"""--side-by-side: the input and the result next to each other, labelled, frame for frame."""

import dask.array as da
import numpy as np
import pytest

from daskmag.graph.compare import side_by_side
from daskmag.kernels.annotate import GAP, LABEL_HEIGHT, label_strip
from daskmag.synthetic import translating_clip


def test_halves_are_the_frames_themselves_under_their_labels():
    before = translating_clip(30, 40, 64, 30.0, ((0.5, 2.0),))
    after = before[::-1].copy()  # any other frames: each half must keep its own, in order
    out = side_by_side(da.from_array(before, chunks=(7, -1, -1, -1)), da.from_array(after, chunks=(10, -1, -1, -1)),
                       "input", "alpha 20, 72-92 Hz").compute()
    assert out.shape == (30, 40 + LABEL_HEIGHT, 2 * 64 + GAP, 3)
    assert np.array_equal(out[:, LABEL_HEIGHT:, :64], before)
    assert np.array_equal(out[:, LABEL_HEIGHT:, 64 + GAP :], after)
    assert np.all(out[:, LABEL_HEIGHT:, 64 : 64 + GAP] == 255)
    left, right = out[0, :LABEL_HEIGHT, :64], out[0, :LABEL_HEIGHT, 64 + GAP :]
    assert np.array_equal(left, label_strip("input", 64)) and np.array_equal(right, label_strip("alpha 20, 72-92 Hz", 64))
    assert (left > 128).any() and not np.array_equal(left, right)  # text was drawn, and differs


def test_shapes_must_match():
    a = da.zeros((4, 8, 8, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="equal shapes"):
        side_by_side(a, da.zeros((4, 8, 9, 3), dtype=np.uint8))
