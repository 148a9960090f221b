"""YIQ conversion: only luminance changes, colour passes through."""

import numpy as np

from daskmag.kernels.colourspace import add_luma, luma, rgb_to_yiq, yiq_to_rgb


def test_yiq_round_trip_is_exact_after_rounding():
    rgb = np.random.default_rng(0).integers(0, 256, (7, 9, 3), dtype=np.uint8)
    assert np.array_equal(yiq_to_rgb(rgb_to_yiq(rgb)), rgb)


def test_luma_is_the_y_channel():
    rgb = np.random.default_rng(1).integers(0, 256, (5, 6, 3), dtype=np.uint8)
    assert np.allclose(luma(rgb), rgb_to_yiq(rgb)[..., 0], atol=1e-6)


def test_add_luma_keeps_i_and_q():
    rng = np.random.default_rng(2)
    rgb = rng.integers(30, 220, (20, 20, 3), dtype=np.uint8)
    delta = rng.normal(0, 0.05, (20, 20)).astype(np.float32)
    yiq = rgb_to_yiq(rgb)
    expected = yiq.copy()
    expected[..., 0] += delta
    assert np.abs(add_luma(rgb, delta).astype(int) - yiq_to_rgb(expected)).max() <= 1
    changed = rgb_to_yiq(add_luma(rgb, delta))
    assert np.abs(changed[..., 1:] - yiq[..., 1:]).max() < 2.5 / 255


def test_add_luma_clips_instead_of_wrapping():
    rgb = np.array([[[250, 5, 128]]], dtype=np.uint8)
    assert add_luma(rgb, np.array([[0.2]], np.float32)).tolist() == [[[255, 56, 179]]]
    assert add_luma(rgb, np.array([[-0.2]], np.float32)).tolist() == [[[199, 0, 77]]]


def test_add_luma_frame_by_frame_equals_the_whole_batch():
    """A batch is changed a frame at a time (cache-sized passes): the same
    samples as the formula over the whole batch, 8 and 16-bit, RGB and mono."""
    from daskmag.kernels.colourspace import to_dtype

    rng = np.random.default_rng(1)
    for dtype, channels, full in ((np.uint8, 3, 255.0), (np.uint16, 1, 65535.0)):
        frames = rng.integers(0, int(full) + 1, (5, 24, 40, channels), dtype=dtype)
        change = (rng.standard_normal((5, 24, 40)) * 0.05).astype(np.float32)
        whole = to_dtype(frames.astype(np.float32) + (change * full)[..., None], dtype)
        out = add_luma(frames, change)
        assert out.dtype == dtype and np.array_equal(out, whole)
        assert np.array_equal(add_luma(frames, np.zeros_like(change)), frames)
