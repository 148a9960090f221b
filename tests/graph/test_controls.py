"""MIT phaseAmplify's controls, each measured: temporal filters, sigma, attenuate-other, negative alpha."""

import numpy as np
import pytest
import scipy.signal

from conftest import BAND, FPS, IN_BAND, OUT_OF_BAND
from daskmag.errors import UserError
from daskmag.graph.motion import magnify_motion
from daskmag.measure import motion_gain
from daskmag.synthetic import translating_clip
from daskmag.kernels.temporal import make_filter

FREQUENCIES = [1.0, 3.0, 4.0, 5.0, 6.0, 7.0, 10.0, 15.0]
FILTERS = [("fir", {}), ("ideal", {}), ("butter", {}), ("butter", {"order": 4}),
           ("butter", {"causal": True}), ("diff-iir", {}), ("window", {})]


def amplitude(signal, frequency, fps=FPS):
    t = np.arange(len(signal)) / fps
    design = np.stack([np.cos(2 * np.pi * frequency * t), np.sin(2 * np.pi * frequency * t), np.ones_like(t)], 1)
    return np.hypot(*np.linalg.lstsq(design, signal, rcond=None)[0][:2])


def through_production_path(temporal, signal):
    """The filtered phase of ``signal`` as pass 2 computes it: from increments, clip ends predicted."""
    n = len(signal)
    increments = np.diff(signal)[:, None].astype(np.float32)
    return temporal.phase(increments, 0, n, temporal.halo_before, temporal.halo_after)[:, 0]


def sliding_window_ideal(signal, low, high, window):
    """The predecessor's filter, but centred: per frame, an FFT of the window around it, masked."""
    before = window // 2
    freqs = np.abs(np.fft.fftfreq(window, 1 / FPS))
    mask = (freqs >= low) & (freqs <= high)
    out = np.full(len(signal), np.nan)
    for t in range(before, len(signal) - (window - 1 - before)):
        part = signal[t - before : t - before + window]
        out[t] = np.fft.ifft(np.fft.fft(part) * mask).real[before]
    return out


def scipy_response(kind, options, frequency):
    """The designed response from scipy.signal (or the ideal mask), built independently of daskmag."""
    low, high = BAND
    if kind == "fir":
        beta = scipy.signal.kaiser_beta(60)
        taps = make_filter("fir", low, high, FPS).taps
        taps = scipy.signal.firwin(len(taps), [low, high], pass_zero=False, window=("kaiser", beta), fs=FPS)
        return abs(scipy.signal.freqz(taps, worN=[frequency], fs=FPS)[1][0])
    if kind == "ideal":
        return float(low <= frequency <= high)
    if kind == "butter":
        sos = scipy.signal.butter(options.get("order", 2), [low, high], btype="bandpass", output="sos", fs=FPS)
        h = abs(scipy.signal.sosfreqz(sos, worN=[frequency], fs=FPS)[1][0])
        return h if options.get("causal") else h**2
    if kind == "diff-iir":
        # MIT's recursion, run on an impulse: l = (1 - r) l + r x per edge, output l_high - l_low
        r_high, r_low = (1 - np.exp(-2 * np.pi * f / FPS) for f in (high, low))
        impulse = np.zeros(2000)
        impulse[0] = 1
        l_high = scipy.signal.lfilter([r_high], [1, r_high - 1], impulse)
        l_low = scipy.signal.lfilter([r_low], [1, r_low - 1], impulse)
        return abs(scipy.signal.freqz(l_high - l_low, worN=[frequency], fs=FPS)[1][0])
    raise AssertionError(kind)


@pytest.mark.parametrize("kind,options", FILTERS, ids=lambda v: v if isinstance(v, str) else "-".join(map(str, v.values())))
def test_measured_response_matches_the_design(kind, options):
    """A sinusoidal phase (with a drift) through the production path comes out scaled as designed."""
    temporal = make_filter(kind, *BAND, FPS, **options)
    n = 240 if kind == "ideal" else 900  # the ideal filter's frequencies lie on the clip's FFT grid
    t = np.arange(n) / FPS
    errors = []
    for frequency in FREQUENCIES:
        signal = np.sin(2 * np.pi * frequency * t + 0.3) + (0 if kind == "ideal" else 0.5 * t)
        out = through_production_path(temporal, signal)
        if kind == "window":
            reference = sliding_window_ideal(signal, *BAND, 30)
            core = slice(30, -30)
            expected = amplitude(reference[core], frequency)
            assert np.allclose(out[core], reference[core], atol=1e-5)  # the same filter, sample by sample
        else:
            expected = scipy_response(kind, options, frequency)
        core = slice(None) if kind == "ideal" else slice(200, -200)
        measured = amplitude(out[core], frequency)
        errors.append(measured - expected)
        assert measured == pytest.approx(expected, rel=0.02, abs=0.01), frequency
    print(kind, options, "largest error", np.abs(errors).max())


@pytest.fixture(scope="module")
def long_clip():
    return translating_clip(400, 64, 64, FPS, ((0.1, IN_BAND), (0.1, OUT_OF_BAND)), seed=2)


@pytest.mark.parametrize("kind,options", FILTERS, ids=lambda v: v if isinstance(v, str) else "-".join(map(str, v.values())))
def test_every_filter_is_independent_of_the_time_chunks(long_clip, kind, options):
    temporal = make_filter(kind, *BAND, FPS, **options)
    halo = max(temporal.halo_before, temporal.halo_after)
    outputs = []
    for chunk in (None, halo + 2, halo + 13):
        out = magnify_motion(long_clip, 10, *BAND, FPS, filter=kind, time_chunk=chunk, **options)
        if kind != "ideal" and chunk is not None:
            assert len(out.chunks[0]) > 1
        outputs.append(out.compute(scheduler="sync"))
    for other in outputs[1:]:
        assert np.abs(other.astype(int) - outputs[0]).max() <= 1
    assert np.abs(outputs[0].astype(int) - long_clip).max() > 10  # it did magnify


def test_causal_filters_need_no_frames_after_a_block(long_clip):
    out = magnify_motion(long_clip, 10, *BAND, FPS, filter="butter", causal=True, time_chunk=100)
    temporal = make_filter("butter", *BAND, FPS, causal=True)
    assert temporal.halo_after == 0 and temporal.halo_before > 0
    assert out.chunks[0] == (100, 100, 100, 100)


def test_ideal_filter_refuses_clips_too_long_for_memory():
    import dask.array as da

    frames = da.zeros((100_000, 256, 256, 3), dtype=np.uint8, chunks=(100, -1, -1, -1))
    with pytest.raises(UserError, match="ideal.*too long"):
        magnify_motion(frames, 10, *BAND, FPS, filter="ideal")


def run(clip, alpha=10.0, **options):
    return magnify_motion(clip, alpha, *BAND, FPS, **options).compute(scheduler="sync")


def test_sigma_reduces_magnified_noise_and_keeps_the_gain():
    """Sensor noise of 3 grey levels: the change that noise adds to the output, with and without smoothing."""
    clean = translating_clip(120, 128, 128, FPS, ((0.1, IN_BAND),))
    noisy = translating_clip(120, 128, 128, FPS, ((0.1, IN_BAND),), noise=3.0)
    added, gain = {}, {}
    for sigma in (0.0, 3.0):
        out_noisy, out_clean = run(noisy, sigma=sigma), run(clean, sigma=sigma)
        added[sigma] = np.std((out_noisy.astype(float) - noisy) - (out_clean.astype(float) - clean))
        gain[sigma] = motion_gain(noisy, out_noisy, [IN_BAND], FPS, trim=20)[0]
    factor = added[0.0] / added[3.0]
    print(f"magnified noise: {added[0.0]:.3f} -> {added[3.0]:.3f} grey levels (factor {factor:.2f}); "
          f"in-band gain {gain[0.0]:.3f} -> {gain[3.0]:.3f}")
    assert factor >= 1.4
    assert gain[3.0] == pytest.approx(gain[0.0], rel=0.05)


def test_attenuate_other_removes_motion_outside_the_band(texture_clip):
    plain = motion_gain(texture_clip, run(texture_clip), [IN_BAND, OUT_OF_BAND], FPS, trim=20)
    attenuated = motion_gain(texture_clip, run(texture_clip, attenuate_other=True), [IN_BAND, OUT_OF_BAND],
                             FPS, trim=20)
    print("in-band", plain[0], "->", attenuated[0], "; out-of-band", plain[1], "->", attenuated[1])
    assert attenuated[1] <= 0.1
    assert attenuated[0] == pytest.approx(plain[0], rel=0.05)


def test_attenuate_other_keeps_a_slow_drift_and_ignores_the_chunks():
    """The reference is the phase's own low-pass: a sway far below the band stays as it was."""
    clip = translating_clip(240, 64, 64, FPS, ((0.5, 0.25), (0.1, IN_BAND), (0.1, OUT_OF_BAND)), seed=4)
    whole = run(clip, attenuate_other=True)
    chunked = run(clip, attenuate_other=True, time_chunk=50)
    assert np.abs(whole.astype(int) - chunked).max() <= 1
    attenuated = motion_gain(clip, whole, [0.25, OUT_OF_BAND], FPS, trim=40)
    plain = motion_gain(clip, run(clip), [0.25, OUT_OF_BAND], FPS, trim=40)
    assert attenuated[0] == pytest.approx(plain[0], abs=0.05)
    assert attenuated[1] < plain[1] / 3  # (0.05 on the larger, steadier texture_clip, above)


def test_negative_alpha_removes_motion_in_the_band(texture_clip):
    gains = motion_gain(texture_clip, run(texture_clip, alpha=-1.0), [IN_BAND, OUT_OF_BAND], FPS, trim=20)
    print("alpha -1: in-band", gains[0], "out-of-band", gains[1])
    assert gains[0] <= 0.1
    assert gains[1] == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize("options,message", [
    ({"filter": "median"}, "unknown temporal filter"),
    ({"sigma": -1.0}, "sigma"),
    ({"filter": "butter", "order": 0}, "order"),
    ({"filter": "fir", "causal": True}, "--causal"),
    ({"filter": "butter", "taps": 31}, "--taps"),
])
def test_bad_controls(texture_clip, options, message):
    with pytest.raises(UserError, match=message):
        magnify_motion(texture_clip, 10, *BAND, FPS, **options)
