"""The command line, run as a user runs it: real processes, real files."""

import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from conftest import BAND, FPS, IN_BAND, OUT_OF_BAND
from daskmag import PyramidSpec, magnify_motion
from daskmag.io import open_video, probe


def daskmag(*args, cwd=None):
    """Run ``python -m daskmag ARGS``; return the completed process."""
    return subprocess.run([sys.executable, "-m", "daskmag", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=300)


def assert_user_error(result, *words):
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for word in words:
        assert word.lower() in lines[0].lower(), lines[0]


def test_magnify_keeps_frames_size_rate_and_colour(tmp_path, clip_file):
    out = tmp_path / "out.mkv"
    result = daskmag("magnify", clip_file, "-o", out, "--alpha", 10, "--low", BAND[0], "--high", BAND[1],
                     "--workers", 2)
    assert result.returncode == 0, result.stderr
    assert "dashboard:" not in result.stderr  # a short clip: no dashboard unless asked (--dashboard)
    info, source = probe(out), probe(clip_file)
    assert (info.n_frames, info.width, info.height, info.fps) == (120, 128, 128, Fraction(60))
    frames, original = open_video(out).frames.compute(), open_video(clip_file).frames.compute()
    chroma = lambda f: f.astype(float) - f.mean(axis=-1, keepdims=True)  # noqa: E731
    assert np.abs(chroma(frames) - chroma(original)).max() <= 1.0
    assert np.abs(frames.astype(int) - original).max() > 5  # and it did magnify
    assert not list(tmp_path.glob(".*partial*"))
    del source


def test_predecessor_flags(tmp_path, clip_file):
    out = tmp_path / "old.avi"
    result = daskmag("magnify", "-v", clip_file, "-s", out, "-a", 10, "-lo", BAND[0], "-ho", BAND[1],
                     "-ws", 41, "-mf", 50, "-f", -1, "-t", 1, "-acc", "cpu")
    assert result.returncode == 0, result.stderr
    assert probe(out).n_frames == 50


def test_half_octave_pyramid(tmp_path, clip_file):
    out = tmp_path / "half.mkv"
    result = daskmag("magnify", clip_file, "-o", out, "-a", 10, "--low", BAND[0], "--high", BAND[1],
                     "--pyramid", "half-octave", "-mf", 60, "--workers", 1)
    assert result.returncode == 0, result.stderr
    info = probe(out)
    assert (info.n_frames, info.width, info.height) == (60, 128, 128)
    frames, original = open_video(out).frames.compute(), open_video(clip_file, max_frames=60).frames.compute()
    # the file holds what the library makes with that pyramid (8 orientations by default)
    expected = magnify_motion(original, 10, *BAND, FPS, pyramid=PyramidSpec("half-octave")).compute(scheduler="sync")
    assert np.abs(frames.astype(int) - expected).max() <= 1
    assert np.abs(frames.astype(int) - original).max() > 5  # and it did magnify


def test_mp4_output_keeps_the_ntsc_rate(tmp_path, ntsc_file):
    out = tmp_path / "out.mp4"
    result = daskmag("magnify", ntsc_file, "-o", out, "-a", 5, "--low", 1, "--high", 3, "--workers", 1)
    assert result.returncode == 0, result.stderr
    info = probe(out)
    assert info.fps == Fraction(30000, 1001) and info.n_frames == 45


def test_zarr_output_and_ingested_input(tmp_path, clip_file):
    store = tmp_path / "in.zarr"
    ingested = daskmag("ingest", clip_file, "-o", store)
    assert ingested.returncode == 0, ingested.stderr
    assert "dashboard:" not in ingested.stderr  # a short clip, as magnify: no dashboard unless asked
    out = tmp_path / "out.zarr"
    result = daskmag("magnify", store, "-o", out, "-a", 10, "--low", BAND[0], "--high", BAND[1])
    assert result.returncode == 0, result.stderr
    assert open_video(out).frames.shape == (120, 128, 128, 3)
    reference = tmp_path / "ref.mkv"
    assert daskmag("magnify", clip_file, "-o", reference, "-a", 10, "--low", BAND[0], "--high", BAND[1]).returncode == 0
    assert np.array_equal(open_video(out).frames.compute(), open_video(reference).frames.compute())


def test_info(clip_file):
    result = daskmag("info", clip_file)
    assert result.returncode == 0
    assert "frames:    120" in result.stdout and "128x128" in result.stdout and "ffv1" in result.stdout


def test_overwrite(tmp_path, clip_file):
    out = tmp_path / "out.mkv"
    out.write_bytes(b"keep me")
    args = ["magnify", clip_file, "-o", out, "-a", 10, "--low", BAND[0], "--high", BAND[1], "-mf", 20]
    assert_user_error(daskmag(*args), "exists", "--overwrite")
    assert out.read_bytes() == b"keep me"
    assert daskmag(*args, "--overwrite").returncode == 0
    assert probe(out).n_frames == 20


@pytest.mark.parametrize(
    "extra,words",
    [
        (["-a", "nan"], ["alpha"]),
        (["-a", "inf"], ["alpha"]),
        (["--low", "7", "--high", "3"], ["below"]),
        (["--low", "0"], ["above 0"]),
        (["--low", "-2"], ["above 0"]),
        (["--low", "40", "--high", "45"], ["nyquist", "--fps"]),
        (["--taps", "2"], ["taps"]),
        (["--accel", "cuda"], ["cuda", "not available"]),
        (["--low", "abc"], ["number"]),
        (["--orientations", "0"], ["--orientations", "at least 1"]),
        (["--pyramid", "third-octave"], ["--pyramid", "invalid choice"]),
        (["--on-corrupt", "skip"], ["--on-corrupt", "invalid choice"]),
        (["--start", "120"], ["--start", "outside", "120 frames"]),
        (["--end", "2.5s"], ["--end", "outside", "2.000 s"]),
        (["--start", "50", "--end", "0.5s"], ["before --end"]),
        (["--start", "two"], ["--start", "seconds"]),
        (["--scale", "0"], ["--scale", "above 0"]),
        (["--scale", "1.5"], ["--scale", "at most 1"]),
        (["--scale", "0.1"], ["too small"]),
        (["--roi", "1,2,3"], ["--roi", "x,y,w,h"]),
        (["--roi", "100,100,50,50"], ["--roi", "outside", "128x128"]),
        (["--roi", "10,10,0,20"], ["--roi", "no pixels"]),
        (["--filter", "median"], ["--filter", "invalid choice"]),
        (["--sigma", "-2"], ["sigma"]),
        (["--filter", "butter", "--order", "0"], ["order"]),
        (["--filter", "butter", "-ws", "31"], ["--taps", "butter"]),
        (["--tile", "-5"], ["--tile", "at least 0"]),
        (["--tile", "8"], ["--tile", "at least 16"]),
        (["--crf", "99"], ["--crf", "0 to 51"]),
        (["--crf", "-1"], ["--crf", "0 to 51"]),
        (["--time-chunk", "0"], ["--time-chunk", "at least 1"]),
        (["--workers", "0"], ["--workers", "at least 1"]),
        (["--max-frames", "0"], ["--max-frames", "at least 1"]),
        (["--mode", "color", "--sigma", "2"], ["--sigma", "--mode motion only"]),
        (["--mode", "color", "--filter", "butter"], ["--filter", "--mode motion only"]),
        (["--mode", "color", "--level", "9"], ["too small", "level 9"]),
        (["--pyramid", "riesz", "--orientations", "4"], ["--orientations", "riesz"]),
        (["--low", "0.1", "--high", "0.4"], ["120 frames at 60 fps (2 s)", "one period", "0.4 Hz: 2.5 s"]),
        (["--mode", "color", "--low", "0.1", "--high", "0.4"], ["120 frames", "one period"]),
        (["--max-frames", "8"], ["8 frames at 60 fps", "7 Hz"]),
    ],
)
def test_bad_settings_are_one_line_errors(tmp_path, clip_file, extra, words):
    out = tmp_path / "out.mkv"
    args = {"--low": BAND[0], "--high": BAND[1], "-a": 10}
    for flag, value in zip(extra[::2], extra[1::2]):
        args[flag] = value
    flat = [item for pair in args.items() for item in pair]
    assert_user_error(daskmag("magnify", clip_file, "-o", out, *flat), *words)
    assert list(tmp_path.iterdir()) == []


def test_a_filter_longer_than_the_clip_warns_and_every_frame_is_written(tmp_path, clip_file):
    """2-4 Hz at 60 fps reaches 55 frames each side: more than a 40-frame clip, which is still magnified whole."""
    out = tmp_path / "out.mkv"
    result = daskmag("magnify", clip_file, "-o", out, "--low", 2, "--high", 4, "--max-frames", 40,
                     "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "warning: the 2-4 Hz filter reaches 55 frames each side of a 40-frame clip" in result.stderr
    assert probe(out).n_frames == 40
    result = daskmag("magnify", clip_file, "-o", out, "--low", 2, "--high", 4, "--max-frames", 60,
                     "--no-progress", "--overwrite")
    assert result.returncode == 0 and "warning" not in result.stderr, result.stderr


def test_band_above_nyquist_suggests_fps(tmp_path, ntsc_file):
    result = daskmag("magnify", ntsc_file, "-o", tmp_path / "o.mp4", "-a", 20, "--low", 72, "--high", 92)
    assert_user_error(result, "nyquist", "--fps 600")


@pytest.mark.parametrize(
    "make,words",
    [
        (lambda d: d / "missing.mp4", ["not found"]),
        (lambda d: _write(d / "text.mp4", b"not a video at all\n" * 100), ["cannot read"]),
        (lambda d: _write(d / "empty.mp4", b""), ["empty.mp4"]),
        (lambda d: _truncated(d), ["truncated.mp4"]),
    ],
)
def test_bad_inputs_are_one_line_errors(tmp_path, ntsc_file, make, words):
    global NTSC
    NTSC = ntsc_file
    source = make(tmp_path)
    result = daskmag("magnify", source, "-o", tmp_path / "out.mkv", "-a", 10, "--low", 1, "--high", 3)
    assert_user_error(result, *words)


def test_a_missing_input_is_named_before_missing_settings(tmp_path):
    result = daskmag("magnify", tmp_path / "missing.mp4", "-o", tmp_path / "out.mp4")  # and no band
    assert_user_error(result, "input not found", "missing.mp4")
    assert not (tmp_path / "out.mkv").exists()
    assert not list(tmp_path.glob(".*partial*"))


def _write(path, data):
    path.write_bytes(data)
    return path


def _truncated(folder):
    data = NTSC.read_bytes()
    return _write(folder / "truncated.mp4", data[: len(data) // 3])


def test_zero_frame_video(tmp_path):
    import av

    path = tmp_path / "zero.mkv"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=30)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "bgr0"
        container.start_encoding()  # a header and no frames
    result = daskmag("magnify", path, "-o", tmp_path / "o.mkv", "-a", 10, "--low", 1, "--high", 3)
    assert_user_error(result, "no frames")


@pytest.mark.parametrize(
    "name,words", [("out.gif", ["extension"]), ("nowhere/out.mp4", ["folder does not exist"])]
)
def test_bad_outputs(tmp_path, clip_file, name, words):
    result = daskmag("magnify", clip_file, "-o", tmp_path / name, "-a", 10, "--low", BAND[0], "--high", BAND[1])
    assert_user_error(result, *words)


def test_output_folder_not_writable(tmp_path, clip_file):
    if os.geteuid() == 0:
        locked = Path("/sys")  # root may write anywhere but into a kernel pseudo-filesystem
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o555)
    before = sorted(os.listdir(locked))
    result = daskmag("magnify", clip_file, "-o", locked / "out.mkv", "-a", 10, "--low", BAND[0],
                     "--high", BAND[1])
    assert_user_error(result, "not writable")
    assert sorted(os.listdir(locked)) == before


def test_usage_errors_are_one_line(tmp_path):
    result = daskmag("magnify", "--alpha")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    result = daskmag("frobnicate")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1


def test_help_lists_the_controls_with_units():
    result = daskmag("magnify", "--help")
    assert result.returncode == 0
    for text in ("--alpha", "--low", "Hz", "--taps", "--workers", "--scheduler", "-lo", "-ws", "--overwrite",
                 "--pyramid", "quarter-octave", "--orientations", "--start", "--end", "seconds", "2.5s",
                 "--scale", "--roi", "X,Y,W,H", "pixels of the input frame", "--filter", "diff-iir", "--order",
                 "--causal", "--sigma PX", "pixels", "--attenuate-other", "--window", "frames"):
        assert text in result.stdout


def test_causal_needs_butter(tmp_path, clip_file):
    result = daskmag("magnify", clip_file, "-o", tmp_path / "out.mkv", "--low", BAND[0], "--high", BAND[1],
                     "--filter", "window", "--causal")
    assert_user_error(result, "--causal", "butter")


def test_controls_from_the_command_line_match_the_api(tmp_path, clip_file):
    """--filter window -ws 24 --sigma 2 --attenuate-other gives what magnify_motion gives."""
    out = tmp_path / "controls.mkv"
    result = daskmag("magnify", clip_file, "-o", out, "-a", 10, "--low", BAND[0], "--high", BAND[1],
                     "--filter", "window", "-ws", 24, "--sigma", 2, "--attenuate-other", "--workers", 1)
    assert result.returncode == 0, result.stderr
    expected = magnify_motion(open_video(clip_file), 10, *BAND, filter="window", taps=24, sigma=2,
                              attenuate_other=True).compute(scheduler="sync")
    assert np.abs(open_video(out).frames.compute().astype(int) - expected).max() <= 1


def test_demo_writes_its_files_and_reports_the_gain(tmp_path):
    result = daskmag("demo", "-o", tmp_path / "demo", "--workers", 2)
    assert result.returncode == 0, result.stderr
    names = sorted(p.name for p in (tmp_path / "demo").iterdir())
    assert names == ["input.mkv", "magnified.mkv", "side_by_side.mp4"]
    # both pictures under their labels (white text on black strips), frame for frame
    from daskmag.kernels.annotate import LABEL_HEIGHT

    source, pair = open_video(tmp_path / "demo" / "input.mkv"), open_video(tmp_path / "demo" / "side_by_side.mp4")
    n, height, width, _ = source.frames.shape
    assert pair.frames.shape[:3] == (n, height + LABEL_HEIGHT, 2 * width + 8)
    strips = pair.frames[0, :LABEL_HEIGHT].compute().astype(int)
    assert (strips[:, :width] > 200).any() and (strips[:, width + 8 :] > 200).any()  # text in each
    assert np.median(strips) < 30  # on black
    line = next(line for line in result.stderr.splitlines() if "(in band)" in line)
    gain = float(line.split(":")[1].split("x")[0])
    assert gain > 1 + 0.85 * 20
    assert_user_error(daskmag("demo", "-o", tmp_path / "demo"), "exists")


def test_colour_mode_amplifies_a_pulse(tmp_path):
    from daskmag.measure import colour_gains
    from daskmag.synthetic import pulsing_clip
    from daskmag.io import write_array

    clip = pulsing_clip(120, 96, 96, 30.0, ((0.5, 1.4),), patch=64)
    source = tmp_path / "pulse.mkv"
    write_array(clip, source, 30)
    out = tmp_path / "out.mkv"
    result = daskmag("magnify", source, "-o", out, "--mode", "color", "--level", 3, "--alpha", 30,
                     "--low", 0.8, "--high", 2.0)
    assert result.returncode == 0, result.stderr
    region = (slice(32, 64), slice(32, 64))
    gains = colour_gains(clip, open_video(out).frames.compute(), [1.4], 30.0, region)
    assert gains[0, 0] == pytest.approx(31, rel=0.1)  # Y at the pulse frequency


def test_colour_options_need_colour_mode(tmp_path, clip_file):
    result = daskmag("magnify", clip_file, "-o", tmp_path / "o.mkv", "-a", 10, "--low", BAND[0],
                     "--high", BAND[1], "--level", 3)
    assert_user_error(result, "--mode color")


def assert_run_error(result, *words):
    """A mistake found while the cluster runs: exit 2 and one error line (after the dashboard's)."""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and "Compute Failed" not in result.stderr, result.stderr
    ours = [line for line in result.stderr.splitlines() if line.startswith("daskmag:")]
    assert len(ours) == 1 and ours[0].startswith("daskmag: error:"), result.stderr
    for word in words:
        assert word.lower() in ours[0].lower(), ours[0]


def test_a_corrupt_frame_stops_the_run_or_repeats_the_previous_frame(tmp_path, corrupt_file):
    from conftest import BAD_FRAME

    source = corrupt_file[1]
    out = tmp_path / "out.mkv"
    args = ["magnify", source, "-o", out, "-a", 5, "--low", 1, "--high", 3, "--workers", 2]
    assert_run_error(daskmag(*args), f"{source}: frame {BAD_FRAME} is corrupt", "--on-corrupt repeat")
    assert list(tmp_path.iterdir()) == []  # no output, no parts of a run that cannot finish
    result = daskmag(*args, "--on-corrupt", "repeat")
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("daskmag: warning:")]
    assert warnings == [f"daskmag: warning: {source}: frame {BAD_FRAME} is corrupt; repeating the previous frame"]
    assert probe(out).n_frames == 90


def test_variable_frame_rate_input_keeps_every_frame_unless_resampling_is_asked(tmp_path, vfr_file):
    source = vfr_file[0]
    info = daskmag("info", source)
    assert info.returncode == 0 and "frames:    53" in info.stdout
    assert "timing:    variable: variable frame rate: frame intervals 20 to 80 ms" in info.stdout
    resampled = daskmag("info", source, "--timing", "resample")
    assert "frames:    57" in resampled.stdout and "resampled by timestamp to a constant 25 fps" in resampled.stdout
    out = tmp_path / "out.mkv"
    result = daskmag("magnify", source, "-o", out, "-a", 5, "--low", 1, "--high", 3, "--workers", 2)
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("daskmag: warning:")]
    assert len(warnings) == 1 and "every stored frame kept once, in order" in warnings[0]
    written = probe(out)
    assert (written.n_frames, written.variable_frame_rate) == (53, False)


def test_start_end_write_that_part_of_the_input(tmp_path, clip_file):
    """Seconds and frames; with alpha 0 the output is exactly the input's slice."""
    out = tmp_path / "part.mkv"
    result = daskmag("magnify", clip_file, "-o", out, "-a", 0, "--low", BAND[0], "--high", BAND[1],
                     "--start", "0.5s", "--end", 100, "-mf", 50, "--workers", 1)
    assert result.returncode == 0, result.stderr
    assert "50 frames of 128x128" in result.stderr
    assert np.array_equal(open_video(out).frames.compute(), open_video(clip_file).frames[30:80].compute())


def test_scale_writes_smaller_frames_magnified_as_much(tmp_path, clip_file):
    from daskmag.measure import motion_gain
    from daskmag.graph.region import scale_video

    out = tmp_path / "small.mkv"
    result = daskmag("magnify", clip_file, "-o", out, "-a", 10, "--low", BAND[0], "--high", BAND[1],
                     "--scale", 0.5, "--workers", 1)
    assert result.returncode == 0, result.stderr
    info = probe(out)
    assert (info.n_frames, info.width, info.height) == (120, 64, 64)
    small = scale_video(open_video(clip_file).frames, 0.5).compute()
    in_band, out_of_band = motion_gain(small, open_video(out).frames.compute(), [IN_BAND, OUT_OF_BAND], FPS)
    assert in_band >= 1 + 0.85 * 10 and out_of_band == pytest.approx(1, abs=0.03)


def test_roi_magnifies_only_the_region(tmp_path):
    from daskmag.measure import motion_gain
    from daskmag.synthetic import translating_clip
    from daskmag.io import write_array

    clip = translating_clip(120, 224, 224, FPS, ((0.1, IN_BAND), (0.1, OUT_OF_BAND)))
    source, out = tmp_path / "big.mkv", tmp_path / "roi.mkv"
    write_array(clip, source, FPS)
    x, y, w, h = 80, 72, 64, 80
    result = daskmag("magnify", source, "-o", out, "-a", 10, "--low", BAND[0], "--high", BAND[1],
                     "--roi", f"{x},{y},{w},{h}", "--workers", 1)
    assert result.returncode == 0, result.stderr
    frames = open_video(out).frames.compute()
    outside = np.ones(clip.shape[1:3], bool)
    outside[y : y + h, x : x + w] = False
    assert np.array_equal(frames[:, outside], clip[:, outside])
    whole = magnify_motion(clip, 10, *BAND, FPS).compute()
    inner = (slice(None), slice(y + 16, y + h - 16), slice(x + 16, x + w - 16))
    gain, whole_gain = (motion_gain(clip[inner], f[inner], [IN_BAND], FPS)[0] for f in (frames, whole))
    assert gain == pytest.approx(whole_gain, rel=0.05)


def test_local_worker_processes_give_the_same_output(tmp_path, clip_file):
    outputs = []
    for extra in ([], ["--processes"]):
        out = tmp_path / f"out{len(extra)}.mkv"
        result = daskmag("magnify", clip_file, "-o", out, "-a", 10, "--low", BAND[0], "--high", BAND[1],
                         "--workers", 2, *extra)
        assert result.returncode == 0, result.stderr
        outputs.append(open_video(out).frames.compute())
    assert np.abs(outputs[0].astype(int) - outputs[1]).max() <= 1


def test_side_by_side_output_holds_the_input_and_the_magnified_frames(tmp_path, clip_file):
    plain, both = tmp_path / "plain.mkv", tmp_path / "both.mkv"
    common = ["-a", 10, "--low", BAND[0], "--high", BAND[1], "--workers", 2]
    assert daskmag("magnify", clip_file, "-o", plain, *common).returncode == 0
    result = daskmag("magnify", clip_file, "-o", both, *common, "--side-by-side")
    assert result.returncode == 0, result.stderr
    frames = open_video(both).frames.compute()
    source, magnified = open_video(clip_file).frames.compute(), open_video(plain).frames.compute()
    assert frames.shape == (120, 128 + 18, 2 * 128 + 8, 3)
    assert np.array_equal(frames[:, 18:, :128], source)
    assert np.array_equal(frames[:, 18:, 136:], magnified)


def test_the_dashboard_is_served_when_asked_for_and_for_long_jobs(tmp_path, clip_file):
    from daskmag.run import DASHBOARD_PIXEL_FRAMES

    result = daskmag("magnify", clip_file, "-o", tmp_path / "out.mkv", "--alpha", 10, "--low", BAND[0],
                     "--high", BAND[1], "--workers", 1, "--dashboard", "--max-frames", 20)
    assert result.returncode == 0, result.stderr
    assert "dashboard: http" in result.stderr
    assert 120 * 128 * 128 < DASHBOARD_PIXEL_FRAMES <= 600 * 1080 * 1920 // 4  # 150 frames of 1080p are long
    ingested = daskmag("ingest", clip_file, "-o", tmp_path / "in.zarr", "--workers", 1, "--dashboard")
    assert ingested.returncode == 0, ingested.stderr
    assert "dashboard: http" in ingested.stderr


def test_a_much_shorter_filter_than_the_band_needs_is_warned_about(tmp_path, clip_file):
    from daskmag.kernels.temporal import default_taps

    assert default_taps(*BAND, FPS) // 4 > 5
    short = daskmag("magnify", clip_file, "-o", tmp_path / "short.mkv", "-a", 5, "--low", BAND[0], "--high",
                    BAND[1], "--taps", 5, "-mf", 40)
    assert short.returncode == 0, short.stderr
    assert "daskmag: warning: --taps 5 is short" in short.stderr
    plain = daskmag("magnify", clip_file, "-o", tmp_path / "plain.mkv", "-a", 5, "--low", BAND[0], "--high",
                    BAND[1], "-mf", 40)
    assert plain.returncode == 0 and "is short" not in plain.stderr
