"""``daskmag measure``'s estimator against clips whose motion is known exactly.

Each clip is a broadband texture translated by exact sub-pixel amounts
(:func:`daskmag.synthetic.translate`), rounded to uint8 like a real video.
"""

import numpy as np
import pytest

from daskmag.measure import (Region, make_regions, measure_block, measure_video, region_steps,
                             displacement)
from daskmag.synthetic import motion, texture, translate

FPS = 60.0
FRAMES = 240
SIZE = 128
#: The Welch segment is the whole clip: one bin is FPS / FRAMES = 0.25 Hz.
BIN = FPS / FRAMES


def moving_clip(x_components=(), y_components=(), size=SIZE, frames=FRAMES, seed=2):
    image = texture(size, size, seed)
    dx, dy = motion(frames, FPS, x_components), motion(frames, FPS, y_components)
    return np.stack([np.clip(np.rint(translate(image, a, b) * 255), 0, 255).astype(np.uint8)
                     for a, b in zip(dx, dy)])


def amplitude_at(result, region: int, direction: int, frequency: float) -> float:
    """The spectrum's largest value within one bin of ``frequency``."""
    near = np.abs(result.frequencies - frequency) <= BIN
    return float(result.amplitude[near, region, direction].max())


CASES = {
    "0.02px-x": (((0.02, 7.0),), ()),
    "0.2px-x-0.1px-y": (((0.2, 11.0),), ((0.1, 4.0),)),
    "2px-x": (((2.0, 3.0),), ()),
    "two-at-once-x": (((0.5, 5.0), (0.3, 17.0)), ()),
    "1px-y": ((), ((1.0, 9.0),)),
    "0.05px-y-two": ((), ((0.05, 6.0), (0.5, 21.0))),
}


@pytest.mark.parametrize("name", list(CASES))
def test_amplitude_frequency_and_still_direction(name):
    x_components, y_components = CASES[name]
    clip = moving_clip(x_components, y_components)
    result = measure_video(clip, FPS, [Region("frame", 0, 0, SIZE, SIZE)], min_blocks=3)
    assert result.displacement.shape == (FRAMES, 1, 2)
    assert np.all(result.displacement[0] == 0)
    for direction, components, other in ((0, x_components, y_components), (1, y_components, x_components)):
        found = [p for p in result.peaks if p.direction == "xy"[direction]]
        for amplitude, frequency in components:
            peak = min(found, key=lambda p: abs(p.frequency_hz - frequency))
            assert abs(peak.frequency_hz - frequency) <= BIN, (peak, frequency)
            assert peak.amplitude_px == pytest.approx(amplitude, rel=0.03), (peak, amplitude)
            # the other direction, where nothing moves at this frequency, reads below 5 %
            if not any(abs(f - frequency) < 1.0 for _, f in other):
                assert amplitude_at(result, 0, 1 - direction, frequency) < 0.05 * amplitude
        # and no spurious peak stronger than 5 % of the smallest true motion in this direction
        # (of the smallest one in the other direction where nothing moves in this one)
        smallest = min(a for a, _ in (components or other))
        for peak in found:
            if not any(abs(peak.frequency_hz - f) <= 2 * BIN for _, f in components):
                assert peak.amplitude_px < 0.05 * smallest, peak


def test_displacement_follows_the_true_motion_frame_by_frame():
    truth = motion(FRAMES, FPS, ((0.7, 2.0), (0.2, 9.0)))
    clip = moving_clip(((0.7, 2.0), (0.2, 9.0)), ())
    moved = measure_video(clip, FPS, [Region("frame", 0, 0, SIZE, SIZE)]).displacement[:, 0]
    assert np.abs(moved[:, 0] - truth).max() < 0.02
    assert np.abs(moved[:, 1]).max() < 0.02


def test_blocks_count_each_step_once():
    """Any chunking gives the same T - 1 steps: the step between two blocks is counted once."""
    clip = moving_clip(((0.3, 5.0),), ((0.2, 8.0),), frames=50)
    regions = [Region("frame", 0, 0, SIZE, SIZE)]
    whole = measure_block(clip, regions)
    for chunk in (2, 7, 16, 49):
        steps = region_steps(clip, regions, time_chunk=chunk).compute(scheduler="threads")
        assert steps.shape == (49, 1, 2)
        np.testing.assert_allclose(steps, whole, atol=1e-9)
    chunked = region_steps(clip, regions, time_chunk=7)
    moved = displacement(chunked).compute(scheduler="threads")
    assert np.array_equal(moved[0], np.zeros((1, 2)))
    np.testing.assert_allclose(moved[1:], np.cumsum(chunked.compute(scheduler="threads"), axis=0), atol=1e-12)
    # each step within 1e-9 of the whole clip's (above): their sums within 49 times that
    np.testing.assert_allclose(moved[1:], np.cumsum(whole, axis=0), atol=49e-9)


def test_two_regions_moving_at_different_frequencies_are_told_apart():
    """Left half moves 0.3 px at 5 Hz in x, right half 0.3 px at 13 Hz in y."""
    size = 128
    left, right = texture(size, size, 4), texture(size, size, 5)
    a, b = motion(FRAMES, FPS, ((0.3, 5.0),)), motion(FRAMES, FPS, ((0.3, 13.0),))
    frames = np.empty((FRAMES, size, size, 3), np.uint8)
    for t in range(FRAMES):
        frame = np.concatenate([translate(left, a[t])[:, : size // 2], translate(right, 0.0, b[t])[:, size // 2:]],
                               axis=1)
        frames[t] = np.clip(np.rint(frame * 255), 0, 255)
    regions = make_regions(size, size, grid="1x2")
    assert [r.name for r in regions] == ["r1c1", "r1c2"]
    result = measure_video(frames, FPS, regions, min_blocks=2)
    own_left, own_right = amplitude_at(result, 0, 0, 5.0), amplitude_at(result, 1, 1, 13.0)
    assert own_left == pytest.approx(0.3, rel=0.03)
    assert own_right == pytest.approx(0.3, rel=0.03)
    for direction in (0, 1):
        assert amplitude_at(result, 0, direction, 13.0) < 0.05 * own_right
        assert amplitude_at(result, 1, direction, 5.0) < 0.05 * own_left
    strongest = {region.name: max((p for p in result.peaks if p.region == region.name),
                                  key=lambda p: p.amplitude_px) for region in regions}
    assert abs(strongest["r1c1"].frequency_hz - 5.0) <= BIN and strongest["r1c1"].direction == "x"
    assert abs(strongest["r1c2"].frequency_hz - 13.0) <= BIN and strongest["r1c2"].direction == "y"


def test_suggested_band_holds_the_strongest_peak():
    clip = moving_clip(((0.4, 12.0), (0.1, 4.0)), ())
    result = measure_video(clip, FPS, [Region("frame", 0, 0, SIZE, SIZE)])
    low, high = result.band
    assert low < 12.0 < high < FPS / 2
    assert abs(result.peaks[0].frequency_hz - 12.0) <= BIN


def test_distributed_matches_local(client):
    clip = moving_clip(((0.3, 5.0),), (), frames=60)
    regions = [Region("frame", 0, 0, SIZE, SIZE), Region("roi1", 10, 20, 40, 30)]
    here = measure_video(clip, FPS, regions, segment=60)
    there = measure_video(clip, FPS, regions, segment=60, client=client, min_blocks=4)
    np.testing.assert_allclose(there.displacement, here.displacement, atol=1e-9)


def test_still_textureless_clip_reads_zero():
    flat = np.full((20, 32, 32, 3), 128, np.uint8)
    steps = measure_block(flat, [Region("frame", 0, 0, 32, 32)])
    assert np.all(np.isfinite(steps)) and np.abs(steps).max() == 0
