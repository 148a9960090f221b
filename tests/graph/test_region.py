"""Region and range as lazy array steps: time ranges, scaling, regions of interest."""

from fractions import Fraction

import dask.array as da
import numpy as np
import pytest

from conftest import BAND, FPS, IN_BAND, OUT_OF_BAND
from daskmag import magnify_motion
from daskmag.errors import UserError
from daskmag.measure import motion_gain
from daskmag.graph.region import in_region, scale_video
from daskmag.kernels.spatial import region_weights, resize_frames, resize_matrix
from daskmag.settings import check_roi, frame_index, frame_range, scale_roi
from daskmag.synthetic import translating_clip


def test_seconds_are_the_first_frame_at_or_after_that_time():
    assert frame_index("2.5s", Fraction(60)) == 150
    assert frame_index("120", Fraction(60)) == 120 and frame_index(7, Fraction(60)) == 7
    ntsc = Fraction(30000, 1001)
    assert frame_index("1s", ntsc) == 30  # 29.97 frames in a second: frame 30 is at 1.001 s
    assert frame_index("1.001s", ntsc) == 30  # exactly frame 30's time
    assert frame_range(120, Fraction(60), "0.5s", "1s") == (30, 60)
    assert frame_range(120, Fraction(60), 100, None, max_frames=50) == (100, 120)
    assert frame_range(120, Fraction(60), 10, 90, max_frames=20) == (10, 30)


@pytest.mark.parametrize("start,end,words", [
    (120, None, ["--start", "outside"]), (-1, None, ["--start", "outside"]), (None, "2.1s", ["--end", "outside"]),
    (50, 50, ["before --end"]), ("1.5", None, ["seconds"]), ("ten", None, ["--start", "frames"]),
    (2.5, None, ["seconds"]),
])
def test_bad_ranges(start, end, words):
    with pytest.raises(UserError) as error:
        frame_range(120, Fraction(60), start, end)
    for word in words:
        assert word in str(error.value)


def test_resize_keeps_constants_and_scale_one_is_exact():
    frames = np.random.default_rng(0).integers(0, 256, (2, 37, 23, 3), dtype=np.uint8)
    assert np.array_equal(resize_frames(frames, 37, 23), frames)
    assert np.unique(resize_frames(np.full((1, 40, 30, 3), 77, np.uint8), 13, 11)).tolist() == [77]
    rows = resize_matrix(100, 33)
    assert rows.shape == (33, 100) and np.allclose(rows.sum(axis=1), 1)


def test_scaled_video_is_magnified_as_much(texture_clip):
    """0.1 px at 5 Hz is 0.05 px at half size: the gain stays 1 + alpha."""
    video = da.from_array(texture_clip, chunks=(40, -1, -1, -1))
    small = scale_video(video, 0.5)
    assert small.shape == (120, 64, 64, 3) and small.chunks[0] == (40, 40, 40)
    small = small.compute(scheduler="threads")
    motion = motion_gain(texture_clip, small, [IN_BAND, OUT_OF_BAND], FPS)
    assert motion == pytest.approx([0.5, 0.5], abs=0.01)  # the motion shrinks with the frame
    out = magnify_motion(small, 10, *BAND, FPS).compute(scheduler="threads")
    in_band, out_of_band = motion_gain(small, out, [IN_BAND, OUT_OF_BAND], FPS)
    assert in_band >= 1 + 0.85 * 10 and out_of_band == pytest.approx(1, abs=0.03)


def test_roi_weights_feather_inside_and_not_at_the_frame_edge():
    weights = region_weights((10, 0, 40, 60), 100, 100)
    assert weights.shape == (60, 40)
    assert weights[0, 20] == 1  # top side on the frame's edge: no feather
    assert 0 < weights[-1, 20] < 0.01 and 0 < weights[20, 0] < 0.01 and weights[:44, 16:24].min() == 1
    assert np.all(np.diff(weights[20, :16]) > 0)  # a smooth rise
    assert scale_roi((10, 20, 31, 41), 0.5) == (5, 10, 16, 21)  # corners scaled, halves rounded up


@pytest.mark.parametrize("roi,words", [("1,2,3", ["x,y,w,h"]), ("a,b,c,d", ["x,y,w,h"]),
                                       ("0,0,0,5", ["no pixels"]), ("100,0,40,10", ["outside"]),
                                       ((-1, 0, 5, 5), ["outside"])])
def test_bad_roi(roi, words):
    with pytest.raises(UserError) as error:
        check_roi(roi, 100, 120)
    for word in words:
        assert word in str(error.value)


def test_roi_magnifies_inside_as_much_and_leaves_the_rest(tmp_path):
    clip = translating_clip(120, 224, 224, FPS, ((0.1, IN_BAND), (0.1, OUT_OF_BAND)))
    video = da.from_array(clip, chunks=(40, -1, -1, -1))
    roi = x, y, w, h = 80, 72, 64, 80

    def magnify(v):
        assert v.shape[1:3] == (h + 128, w + 128)  # the pyramid sees the region and its margin
        return magnify_motion(v, 10, *BAND, FPS)

    out = in_region(video, roi, magnify).compute(scheduler="threads")
    whole = magnify_motion(video, 10, *BAND, FPS).compute(scheduler="threads")
    outside = np.ones(clip.shape[1:3], bool)
    outside[y : y + h, x : x + w] = False
    assert np.array_equal(out[:, outside], clip[:, outside])
    inner = (slice(None), slice(y + 16, y + h - 16), slice(x + 16, x + w - 16))
    gain, whole_gain = (motion_gain(clip[inner], o[inner], [IN_BAND], FPS)[0] for o in (out, whole))
    assert gain == pytest.approx(whole_gain, rel=0.05) and gain >= 1 + 0.85 * 10
