"""Linear colour magnification, measured on a synthetic pulse of known size.

A skin-coloured patch on a textured background changes colour by 0.5 grey
levels at 1.4 Hz (84 bpm, in the band) and by 2 grey levels at 5 Hz (out of
it); the mean colour of the patch's interior is fitted with sinusoids before
and after.  The out-of-band change is 2 grey levels, not 0.5, because the
amplified change is smooth, so its rounding to uint8 does not average out over
the patch: it moves the patch's mean by about 0.02 grey level, 4% of 0.5.
"""

import dask.array as da
import numpy as np
import pytest

from conftest import psnr
from daskmag.kernels.colourspace import RGB_TO_YIQ
from daskmag.graph.colour import magnify_colour
from daskmag.kernels.linear import (
    add_expanded,
    bandpass_change,
    channel_gains,
    expand_matrix,
    level_sizes,
    reduce_matrix,
    reduce_to_yiq,
)
from daskmag.kernels.temporal import make_filter
from daskmag.plan import plan_colour


def check_colour(level, chroma_attenuation, height, width):
    """The colour checks that need only the frame size, as ``magnify`` runs them before work."""
    from daskmag.settings import ColourSettings

    settings = ColourSettings(level=level, chroma_attenuation=chroma_attenuation)
    plan_colour(100, height, width, make_filter("fir", 3, 7, 60), settings.level)
from daskmag.errors import UserError
from daskmag.measure import colour_gains, global_shifts, mean_colour
from daskmag.synthetic import PULSE_DIRECTION, motion, pulsing_clip
from daskmag.kernels.temporal import design_bandpass, frequency_response

FPS = 30.0
BAND = (0.8, 2.0)
PULSE, OTHER = 1.4, 5.0  # Hz: in the band's flat top, and in its stop band
ALPHA = 50.0
SIZE, PATCH, MARGIN = 160, 96, 24
#: The patch's interior: the level-4 blur spreads the change over ~10 px, so
#: the patch's edge is left out.
INTERIOR = (slice((SIZE - PATCH) // 2 + MARGIN, (SIZE + PATCH) // 2 - MARGIN),) * 2


@pytest.fixture(scope="module")
def pulse():
    return pulsing_clip(240, SIZE, SIZE, FPS, ((0.5, PULSE), (2.0, OTHER)), patch=PATCH)


@pytest.fixture(scope="module")
def magnified(pulse):
    return magnify_colour(pulse, ALPHA, *BAND, FPS).compute(scheduler="sync")


def test_the_pulse_is_magnified_by_one_plus_alpha(pulse, magnified):
    gains = colour_gains(pulse, magnified, [PULSE, OTHER], FPS, INTERIOR)
    # the FIR passes 1.4 Hz at 1.000 and stops 5 Hz at -100 dB
    response = frequency_response(design_bandpass(*BAND, FPS), [PULSE, OTHER], FPS)
    assert response[0] == pytest.approx(1.0, abs=1e-3) and response[1] < 1e-4
    for channel, (in_band, out_of_band) in zip("YIQ", gains):
        assert in_band == pytest.approx(1 + ALPHA, rel=0.10), channel
        assert out_of_band == pytest.approx(1.0, abs=0.05), channel


def test_first_and_last_frames_are_magnified_like_the_rest(pulse, magnified):
    half = len(design_bandpass(*BAND, FPS)) // 2
    added = mean_colour(magnified, INTERIOR) - mean_colour(pulse, INTERIOR)
    truth = ALPHA * motion(len(pulse), FPS, ((0.5, PULSE),))[:, None] * (RGB_TO_YIQ @ PULSE_DIRECTION)
    for ends in (slice(0, half), slice(-half, None)):
        scale = np.sum(added[ends] * truth[ends]) / np.sum(truth[ends] ** 2)
        assert scale == pytest.approx(1.0, abs=0.10)
        assert np.corrcoef(added[ends].ravel(), truth[ends].ravel())[0, 1] > 0.98


def test_no_motion_is_added():
    """A static texture whose whole frame pulses: only its colour may change."""
    clip = pulsing_clip(240, 128, 128, FPS, ((0.5, PULSE),), patch=None)
    out = magnify_colour(clip, ALPHA, *BAND, FPS).compute(scheduler="sync")
    assert colour_gains(clip, out, [PULSE], FPS)[0, 0] == pytest.approx(1 + ALPHA, rel=0.10)
    assert np.abs(global_shifts(out)).max() < 0.01


def test_alpha_zero_returns_the_input(pulse):
    out = magnify_colour(pulse, 0.0, *BAND, FPS).compute(scheduler="sync")
    assert psnr(out, pulse) >= 45


def test_chroma_attenuation_zero_magnifies_luminance_only(pulse):
    out = magnify_colour(pulse, ALPHA, *BAND, FPS, chroma_attenuation=0.0).compute(scheduler="sync")
    (y, _), (i, _), (q, _) = colour_gains(pulse, out, [PULSE, OTHER], FPS, INTERIOR)
    assert y == pytest.approx(1 + ALPHA, rel=0.10)
    assert i == pytest.approx(1.0, abs=0.05) and q == pytest.approx(1.0, abs=0.05)


def test_time_chunking_does_not_change_the_output(pulse):
    clip = da.from_array(pulse[:150])
    outputs = [
        magnify_colour(clip, ALPHA, *BAND, FPS, time_chunk=chunk, min_blocks=blocks).compute(scheduler="sync")
        for chunk, blocks in ((None, 1), (46, 1), (61, 1), (None, 3))
    ]
    for other in outputs[1:]:
        assert np.abs(other.astype(int) - outputs[0]).max() <= 1


def test_result_is_lazy_with_three_tasks_per_block(pulse):
    out = magnify_colour(da.from_array(pulse), ALPHA, *BAND, FPS, time_chunk=80)
    assert isinstance(out, da.Array) and out.dtype == np.uint8 and out.shape == pulse.shape
    assert out.chunks[0] == (80, 80, 80)
    names = {}
    for prefix in ("colour-reduce", "colour-bandpass", "colour-magnify"):
        (names[prefix],) = [name for name in out.dask.layers if name.startswith(prefix)]
        assert len(out.dask.layers[names[prefix]]) == 3, prefix
    # the temporal halo is taken from the reduced stack, never from full-size frames
    (halo,) = out.dask.dependencies[names["colour-bandpass"]]
    assert halo.startswith("overlap") and out.dask.dependencies[halo] == {names["colour-reduce"]}
    assert not any(name.startswith("overlap") for name in out.dask.dependencies[names["colour-magnify"]])


def test_two_settings_in_one_graph_do_not_share_keys(pulse):
    a = magnify_colour(pulse[:100], ALPHA, *BAND, FPS)
    b = magnify_colour(pulse[:100], 0.0, *BAND, FPS)
    assert a.name != b.name
    x, y = da.compute(a, b, scheduler="sync")
    assert not np.array_equal(x, y) and np.array_equal(y, pulse[:100])


@pytest.mark.parametrize("shape,level", [((37, 50), 3), ((160, 96), 4), ((45, 45), 2)])
def test_reduction_is_mits_gaussian_pyramid(shape, level):
    pyrtools = pytest.importorskip("pyrtools")
    image = np.random.default_rng(0).random(shape)
    ours = reduce_matrix(shape[0], level) @ image @ reduce_matrix(shape[1], level).T
    assert np.allclose(ours, pyrtools.blurDn(image, level, "binom5"), atol=1e-12)


def test_expansion_is_upblur_and_keeps_a_constant():
    pyrtools = pytest.importorskip("pyrtools")
    small = np.random.default_rng(1).random((10, 6))
    ours = expand_matrix(160, 4) @ small @ expand_matrix(96, 4).T
    binomial = (np.array([1.0, 4.0, 6.0, 4.0, 1.0]) / 8.0)[:, None]
    assert np.allclose(ours, pyrtools.upBlur(small, 4, binomial), atol=1e-12)
    for n in (7, 8, 37, 160):  # odd sizes too: each row averages to 1
        assert np.allclose(expand_matrix(n, 3).sum(axis=1), 1.0)
        assert np.allclose(reduce_matrix(n, 3).sum(axis=1), 1.0)
    assert level_sizes(37, 3) == [37, 19, 10, 5]


def test_kernels_match_a_direct_computation(pulse):
    """reduce -> YIQ -> band-pass -> gains -> RGB -> expand, with plain NumPy."""
    clip = pulse[:120, :64, :48]
    taps = design_bandpass(*BAND, FPS)
    half = len(taps) // 2
    gains = channel_gains(ALPHA, 0.3)
    change = bandpass_change(reduce_to_yiq(clip, 2), taps, gains, half, 120 - half)
    out = add_expanded(clip[half:-half], change, 2)

    rows, cols = reduce_matrix(64, 2), reduce_matrix(48, 2)
    yiq = np.einsum("rh,thwc,sw->trsc", rows, clip.astype(float), cols) @ RGB_TO_YIQ.T
    filtered = np.stack([np.tensordot(taps, yiq[t - half : t + half + 1], axes=1)
                         for t in range(half, 120 - half)])
    filtered *= ALPHA * np.array([1.0, 0.3, 0.3])
    rgb_change = filtered @ np.linalg.inv(RGB_TO_YIQ).T
    full = np.einsum("hr,trsc,ws->thwc", expand_matrix(64, 2), rgb_change, expand_matrix(48, 2))
    expected = np.clip(np.rint(clip[half:-half] + full), 0, 255)
    assert np.abs(out.astype(int) - expected).max() <= 1


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"level": -1}, "level"),
        ({"level": 1.5}, "level"),
        ({"level": True}, "level"),
        ({"level": 6}, "too small for pyramid level 6"),
        ({"chroma_attenuation": -0.1}, "chroma"),
        ({"chroma_attenuation": float("nan")}, "chroma"),
        ({"alpha": float("nan")}, "alpha"),
        ({"low": 2.0, "high": 0.8}, "below"),
        ({"high": 15.0}, "Nyquist"),
        ({"taps": 2}, "3 taps"),
        ({"fps": None}, "fps"),
        ({"low": 0.1, "high": 0.5}, "40 frames .* one period of the band's upper edge"),
    ],
)
def test_bad_arguments(kwargs, message):
    clip = np.zeros((40, 64, 64, 3), np.uint8)
    settings = {"alpha": ALPHA, "low": BAND[0], "high": BAND[1], "fps": FPS} | kwargs
    with pytest.raises(UserError, match=message):
        magnify_colour(clip, **settings)


def test_colour_settings_are_checked_from_the_size_alone():
    check_colour(4, 1.0, 1080, 1920)
    check_colour(0, 0.0, 2, 2)
    with pytest.raises(UserError, match="1920x16 are too small for pyramid level 4"):
        check_colour(4, 1.0, 16, 1920)


@pytest.mark.parametrize(
    "clip,message",
    [
        (np.zeros((10, 32, 32), np.uint8), "RGB"),
        (np.zeros((10, 32, 32, 3), np.float32), "uint8"),
        (np.zeros((20, 16, 64, 3), np.uint8), "too small"),
    ],
)
def test_bad_arrays(clip, message):
    with pytest.raises(UserError, match=message):
        magnify_colour(clip, ALPHA, *BAND, FPS)


@pytest.mark.gpu
def test_cupy_kernels_give_the_numpy_result(pulse):
    import cupy

    clip = pulse[:150]
    taps = design_bandpass(*BAND, FPS)
    half = len(taps) // 2
    gains = channel_gains(ALPHA, 0.5)
    results = []
    for frames in (clip, cupy.asarray(clip)):
        change = bandpass_change(reduce_to_yiq(frames, 4), taps, gains, 0, 100, half, 0)
        results.append(add_expanded(frames[:100], change, 4))
    assert isinstance(results[1], cupy.ndarray)
    assert np.abs(results[1].get().astype(int) - results[0]).max() <= 1
