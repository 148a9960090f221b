"""The block plan: one source for the graph builders, the pre-flight and the benchmarks."""

import numpy as np
import pytest

from daskmag.errors import UserError
from daskmag.io import VideoInfo
from daskmag.kernels.pyramid import PyramidSpec
from daskmag.kernels.temporal import make_filter
from daskmag.plan import (AUTO_TILE, HALOS_PER_BLOCK, TILE_MARGIN, auto_tile, plan_colour, plan_job,
                          plan_motion, plan_time_chunks)
from daskmag.settings import Band, ColourSettings, Execution, MotionSettings, Selection
from fractions import Fraction


def info(n=600, height=192, width=432, fps=Fraction(30000, 1001)):
    return VideoInfo("clip.mp4", n, height, width, fps, "h264")


def test_blocks_cover_every_frame_once_and_do_not_grow_with_length():
    temporal = make_filter("fir", 72, 92, 600)
    short = plan_motion(600, 192, 432, temporal)
    long = plan_motion(600_000, 192, 432, temporal)
    for plan, n in ((short, 600), (long, 600_000)):
        assert sum(plan.time_chunks) == n
        assert min(plan.time_chunks) >= plan.halo
    assert max(long.time_chunks) == max(short.time_chunks) == HALOS_PER_BLOCK * temporal.halo_before
    assert long.halo_before == long.halo_after == len(temporal.taps) // 2


def test_large_frames_are_tiled_with_a_pyramid_a_tile_can_hold():
    temporal = make_filter("fir", 3, 7, 60)
    tile = auto_tile(1080, 1920)
    assert tile == AUTO_TILE and auto_tile(192, 432) is None and auto_tile(1080, 1920, 0) is None
    plan = plan_motion(600, 1080, 1920, temporal, tile=tile)
    assert plan.tiled and sum(plan.rows) == 1080 and sum(plan.cols) == 1920
    assert plan.margin == TILE_MARGIN
    assert plan.pyramid.levels == PyramidSpec().n_levels((AUTO_TILE + 2 * TILE_MARGIN,) * 2)
    assert plan_time_chunks(600, plan.tile_pixels, plan.halo) == plan.time_chunks


def test_the_job_plan_checks_everything_that_needs_the_frame_size():
    settings, band = MotionSettings(alpha=20), Band(72, 92, 600)
    plan = plan_job(info(), settings, band, Selection(max_frames=100, scale=0.5, roi=(100, 50, 100, 60)))
    assert (plan.first, plan.stop, plan.height, plan.width) == (0, 100, 96, 216)
    assert plan.roi == (50, 25, 50, 30) and plan.band.fps == 600
    with pytest.raises(UserError, match="reaches outside the 432x192 frame"):
        plan_job(info(), settings, band, Selection(roi=(400, 0, 100, 10)))
    with pytest.raises(UserError, match="Nyquist"):
        plan_job(info(), settings, Band(72, 92), Selection())
    with pytest.raises(UserError, match="too small for a pyramid"):
        plan_job(info(height=12), settings, band)
    with pytest.raises(UserError, match="outside the video"):
        plan_job(info(n=50), settings, band, Selection(start=60))
    with pytest.raises(UserError, match="too small for pyramid level 6"):
        plan_job(info(height=60), ColourSettings(level=6), Band(1, 2, 30))
    with pytest.raises(UserError, match="whole clip in memory"):
        plan_job(info(n=20_000, height=1080, width=1920), MotionSettings(filter="ideal"), band,
                 execution=Execution(tile=0))


def test_colour_blocks_use_the_filter_halo():
    temporal = make_filter("fir", 1, 2, 30)
    plan = plan_colour(10_000, 160, 160, temporal, 4)
    assert plan.halo == len(temporal.taps) // 2 and sum(plan.time_chunks) == 10_000
    assert np.all(np.asarray(plan.time_chunks) >= plan.halo)


@pytest.mark.parametrize(
    "n,halo,chunk,expected",
    [(100, 10, 30, (30, 30, 30, 10)), (100, 11, 30, (30, 30, 40)), (100, 10, 25, (25, 25, 25, 25)), (5, 10, None, (5,)), (100, 30, 10, (30, 30, 40))],
)
def test_plan_time_chunks(n, halo, chunk, expected):
    chunks = plan_time_chunks(n, 64 * 64, halo, time_chunk=chunk)
    assert chunks == expected and sum(chunks) == n


def test_block_size_does_not_grow_with_the_video():
    assert plan_time_chunks(1500, 128 * 128, 28)[0] == plan_time_chunks(6000, 128 * 128, 28)[0] == 8 * 28
    large = plan_time_chunks(100_000, 640 * 640, 28, block_bytes=2**30)[0]
    assert 28 <= large < 8 * 28 and (large + 2 * 28) * 16 * 640 * 640 <= 2**30


def test_blocks_fit_the_memory_budget():
    chunks = plan_time_chunks(100_000, 1920 * 1080, 27, block_bytes=2**30)
    assert len(set(chunks[:-1])) == 1
    assert chunks[0] >= 27
    short = plan_time_chunks(300, 432 * 192, 55, min_blocks=2)
    assert short == (150, 150)


def test_staged_plan_covers_every_frame_once_with_memory_bounded_by_the_group():
    from daskmag.kernels.phase import coefficient_count
    from daskmag.plan import GROUP_BYTES, STAGE1_BYTES, plan_motion, plan_staged

    temporal = make_filter("fir", 72, 92, 600)
    halo = temporal.halo_before
    plans = {}
    for n in (300, 3000, 30000):
        blocks = plan_motion(n, 192, 432, temporal)
        staged = plan_staged(n, 192, 432, blocks, min_blocks=2)
        assert sum(staged.time_chunks) == n and sum(staged.groups) == len(staged.time_chunks)
        assert staged.window <= max(HALOS_PER_BLOCK * halo, 64) + 2 * halo
        per_frame = staged.coefficients * (np.dtype(staged.dtype).itemsize + 8 * staged.keep)
        assert max(staged.time_chunks) * per_frame <= 1.5 * STAGE1_BYTES  # a last sliver may join a chunk
        assert staged.window * staged.coefficients * np.dtype(staged.dtype).itemsize <= GROUP_BYTES
        plans[n] = staged
    assert len(plans[300].time_chunks) >= 2  # a short clip still keeps two workers busy
    assert plans[3000].time_chunks[0] == plans[30000].time_chunks[0]  # memory does not grow with length
    assert plans[3000].groups[0] == plans[30000].groups[0]
    assert coefficient_count((192, 432), PyramidSpec()) == plans[300].coefficients


def test_staged_plan_follows_read_chunks_that_nest_in_it():
    """Read tasks that start on key frames (12-frame groups of pictures) become the chunks,
    grouped into whole chunks no longer than the plan's groups: memory stays in the budget."""
    from daskmag.plan import StagedPlan, follow_chunks

    staged = StagedPlan((19,) * 12 + (12,), (2,) * 6 + (1,), 28, 28, 1000, 38 + 56, "float32", False, 1)
    followed = follow_chunks(staged, (12,) * 20)
    assert followed.time_chunks == (12,) * 20 and sum(followed.groups) == 20
    assert followed.groups == (3,) * 6 + (2,) and followed.window == 36 + 56
    assert (followed.halo_before, followed.dtype, followed.keep) == (28, "float32", False)
    uneven = follow_chunks(staged, (12, 19, 7, 12, 12, 19, 19, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 10))
    starts = np.cumsum((0,) + uneven.time_chunks)
    bounds = np.cumsum((0,) + uneven.groups)
    assert max(starts[b] - starts[a] for a, b in zip(bounds[:-1], bounds[1:])) <= 38
    # a last chunk holding a sliver (27 frames) does not raise the limits
    sliver = StagedPlan((19,) * 5 + (27,), (2, 2, 2), 28, 28, 1000, 38 + 56, "float16", False, 1)
    followed = follow_chunks(sliver, (12,) * 10)
    assert followed.time_chunks == (12,) * 10 and followed.groups == (3, 3, 3, 1)
    assert follow_chunks(sliver, (24,) * 5) is sliver
    # longer chunks than planned, or far shorter ones: the input is rechunked to the plan
    assert follow_chunks(staged, (24,) * 10) is staged
    assert follow_chunks(staged, (4,) * 60) is staged


def test_reads_no_longer_than_asked_start_on_key_frames():
    from daskmag.io.base import read_bounds

    keys = list(range(0, 240, 12))
    bounds = read_bounds(0, 240, 19, keys, longest=19)
    assert bounds == list(range(0, 241, 12))
    bounds = read_bounds(0, 100, 19, [0, 60], longest=19)  # no key near: regular reads, none longer
    assert max(np.diff(bounds)) <= 19 and bounds[0] == 0 and bounds[-1] == 100
    assert read_bounds(0, 240, 19, keys) == [0, 24, 48, 72, 96, 120, 144, 168, 192, 216, 240]  # up to 4 chunks


def test_staged_plan_holds_two_groups_in_flight_within_the_budget():
    """The writer keeps a group, its halos and the next group in flight: their frames,
    increments and phase shifts stay within STAGED_BYTES (issue 2: 1080p under 6 GiB in all)."""
    from daskmag.plan import STAGED_BYTES, plan_motion, plan_staged

    temporal = make_filter("fir", 3, 7, 60)
    for height, width, channels, itemsize in ((1080, 1920, 3, 1), (720, 1280, 3, 1), (1080, 1920, 1, 2),
                                              (480, 640, 3, 1), (192, 432, 3, 1)):
        blocks = plan_motion(6000, height, width, temporal)
        staged = plan_staged(6000, height, width, blocks, frame_bytes=height * width * channels * itemsize)
        size = np.dtype(staged.dtype).itemsize
        per_frame = staged.coefficients * (2 * size + 8 * staged.keep) + height * width * channels * itemsize
        group = max(staged.groups[:-1]) * staged.time_chunks[0]
        halos = staged.halo_before + staged.halo_after
        # a group is a whole number of chunks: it may pass the budget's group by half a chunk
        assert (2 * (group - staged.time_chunks[0] // 2) + halos) * per_frame <= STAGED_BYTES
    # a clip whose frames all fit is one group (no halos between groups)
    short = plan_staged(96, 1080, 1920, plan_motion(96, 1080, 1920, temporal), min_blocks=2)
    assert len(short.groups) == 1 and len(short.time_chunks) >= 2
    # a smaller budget gives shorter groups; too small for one halo: the fused kernel's tiles
    blocks = plan_motion(6000, 720, 1280, temporal)
    small = plan_staged(6000, 720, 1280, blocks, staged_bytes=2 * 2**30)
    assert small is not None and small.window < plan_staged(6000, 720, 1280, blocks).window
    assert plan_staged(6000, 1080, 1920, plan_motion(6000, 1080, 1920, temporal), staged_bytes=2 * 2**30) is None


def test_staged_plan_gives_way_to_tiles_where_a_group_would_not_fit():
    from daskmag.plan import plan_motion, plan_staged

    temporal = make_filter("fir", 3, 7, 60)  # a 28-frame halo
    for height, width in ((1080, 1920), (720, 1280)):
        staged = plan_staged(600, height, width, plan_motion(600, height, width, temporal), min_blocks=2)
        assert staged is not None and staged.dtype == "float16" and not staged.keep
    assert plan_staged(600, 2160, 3840, plan_motion(600, 2160, 3840, temporal)) is None
    longer = make_filter("fir", 72, 92, 600)  # a 55-frame halo: a 1080p group would not hold one
    assert plan_staged(600, 1080, 1920, plan_motion(600, 1080, 1920, longer)) is None
    assert plan_staged(600, 720, 1280, plan_motion(600, 720, 1280, longer)) is not None
