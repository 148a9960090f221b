"""The whole job, file to file, on a real cluster, including real footage."""

from fractions import Fraction

import numpy as np
import pytest

from conftest import BAND, FPS, IN_BAND, OUT_OF_BAND
from daskmag.kernels.colourspace import luma
from daskmag.errors import UserError
from daskmag.io import open_video, probe
from daskmag.measure import motion_gain, pairwise_shifts
from daskmag.graph.region import scale_video
from daskmag.run import magnify_file
from daskmag.synthetic import motion


def test_magnify_file_on_a_cluster(tmp_path, clip_file, client):
    out = tmp_path / "out.mkv"
    result = magnify_file(clip_file, out, alpha=10, low=BAND[0], high=BAND[1], client=client,
                          time_chunk=40, progress=False)
    assert result.n_frames == 120 and result.fps == Fraction(60)
    source, magnified = open_video(clip_file).frames.compute(), open_video(out).frames.compute()
    in_band, out_of_band = motion_gain(source, magnified, [IN_BAND, OUT_OF_BAND], FPS)
    assert in_band >= 1 + 0.85 * 10
    assert out_of_band == pytest.approx(1.0, abs=0.03)


def test_fps_option_sets_the_filming_rate_not_the_output_rate(tmp_path, clip_file, client):
    """Stored at 60 fps, 'filmed' at 600: the band is in filmed Hz, the output keeps 60 fps."""
    out = tmp_path / "out.mkv"
    magnify_file(clip_file, out, alpha=10, low=BAND[0] * 10, high=BAND[1] * 10, fps=600, client=client,
                 progress=False)
    reference = tmp_path / "ref.mkv"
    magnify_file(clip_file, reference, alpha=10, low=BAND[0], high=BAND[1], client=client, progress=False)
    assert probe(out).fps == Fraction(60)
    assert np.abs(open_video(out).frames.compute().astype(int) - open_video(reference).frames.compute()).max() <= 1


def test_range_output_frame_k_is_input_frame_start_plus_k(tmp_path, clip_file, client):
    """The motion each output frame gains is alpha times the input's at frame start + k."""
    out = tmp_path / "part.mkv"
    result = magnify_file(clip_file, out, alpha=10, low=BAND[0], high=BAND[1], client=client, progress=False,
                          start="0.45s", end=100)  # frame 27: a quarter period of 5 Hz off a whole one
    assert result.n_frames == 73 and probe(out).n_frames == 73
    source = open_video(clip_file).frames[27:100].compute()
    added = pairwise_shifts(source, open_video(out).frames.compute())[:, 1]
    expected = 10 * motion(120, FPS, [(0.1, IN_BAND)])
    assert np.corrcoef(added, expected[27:100])[0, 1] > 0.99
    assert abs(np.corrcoef(added, expected[:73])[0, 1]) < 0.1  # frame k is not input frame k
    assert added.std() == pytest.approx(expected.std(), rel=0.1)


def test_scale_and_roi_combine(tmp_path, clip_file, client):
    """The region is in input pixels, scaled with the frames."""
    out = tmp_path / "small.mkv"
    result = magnify_file(clip_file, out, alpha=10, low=BAND[0], high=BAND[1], client=client, progress=False,
                          scale=0.5, roi="0,64,128,64", start=10, max_frames=40)
    assert (result.n_frames, result.width, result.height) == (40, 64, 64)
    small = scale_video(open_video(clip_file, start=10, end=50).frames, 0.5).compute()
    frames = open_video(out).frames.compute()
    assert np.array_equal(frames[:, :32], small[:, :32])  # above the region: the input
    assert np.abs(frames[:, 32 + 16 :].astype(int) - small[:, 32 + 16 :]).max() > 5  # in it: magnified


def test_output_equal_to_input_is_refused(clip_file, client):
    with pytest.raises(UserError):
        magnify_file(clip_file, clip_file, alpha=10, low=BAND[0], high=BAND[1], client=client, overwrite=True)


@pytest.mark.guitar
def test_guitar_end_to_end(tmp_path, guitar, client):
    """The classic setting: alpha 20, 72-92 Hz, filmed at 600 fps, stored at 29.97."""
    out = tmp_path / "guitar.avi"
    result = magnify_file(guitar, out, alpha=20, low=72, high=92, fps=600, client=client, progress=False)
    info = probe(out)
    assert (info.n_frames, info.width, info.height) == (300, 432, 192)
    assert info.fps == Fraction(30000, 1001) and result.n_frames == 300
    source, magnified = open_video(guitar).frames.compute(), open_video(out).frames.compute()
    # colour kept: chroma of every pixel barely moves (where no channel is clipped at 0 or 255)
    chroma = lambda f: f.astype(float) - f.mean(axis=-1, keepdims=True)  # noqa: E731
    unclipped = np.all((magnified > 0) & (magnified < 255) & (source > 0) & (source < 255), axis=-1)
    change = np.abs(chroma(magnified) - chroma(source)).max(axis=-1)
    assert unclipped.mean() > 0.5
    assert np.percentile(change[unclipped], 99.9) <= 1.0
    # the string's 72-92 Hz luminance flicker grows; slow changes (20-60 Hz) do not
    freqs = np.fft.rfftfreq(300, 1 / 600)
    spectra = [np.abs(np.fft.rfft(y - y.mean(0), axis=0)) ** 2 for y in (luma(source), luma(magnified))]

    def energy(spectrum, low, high):
        return spectrum[(freqs >= low) & (freqs <= high)].sum()

    assert energy(spectra[1], 72, 92) / energy(spectra[0], 72, 92) > 10
    assert 0.6 < energy(spectra[1], 20, 60) / energy(spectra[0], 20, 60) < 1.4


@pytest.fixture(scope="module")
def long_clip_file(tmp_path_factory):
    """240 frames of 192x192 at 60 fps, lossless: enough blocks to interrupt."""
    from daskmag.synthetic import translating_clip
    from daskmag.io import write_array

    path = tmp_path_factory.mktemp("long") / "long.mkv"
    write_array(translating_clip(240, 192, 192, FPS, ((0.1, IN_BAND),), seed=9), path, FPS)
    return path


def _magnify_command(source, output, *extra):
    import sys

    return [sys.executable, "-m", "daskmag", "magnify", str(source), "-o", str(output), "-a", "10",
            "--low", str(BAND[0]), "--high", str(BAND[1]), "--time-chunk", "30", "--workers", "1", *extra]


def test_a_killed_run_resumes_to_identical_output(tmp_path, long_clip_file):
    """SIGKILL a real run mid-way; the same command computes only the missing blocks."""
    import signal
    import subprocess
    import time

    from daskmag.io import parts_folder

    reference = tmp_path / "reference.mkv"
    subprocess.run(_magnify_command(long_clip_file, reference), check=True, capture_output=True, timeout=300)
    out = tmp_path / "out.mkv"
    process = subprocess.Popen(_magnify_command(long_clip_file, out), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    parts = parts_folder(out)
    deadline = time.time() + 120
    finished = "[0-9]*.nut"  # not the hidden .partial files being written
    while len(list(parts.glob(finished))) < 3 and time.time() < deadline and process.poll() is None:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    done = len(list(parts.glob(finished)))
    import json

    n_blocks = len(json.loads((parts / "manifest.json").read_text())["chunks"])
    assert 3 <= done < n_blocks >= 8, "the run was not caught mid-way"
    assert not out.exists()
    result = subprocess.run(_magnify_command(long_clip_file, out), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stderr.splitlines() if "resuming" in line)
    assert line.endswith(f"{done} of {n_blocks} blocks are already done")
    assert np.array_equal(open_video(out).frames.compute(), open_video(reference).frames.compute())
    assert not parts.exists()


def test_restart_discards_finished_blocks(tmp_path, long_clip_file):
    import subprocess

    from daskmag.io import parts_folder

    out = tmp_path / "out.mkv"
    parts = parts_folder(out)
    parts.mkdir()
    (parts / "manifest.json").write_text('{"token": "another run", "chunks": [240]}')
    refused = subprocess.run(_magnify_command(long_clip_file, out), capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2 and "--restart" in refused.stderr
    result = subprocess.run(_magnify_command(long_clip_file, out, "--restart"), capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert "resuming" not in result.stderr and probe(out).n_frames == 240


def test_a_killed_worker_costs_only_time(tmp_path, long_clip_file):
    """Kill a worker process of a real LocalCluster mid-run: the job still finishes, identically."""
    import os
    import signal
    import threading
    import time

    from distributed import Client, LocalCluster

    from daskmag.io import parts_folder

    reference = tmp_path / "reference.mkv"
    out = tmp_path / "out.mkv"
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        magnify_file(long_clip_file, reference, alpha=10, low=BAND[0], high=BAND[1], client=client,
                     time_chunk=30, progress=False)
        errors = []

        def run():
            try:
                magnify_file(long_clip_file, out, alpha=10, low=BAND[0], high=BAND[1], client=client,
                             time_chunk=30, progress=False)
            except BaseException as exc:  # reported below
                errors.append(exc)

        thread = threading.Thread(target=run)
        thread.start()
        deadline = time.time() + 120
        while not list(parts_folder(out).glob("[0-9]*.nut")) and time.time() < deadline:
            time.sleep(0.02)
        before = set(client.scheduler_info()["workers"])
        victim = next(iter(client.run(os.getpid).values()))
        os.kill(victim, signal.SIGKILL)
        thread.join(timeout=300)
        assert not errors, errors
        assert set(client.scheduler_info()["workers"]) != before  # a worker really died and was replaced
    assert np.array_equal(open_video(out).frames.compute(), open_video(reference).frames.compute())


def test_a_resumed_run_must_be_the_same_job_and_says_what_differs(tmp_path, long_clip_file):
    """The parts folder records the job's settings; another job for the same output is refused, naming the change."""
    import json
    import subprocess

    from daskmag.io import parts_folder
    from daskmag.run import Job
    from daskmag.settings import Band, Execution, MotionSettings

    out = tmp_path / "out.mkv"
    earlier = Job(long_clip_file, out, MotionSettings(alpha=20), Band(BAND[0], BAND[1]),
                  execution=Execution(time_chunk=30))
    parts = parts_folder(out)
    parts.mkdir()
    (parts / "manifest.json").write_text(json.dumps({"token": "x", "chunks": [240], "settings": earlier.to_dict()}))
    refused = subprocess.run(_magnify_command(long_clip_file, out), capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2, refused.stderr
    line = refused.stderr.strip().splitlines()[-1]
    assert "motion.alpha 20.0 (now 10.0)" in line and "--restart" in line, line
    assert not out.exists() and (parts / "manifest.json").exists()  # nothing lost
