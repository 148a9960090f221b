"""``daskmag measure`` run as a user runs it: a real process, an encoded clip, the files it writes."""

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

from daskmag.measure.run import OUTPUT_FILES
from daskmag.synthetic import motion, texture, translate
from daskmag.io import write_array

FPS = 60.0
FRAMES = 120
SIZE = 96


def daskmag(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "daskmag", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


def assert_user_error(result, *words):
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    # "daskmag: error: ..." (checks) or "daskmag measure: error: ..." (argparse), as for magnify
    assert lines[0].startswith("daskmag") and ": error: " in lines[0], lines[0]
    for word in words:
        assert word.lower() in lines[0].lower(), lines[0]


def read_csv(path):
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    return rows[0], rows[1:]


@pytest.fixture(scope="module")
def moving_file(tmp_path_factory):
    """A lossless FFV1 .mkv at 60 fps: 0.5 px at 6 Hz in x, 0.25 px at 15 Hz in y."""
    image = texture(SIZE, SIZE, 3)
    dx, dy = motion(FRAMES, FPS, ((0.5, 6.0),)), motion(FRAMES, FPS, ((0.25, 15.0),))
    frames = np.stack([np.clip(np.rint(translate(image, a, b) * 255), 0, 255).astype(np.uint8)
                       for a, b in zip(dx, dy)])
    path = tmp_path_factory.mktemp("measure") / "moving.mkv"
    write_array(frames, path, FPS)
    return path


def test_measure_writes_every_file_with_its_columns(tmp_path, moving_file):
    out = tmp_path / "m"
    result = daskmag("measure", moving_file, "-o", out, "--workers", 2, "--mm-per-px", 0.5,
                     "--roi", "8,8,64,64")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUT_FILES)
    assert not list(tmp_path.glob(".m.*"))  # no temporary folder left

    header, rows = read_csv(out / "displacement.csv")
    assert header == ["time_s", "region", "dx_px", "dy_px", "dx_mm", "dy_mm"]
    assert len(rows) == FRAMES and {r[1] for r in rows} == {"roi1"}
    values = np.array([[float(v) for v in (r[0], r[2], r[3], r[4], r[5])] for r in rows])
    np.testing.assert_allclose(values[:, 0], np.arange(FRAMES) / FPS, atol=1e-5)
    np.testing.assert_allclose(values[:, 1], motion(FRAMES, FPS, ((0.5, 6.0),)), atol=0.03)
    np.testing.assert_allclose(values[:, 2], motion(FRAMES, FPS, ((0.25, 15.0),)), atol=0.03)
    np.testing.assert_allclose(values[:, 3:], 0.5 * values[:, 1:3], rtol=1e-4, atol=1e-6)

    header, rows = read_csv(out / "spectrum.csv")
    assert header == ["frequency_hz", "region", "amplitude_x_px", "amplitude_y_px"]
    f = np.array([float(r[0]) for r in rows])
    assert f[0] == 0 and f[-1] == pytest.approx(FPS / 2)

    header, rows = read_csv(out / "peaks.csv")
    assert header == ["region", "direction", "frequency_hz", "amplitude_px", "amplitude_mm"]
    assert rows[0][:2] == ["roi1", "x"]
    assert float(rows[0][2]) == pytest.approx(6.0, abs=FPS / FRAMES)
    assert float(rows[0][3]) == pytest.approx(0.5, rel=0.03)
    assert float(rows[0][4]) == pytest.approx(0.25, rel=0.03)
    y_peak = next(r for r in rows if r[1] == "y")
    assert float(y_peak[2]) == pytest.approx(15.0, abs=FPS / FRAMES)
    assert float(y_peak[3]) == pytest.approx(0.25, rel=0.03)

    document = json.loads((out / "measure.json").read_text())
    assert document["input"]["frames"] == FRAMES and document["input"]["width"] == SIZE
    assert document["settings"]["fps"] == FPS and document["settings"]["mm_per_px"] == 0.5
    assert document["regions"] == [{"name": "roi1", "x": 8, "y": 8, "w": 64, "h": 64}]
    low, high = document["suggested_band_hz"]
    assert low < 6.0 < high
    assert document["magnify_command"] in result.stdout
    assert f"--low {low:g} --high {high:g}" in document["magnify_command"]
    assert (out / "spectrum.png").read_bytes()[:4] == b"\x89PNG"


def test_grid_fps_and_range(tmp_path, moving_file):
    out = tmp_path / "g"
    result = daskmag("measure", moving_file, "-o", out, "--grid", "2x2", "--fps", 600, "--start", 10,
                     "--end", "1.5s", "--workers", 1, "--no-progress")
    assert result.returncode == 0, result.stderr
    header, rows = read_csv(out / "displacement.csv")
    assert header == ["time_s", "region", "dx_px", "dy_px"]
    assert [r[1] for r in rows[:4]] == ["r1c1", "r1c2", "r2c1", "r2c2"]
    assert len(rows) == 4 * (90 - 10)
    assert float(rows[4][0]) == pytest.approx(1 / 600, rel=1e-4)
    _, peaks = read_csv(out / "peaks.csv")
    # frequencies are in the recording's rate: 6 Hz at 60 fps is 60 Hz at 600
    assert float(peaks[0][2]) == pytest.approx(60.0, abs=600 / 80)


def test_output_is_kept_without_overwrite(tmp_path, moving_file):
    out = tmp_path / "keep"
    out.mkdir()
    (out / "mine.txt").write_text("x")
    assert_user_error(daskmag("measure", moving_file, "-o", out), "exists", "--overwrite")
    assert (out / "mine.txt").exists()
    result = daskmag("measure", moving_file, "-o", out, "--overwrite", "--workers", 1, "--end", 40)
    assert result.returncode == 0, result.stderr
    assert not (out / "mine.txt").exists() and (out / "measure.json").exists()


@pytest.mark.parametrize("args,words", [
    (["--roi", "1,2,3"], ["--roi"]),
    (["--roi", "80,80,64,64"], ["outside"]),
    (["--roi", "0,0,4,40"], ["too small"]),
    (["--grid", "3"], ["--grid"]),
    (["--grid", "40x40"], ["smaller"]),
    (["--fps", "0"], ["--fps"]),
    (["--fps", "abc"], ["number"]),
    (["--mm-per-px", "-1"], ["--mm-per-px"]),
    (["--start", "100", "--end", "50"], ["--start"]),
    (["--end", "500"], ["outside"]),
    (["--start", "115"], ["at least"]),
    (["--workers", "0"], ["--workers"]),
    (["--segment", "3"], ["--segment"]),
])
def test_bad_options_are_one_line_errors(tmp_path, moving_file, args, words):
    out = tmp_path / "bad"
    assert_user_error(daskmag("measure", moving_file, "-o", out, *args), *words)
    assert not out.exists()


def test_missing_input_and_output_parent(tmp_path, moving_file):
    assert_user_error(daskmag("measure", tmp_path / "none.mp4", "-o", tmp_path / "o"))
    assert_user_error(daskmag("measure", moving_file, "-o", tmp_path / "no" / "such" / "o"), "does not exist")
    assert_user_error(daskmag("measure", moving_file), "-o")


@pytest.mark.guitar
def test_guitar_low_e_string(tmp_path, guitar):
    """guitar.mp4 (600 fps, stored at 29.97): on the low E string the strongest motion is near 82 Hz."""
    out = tmp_path / "guitar"
    # the low E (top) string over the body, between the bridge and the sound hole
    result = daskmag("measure", guitar, "-o", out, "--fps", 600, "--roi", "100,35,100,25", "--workers", 2,
                     "--no-progress")
    assert result.returncode == 0, result.stderr
    document = json.loads((out / "measure.json").read_text())
    strongest = document["peaks"][0]
    assert strongest["region"] == "roi1"
    assert abs(strongest["frequency_hz"] - 82.4) < 3.0, strongest
    low, high = document["suggested_band_hz"]
    assert low < strongest["frequency_hz"] < high
    assert "--fps 600" in document["magnify_command"] and "--roi 100,35,100,25" in document["magnify_command"]
    # the suggested output goes to the current folder, never beside the (shared, read-only) input
    assert " -o guitar-x20.mp4 " in document["magnify_command"]
    assert "dashboard:" not in result.stderr  # a short job starts none, as magnify
