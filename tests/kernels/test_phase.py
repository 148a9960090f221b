"""The fused kernel: amplification measured on synthetic video with known sub-pixel motion."""

import numpy as np
import pytest

from conftest import BAND, FPS, IN_BAND, OUT_OF_BAND, psnr
from daskmag.measure import global_shifts, pairwise_shifts, sinusoid_amplitudes
from daskmag.kernels.phase import magnify_block, phase_increments
from daskmag.kernels.pyramid import PyramidSpec
from daskmag.synthetic import motion, translating_clip
from daskmag.kernels.temporal import design_bandpass

ALPHA = 10.0


def magnify(clip, alpha=ALPHA, band=BAND, fps=FPS):
    taps = design_bandpass(*band, fps)
    half = len(taps) // 2
    return magnify_block(clip, taps, alpha, PyramidSpec(), 0, len(clip), half, half), half


def gains(before, after, trim=0):
    sl = slice(trim, len(before) - trim)
    a = sinusoid_amplitudes(global_shifts(before)[sl, 1], [IN_BAND, OUT_OF_BAND], FPS)
    b = sinusoid_amplitudes(global_shifts(after)[sl, 1], [IN_BAND, OUT_OF_BAND], FPS)
    return b / a


def test_broadband_texture_in_band_and_out_of_band(texture_clip):
    out, _ = magnify(texture_clip)
    in_band, out_of_band = gains(texture_clip, out)
    # an exact octave implementation gives about 1 + 0.9 alpha on broadband texture
    assert in_band >= 1 + 0.85 * ALPHA
    assert in_band == pytest.approx(1 + 0.9 * ALPHA, rel=0.05)
    assert out_of_band == pytest.approx(1.0, abs=0.03)


def test_pure_grating_is_magnified_by_exactly_one_plus_alpha(grating_clip):
    out, half = magnify(grating_clip)
    # measured away from the clip's ends, where the filter sees no reflection
    in_band, out_of_band = gains(grating_clip, out, trim=half)
    assert in_band == pytest.approx(1 + ALPHA, rel=0.03)
    assert out_of_band == pytest.approx(1.0, abs=0.03)


def test_every_frame_is_magnified_including_the_first(texture_clip):
    out, half = magnify(texture_clip)
    added = pairwise_shifts(texture_clip, out)[:, 1]
    truth = ALPHA * motion(len(texture_clip), FPS, ((0.1, IN_BAND),))
    # the motion added in the first and last half-windows follows the truth too
    assert np.corrcoef(added[:half], truth[:half])[0, 1] > 0.95
    assert np.corrcoef(added[-half:], truth[-half:])[0, 1] > 0.9


def test_alpha_zero_returns_the_input(texture_clip):
    out, _ = magnify(texture_clip, alpha=0.0)
    assert psnr(out, texture_clip) >= 45


def test_colour_is_kept(texture_clip):
    out, _ = magnify(texture_clip)
    assert out.shape == texture_clip.shape and out.dtype == np.uint8
    # the chroma of every pixel barely moves while luminance motion is magnified
    chroma_in = texture_clip.astype(float) - texture_clip.mean(axis=-1, keepdims=True)
    chroma_out = out.astype(float) - out.mean(axis=-1, keepdims=True)
    assert np.abs(chroma_out - chroma_in).max() <= 1.0
    assert np.std(chroma_in) > 5  # the clip is really coloured


def test_a_slow_drift_of_many_radians_does_not_wrap_into_spikes():
    """12 px of drift (phase wraps several times in the fine bands) plus 0.1 px at 5 Hz."""
    n = 120
    frames = translating_clip(n, 96, 96, FPS, ((0.1, IN_BAND),))
    drift = translating_clip(n, 96, 96, FPS, ((0.1, IN_BAND),))
    from daskmag.synthetic import texture, translate

    image = texture(96, 96, 0)
    shifts = 0.1 * np.arange(n) + motion(n, FPS, ((0.1, IN_BAND),))
    drift = np.stack([np.clip(np.rint(translate(image, dx) * 255), 0, 255).astype(np.uint8) for dx in shifts])
    out, half = magnify(drift)
    added = pairwise_shifts(drift, out)[:, 1]
    expected = ALPHA * motion(n, FPS, ((0.1, IN_BAND),))
    residual = added - 0.9 * expected
    assert np.abs(residual).max() < 0.25  # no spike anywhere: a wrap would add whole pixels
    amp = sinusoid_amplitudes(added[half:-half], [IN_BAND], FPS)[0]
    assert amp == pytest.approx(0.9 * ALPHA * 0.1, rel=0.12)
    del frames


def test_phase_increments_are_wrapped_differences():
    phase = np.cumsum(np.random.default_rng(0).uniform(-3, 3, 50))
    coefficients = 2.0 * np.exp(1j * phase).astype(np.complex64)
    step = phase_increments(coefficients[:, None])
    assert np.allclose(step[:, 0], np.diff(phase), atol=1e-5)
    assert step.dtype == np.float32


def test_reused_working_memory_changes_no_result(texture_clip, grating_clip):
    """The kernel's working memory is reused between calls (``scratch_arrays``):
    a result must not change when the same thread runs another block, and
    running a block again must give the same frames."""
    first, _ = magnify(texture_clip)
    kept = first.copy()
    magnify(grating_clip[:40])  # a different block size in between
    magnify(grating_clip)
    assert np.array_equal(first, kept)
    again, _ = magnify(texture_clip)
    assert np.array_equal(again, kept)


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_phase_shift_in_place_over_its_increments_equals_a_separate_output(dtype, monkeypatch):
    from daskmag.kernels import phase
    from daskmag.kernels.phase import phase_shift
    from daskmag.kernels.temporal import FIRFilter

    rng = np.random.default_rng(1)
    temporal = FIRFilter(design_bandpass(*BAND, FPS))
    half = temporal.halo_before
    frames = 3 * half
    # room for `frames` output frames over `frames - 1` increments, as magnify_block lays them out
    buffer = np.zeros((frames, 37, 50), dtype=dtype)
    buffer[:-1] = (0.05 * rng.standard_normal((frames - 1, 37, 50))).astype(dtype)
    increments = buffer[:-1]
    # strips of 5 rows: later strips are read after earlier ones were written over
    monkeypatch.setattr(phase, "STRIP_BYTES", 5 * (frames - 1) * 50 * 4)
    for start, stop, pads in [(half, 2 * half, (0, 0)), (0, frames, (half, half))]:
        separate = phase_shift(increments.copy(), temporal, ALPHA, start, stop, *pads)
        work = buffer.copy()
        in_place = phase_shift(work[:-1], temporal, ALPHA, start, stop, *pads, out=work[: stop - start])
        assert np.shares_memory(in_place, work)
        np.testing.assert_array_equal(in_place, separate)


def test_a_strips_phase_shifts_do_not_keep_its_window_alive():
    """Stage 2's result is held until stage 3: as a view of the filter's window
    (the group and both halos) it kept 2.5 times its size alive at 1080p."""
    from daskmag.kernels.phase import shift_strip
    from daskmag.kernels.temporal import FIRFilter

    fir = FIRFilter(design_bandpass(3.0, 7.0, 60.0))
    rng = np.random.default_rng(0)
    pieces = [rng.normal(0, 0.05, (40, 6, 8)).astype(np.float16) for _ in range(3)]
    shifts = shift_strip(pieces, 0, 40, 80, 120, fir, 10.0)
    # float32 from float16 increments: float16 shifts (up to alpha times a phase) rounded to 2e-3 rad
    assert shifts.shape == (40, 6, 8) and shifts.dtype == np.float32
    assert shifts.base is None  # its own memory, not a window's rows
    # the values are the filter's on the concatenated series, as before
    series = np.concatenate(pieces).astype(np.float32)  # row t: the change into frame t
    w0, w1 = 40 - fir.halo_before, 80 + fir.halo_after
    expected = 10.0 * fir.phase(series[w0 + 1 : w1], 40 - w0, 80 - w0)
    np.testing.assert_allclose(shifts, expected, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize("kind, attenuate", [("fir", False), ("fir", True), ("butter", False)])
def test_a_strip_filtered_from_the_chunks_pieces_equals_the_joined_window(kind, attenuate, dtype, monkeypatch):
    """Stage 2 reads the window's increments as views of the chunks' pieces
    (no joined copy): bit for bit what the joined window gives, at the clip's
    start and end (the clip-end fits reach across pieces: chunks of 9 frames)
    and inside it, over several strips of rows."""
    from daskmag.kernels import phase
    from daskmag.kernels.phase import phase_shift, shift_strip
    from daskmag.kernels.temporal import make_filter, reference_highpass

    temporal = make_filter(kind, 3.0, 7.0, 60.0)
    reference = reference_highpass(1.0, 60.0) if attenuate else None
    halos = tuple(max(f.halo_before if side == 0 else f.halo_after for f in (temporal, reference) if f)
                  for side in (0, 1))
    rng = np.random.default_rng(2)
    t = np.arange(120)[:, None, None]
    series = (0.3 * np.sin(2 * np.pi * 5 * t / 60 + rng.uniform(0, 6, (1, 6, 8)))
              + rng.normal(0, 0.05, (120, 6, 8))).astype(dtype)
    sizes = [9, 9, 30, 20, 9, 43]
    pieces = np.split(series, np.cumsum(sizes)[:-1])
    monkeypatch.setattr(phase, "STRIP_BYTES", 2 * 8 * 4 * (120 + sum(halos)))  # strips of 2 rows
    for start, stop in [(0, 40), (40, 80), (80, 120), (0, 120)]:
        got = shift_strip(pieces, 0, start, stop, 120, temporal, 10.0, reference, halos)
        w0, w1 = max(start - halos[0], 0), min(stop + halos[1], 120)
        joined = np.ascontiguousarray(series[w0 + 1 : w1])  # as the window was copied before
        expected = phase_shift(joined, temporal, 10.0, start - w0, stop - w0, halos[0] - (start - w0),
                               halos[1] - (w1 - stop), reference, out=np.empty((stop - start, 6, 8), np.float32))
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("shape, frames, min_strips", [((192, 432), 410, 2), ((1080, 1920), 60, 1),
                                                       ((1080, 1920), 200, 3), ((64, 64), 100, 5)])
def test_band_strips_cover_every_row_once_in_even_strips(shape, frames, min_strips):
    """Stage 2's strips: every row of every band once, in order; as many strips
    as the budget needs, rounded up to a multiple of ``min_strips``; sizes
    within one row of each other."""
    from daskmag.kernels.phase import band_strips, coefficient_count
    from daskmag.kernels.pyramid import pyramid_filters

    spec = PyramidSpec()
    bands = pyramid_filters(shape, spec).bands
    per_row_frame, budget = frames * 4, 128 * 2**20
    strips = band_strips(shape, spec, per_row_frame, budget, min_strips)
    total = coefficient_count(shape, spec) * per_row_frame
    needed = -(-total // budget)
    assert len(strips) == -(-needed // min_strips) * min_strips
    segments = [segment for strip in strips for segment in strip]
    assert [j for j, _, _ in segments] == sorted(j for j, _, _ in segments)  # fine to coarse
    for j, band in enumerate(bands):
        rows = [(r0, r1) for b, r0, r1 in segments if b == j]
        assert rows[0][0] == 0 and rows[-1][1] == band.shape[0]
        assert all(a[1] == b[0] for a, b in zip(rows, rows[1:]))
    sizes = [sum((r1 - r0) * bands[j].shape[1] * per_row_frame for j, r0, r1 in strip) for strip in strips]
    widest_row = max(band.shape[1] for band in bands) * per_row_frame
    assert max(sizes) - min(sizes) <= 2 * widest_row
    assert max(sizes) <= min(budget, total / len(strips)) + widest_row
