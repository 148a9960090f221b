"""Full depth end to end: 16-bit mono in, 16-bit mono out; sub-grey-level motion; playback rate."""

import dask.array as da
import numpy as np
import pytest
import tifffile
import zarr

from conftest import SHARED_DATA
from daskmag.graph.colour import magnify_colour
from daskmag.graph.motion import magnify_motion
from daskmag.io import open_video, probe, write_array
from daskmag.measure import global_shifts, motion_gain, sinusoid_amplitudes
from daskmag.run import magnify_file
from daskmag.synthetic import motion, texture, translate

CASES = SHARED_DATA / "cases"
FPS = 60.0


def mono_clip(n, size, components, bits, seed=0):
    """A grey texture moving horizontally, quantised to ``bits`` (uint8 for 8, else uint16)."""
    image = texture(size, size, seed)[..., 1:2]
    top = 2**bits - 1
    out = np.empty((n, size, size, 1), np.uint8 if bits == 8 else np.uint16)
    for i, dx in enumerate(motion(n, FPS, components)):
        out[i] = np.clip(np.rint(translate(image, dx) * top), 0, top)
    return out


def bar_clip(n, size, amplitude, frequency, noise=2.0, seed=0):
    """16-bit frames of a soft vertical bar (depth 15% of full scale) moving by ``amplitude`` px,
    with sensor noise of ``noise`` 16-bit levels: a straight edge, so no dithering by texture."""
    x = np.arange(size) - size / 2
    image = np.broadcast_to((0.5 - 0.15 * np.exp(-0.5 * (x / 3.0) ** 2))[None, :, None], (size, size, 1))
    rng = np.random.default_rng(seed)
    out = np.empty((n, size, size, 1), np.uint16)
    for i, dx in enumerate(motion(n, FPS, ((amplitude, frequency),))):
        out[i] = np.clip(np.rint(translate(image, dx) * 65535 + rng.normal(0, noise, (size, size, 1))), 0, 65535)
    return out


def write_tiffs(folder, frames):
    folder.mkdir()
    for k, frame in enumerate(frames):
        tifffile.imwrite(folder / f"cam{k + 1:06d}.tif", frame[..., 0], photometric="minisblack")
    return folder / "cam%06d.tif"


def test_alpha_zero_returns_16_bit_mono_bit_for_bit(tmp_path, client):
    frames = mono_clip(40, 48, ((0.3, 5.0),), 12)
    frames[:, -1, -1, 0] = 65535  # a full-scale sample: 16 bits are kept, not 12
    frames[:, 0, 0, 0] = np.arange(40)  # frames tell which they are
    source = write_tiffs(tmp_path / "seq", frames)
    for name in ("out.zarr", "out.mkv", "out.avi", "tiffs/%06d.tif"):
        out = magnify_file(source, tmp_path / name, alpha=0, low=3, high=7, fps=FPS, time_chunk=16,
                           progress=False, client=client).output
        back = open_video(out).frames.compute()
        assert back.dtype == np.uint16 and back.shape == frames.shape, name
        assert np.array_equal(back, frames), name


def test_alpha_zero_returns_16_bit_rgb_bit_for_bit(tmp_path, client):
    rgb = np.random.default_rng(1).integers(0, 65536, (20, 32, 40, 3), dtype=np.uint16)
    write_array(rgb, tmp_path / "in.mkv", 30)
    assert probe(tmp_path / "in.mkv").dtype == "uint16"
    out = magnify_file(tmp_path / "in.mkv", tmp_path / "out.mkv", alpha=0, low=3, high=7, progress=False,
                       client=client).output
    assert np.array_equal(open_video(out).frames.compute(), rgb)


def test_12_bit_mono_gives_the_gain_of_its_8_bit_version():
    gains = {}
    for bits in (8, 12):
        clip = mono_clip(120, 64, ((0.1, 5.0), (0.1, 15.0)), bits)
        out = magnify_motion(da.from_array(clip), 10, 3, 7, FPS).compute(scheduler="sync")
        assert out.dtype == clip.dtype and out.shape == clip.shape
        gains[bits] = motion_gain(clip, out, [5.0, 15.0], FPS, trim=10)
    assert gains[12][0] > 9  # in band: 1 + alpha, less the FIR's edge
    assert abs(gains[12][0] / gains[8][0] - 1) < 0.02
    assert abs(gains[12][1] - 1) < 0.05  # out of band: unchanged


def test_motion_below_one_8_bit_grey_level_is_magnified_only_at_full_depth():
    amplitude = 0.002  # px: the bar's samples change by 0.015 of an 8-bit grey level at most
    deep = bar_clip(120, 64, amplitude, 5.0)
    shallow = np.clip(np.rint(deep / 257.0), 0, 255).astype(np.uint8)  # what 8-bit processing sees
    measured = {}
    for name, clip in (("16", deep), ("8", shallow)):
        out = magnify_motion(da.from_array(clip), 50, 3, 7, FPS).compute(scheduler="sync")
        shifts = global_shifts(out)[10:-10, 1]
        measured[name] = sinusoid_amplitudes(shifts, [5.0, 4.0, 6.5], FPS)  # 4, 6.5 Hz: no motion there
    signal, noise = measured["16"][0], measured["16"][1:].max()
    assert signal / amplitude > 40 and signal > 10 * noise  # magnified ~47x (alpha 50)
    signal8, noise8 = measured["8"][0], measured["8"][1:].max()
    assert signal8 < 0.05 * signal and signal8 < 3 * noise8  # 8 bits: noise only


def test_colour_mode_keeps_mono_16_bit():
    clip = mono_clip(60, 64, ((0.1, 5.0),), 12)
    same = magnify_colour(da.from_array(clip), 0, 3, 7, FPS, level=2).compute(scheduler="sync")
    assert same.dtype == np.uint16 and np.array_equal(same, clip)
    out = magnify_colour(da.from_array(clip), 20, 3, 7, FPS, level=2).compute(scheduler="sync")
    assert out.shape == clip.shape and np.abs(out.astype(int) - clip).max() > 0


def test_recording_and_playback_rates_are_separate(tmp_path, client):
    source = write_tiffs(tmp_path / "seq", mono_clip(30, 32, ((0.2, 300.0),), 12))
    result = magnify_file(source, tmp_path / "a.mkv", alpha=5, low=200, high=400, fps=2000, progress=False,
                          client=client)
    assert result.fps == 30 and result.recording_fps == 2000
    assert probe(result.output).fps == 30  # raw camera footage plays at a rate players show
    store = magnify_file(source, tmp_path / "b.zarr", alpha=5, low=200, high=400, fps=2000, playback_fps=25,
                         progress=False, client=client).output
    attrs = zarr.open_array(str(store), mode="r").attrs
    assert attrs["fps"] == "25/1" and attrs["recording_fps"] == "2000/1"
    info = probe(store)
    assert info.fps == 2000 and info.playback_rate == 25 and info.dtype == "uint16" and info.channels == 1
    assert "playback:  25 fps" in info.describe()


def test_mp4_is_an_8_bit_view_scaled_from_the_real_range(tmp_path, client, capsys):
    frames = np.full((12, 32, 32, 1), 2048, np.uint16)
    frames[:, :, 16:] = 4000  # 12-bit data in 16-bit words
    write_array(frames, tmp_path / "in.mkv", 30)
    out = magnify_file(tmp_path / "in.mkv", tmp_path / "view.mp4", alpha=0, low=3, high=7, progress=False,
                       client=client).output
    assert "12-bit samples (0..4095) are scaled to 0..255" in capsys.readouterr().err
    view = open_video(out).frames.compute()
    assert view.dtype == np.uint8
    assert abs(float(np.median(view[:, :, :12])) - 2048 * 255 / 4095) <= 2
    assert abs(float(np.median(view[:, :, 20:])) - 4000 * 255 / 4095) <= 2


@pytest.mark.skipif(not (CASES / "tiff16-sequence").is_dir(), reason="../shared/data/cases is absent")
@pytest.mark.parametrize("source,rate,band,frequency", [
    ("tiff16-sequence/C001H001S0001%06d.tif", 2000, (100, 150), 125.0),
    ("mono12-in-16bit.mkv", 20000, (500, 700), 625.0),
])
def test_shared_high_speed_examples_run_end_to_end(tmp_path, client, source, rate, band, frequency):
    source = CASES / source
    result = magnify_file(source, tmp_path / "out.mkv", alpha=10, low=band[0], high=band[1], fps=rate,
                          progress=False, client=client)
    assert result.fps == 30 and result.recording_fps == rate
    before, after = open_video(source).frames.compute(), open_video(result.output).frames.compute()
    assert after.dtype == np.uint16 and after.shape == before.shape and after.max() < 4096
    gain = motion_gain(before, after, [frequency], rate)[0]
    assert gain > 5, gain


def test_command_line_playback_rate_and_decimation(tmp_path):
    import subprocess
    import sys

    source = write_tiffs(tmp_path / "seq", mono_clip(200, 32, ((0.05, 25.0),), 12))
    out = tmp_path / "out.mkv"
    done = subprocess.run([sys.executable, "-m", "daskmag", "magnify", str(source), "-o", str(out), "--fps", "2000",
                           "--low", "20", "--high", "30", "--decimate", "auto", "--playback-fps", "24",
                           "--workers", "1", "--no-progress"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "at 24 fps (recorded at 2000 fps)" in done.stderr
    info = probe(out)
    assert (info.n_frames, info.fps, info.dtype, info.channels) == (200, 24, "uint16", 1)
    bad = subprocess.run([sys.executable, "-m", "daskmag", "magnify", str(source), "-o", str(tmp_path / "x.mkv"),
                          "--fps", "2000", "--low", "20", "--high", "30", "--playback-fps", "0"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.strip() == "daskmag: error: --playback-fps must be positive, got 0"


def test_native_12_bit_grey_video_is_read_as_stored(tmp_path):
    from conftest import write_grey_ffv1

    frames = np.random.default_rng(4).integers(0, 4096, (6, 16, 24), dtype=np.uint16)
    path = write_grey_ffv1(tmp_path / "gray12.mkv", frames, "gray12le")
    video = open_video(path, chunk_frames=4)
    assert (video.info.bits, video.info.dtype, video.info.channels) == (12, "uint16", 1)
    assert np.array_equal(video.frames.compute()[..., 0], frames)  # 0..4095, not scaled to 16 bits
