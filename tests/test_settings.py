"""The settings objects: each checks itself in one line, and round-trips through JSON."""

import json

import pytest

from daskmag.errors import UserError
from daskmag.kernels.pyramid import PyramidSpec
from daskmag.settings import (Band, ColourSettings, Execution, MotionSettings, OutputSettings, Selection,
                              mode_settings, pyramid_spec)


@pytest.mark.parametrize("make,message", [
    (lambda: Band(7, 3), "below the high"),
    (lambda: Band(0, 3), "above 0 Hz"),
    (lambda: Band(3, float("nan")), "finite"),
    (lambda: Band(3, 7, -5), "positive"),
    (lambda: Band(72, 92).at_rate(29.97), "Nyquist.*--fps"),
    (lambda: Band(250, 400, fps=600).at_rate(29.97), r"Nyquist frequency \(300 Hz\).*band below 300 Hz$"),
    (lambda: MotionSettings(alpha=float("inf")), "alpha"),
    (lambda: MotionSettings(taps=2), "3 taps"),
    (lambda: MotionSettings(filter="median"), "unknown temporal filter"),
    (lambda: MotionSettings(filter="butter", order=11), "order must be 1 to 10"),
    (lambda: MotionSettings(causal=True), "--causal applies to --filter butter"),
    (lambda: MotionSettings(filter="ideal", taps=31), "not ideal"),
    (lambda: MotionSettings(sigma=-1), "sigma"),
    (lambda: ColourSettings(level=-1), "level"),
    (lambda: ColourSettings(chroma_attenuation=-0.5), "chroma"),
    (lambda: Selection(scale=0), "--scale"),
    (lambda: Selection(scale=1.5), "--scale"),
    (lambda: Selection(max_frames=0), "--max-frames must be at least 1"),
    (lambda: Selection(roi="1,2,3"), "x,y,w,h"),
    (lambda: Selection(roi="-1,2,3,4"), "outside the frame"),
    (lambda: Selection(roi="1,2,0,4"), "no pixels"),
    (lambda: Selection(start="soon"), "--start must be frames"),
    (lambda: Selection(on_corrupt="skip"), "on_corrupt"),
    (lambda: OutputSettings(crf=99), "--crf must be from 0 to 51"),
    (lambda: OutputSettings(crf=-1), "--crf must be from 0 to 51"),
    (lambda: OutputSettings(crf="high"), "--crf must be a number"),
    (lambda: OutputSettings(crf=float("nan")), "--crf must be a (finite )?number"),
    (lambda: Execution(tile=-5), "--tile must be at least 0"),
    (lambda: Execution(tile=5), "--tile must be 0 .* or at least 16"),
    (lambda: Execution(workers=0), "--workers must be at least 1"),
    (lambda: Execution(time_chunk=0), "--time-chunk must be at least 1"),
    (lambda: Execution(device="tpu"), "unknown device"),
    (lambda: pyramid_spec("octave", 0), "--orientations must be at least 1"),
    (lambda: pyramid_spec("third-octave"), "unknown pyramid"),
])
def test_each_setting_is_checked_on_construction(make, message):
    with pytest.raises(UserError, match=message) as caught:
        make()
    assert "\n" not in str(caught.value)


def test_defaults_live_in_the_settings():
    motion = MotionSettings()
    assert (motion.alpha, motion.filter, motion.taps, motion.sigma) == (10.0, "fir", None, 0.0)
    assert motion.pyramid == PyramidSpec("octave", 4)
    assert ColourSettings().level == 4
    assert OutputSettings().crf == 15.8
    assert OutputSettings(crf=20.0).crf == 20 and OutputSettings(crf="17.5").crf == 17.5
    assert Band(3, 7, -1).fps is None  # the predecessor's "-1": the file's own rate


def test_the_band_takes_the_stored_rate_unless_a_recording_rate_is_given():
    assert Band(72, 92).at_rate(600).fps == 600
    assert Band(72, 92, 600).at_rate(30000 / 1001).fps == 600


@pytest.mark.parametrize("settings", [
    MotionSettings(alpha=20, filter="butter", order=3, causal=True, pyramid=PyramidSpec("half-octave"), sigma=2),
    ColourSettings(alpha=50, level=5, chroma_attenuation=0.5, taps=101),
    Band(72, 92, 600),
    Selection(start="2.5s", end=300, max_frames=100, scale=0.5, roi=(1, 2, 30, 40), on_corrupt="repeat"),
    OutputSettings(crf=23, overwrite=True),
    Execution(workers=3, scheduler="tcp://127.0.0.1:8786", time_chunk=64, tile=0),
])
def test_settings_round_trip_through_json(settings):
    text = json.dumps(settings.to_dict())
    assert type(settings).from_dict(json.loads(text)) == settings


def test_a_setting_of_the_other_mode_is_refused_not_ignored():
    with pytest.raises(UserError, match="--sigma applies to --mode motion only"):
        mode_settings("colour", sigma=2.0)
    with pytest.raises(UserError, match="--chroma-attenuation, --level apply to --mode color only"):
        mode_settings("motion", level=4, chroma_attenuation=0.5)
    assert mode_settings("color", alpha=5, level=3) == ColourSettings(alpha=5, level=3)
    assert mode_settings("motion", alpha=None, sigma=0) == MotionSettings()


def test_a_clip_must_span_one_period_of_the_band_upper_edge():
    band = Band(1, 2, 20000)
    band.check_duration(10000)  # exactly one period of 2 Hz
    with pytest.raises(UserError, match=r"^9999 frames at 20000 fps \(500 ms\) are shorter than one period "
                                        r"of the band's upper edge \(2 Hz: 500 ms\)"):
        band.check_duration(9999)
    with pytest.raises(UserError, match=r"96 frames at 20000 fps \(4.8 ms\)"):
        band.check_duration(96)
    Band(72, 92, 600).check_duration(7)  # guitar.mp4's band: a period is 6.5 frames
    Band(1, 2).check_duration(1)  # the rate is not known yet: nothing to check
