"""daskmag batch: many files on one cluster, a report, exit statuses, resuming, per-file settings."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from conftest import damage_frame, write_ffv1
from daskmag.batch import REPORT_CSV, REPORT_JSON, collect_inputs, read_report, run_batch
from daskmag.cli import main
from daskmag.io import open_video, probe
from daskmag.metrics import parse_metrics
from daskmag.run import Job, run_job
from daskmag.settings import Band, Execution, MotionSettings, OutputSettings, Selection

FPS = 30
BAND = ("3", "7")
N_FRAMES = 64
BAD = 40  # the frame the corrupt clip cannot decode


def stamped_frames(n: int, seed: int) -> np.ndarray:
    """Distinct 48x64 noise frames with the clip's seed and the frame number stamped in the first pixels."""
    frames = np.random.default_rng(seed).integers(0, 256, (n, 48, 64, 3), dtype=np.uint8)
    frames[:, 0, 0, 0] = seed
    frames[:, 0, 1, 0] = np.arange(n) % 256
    return frames


def write_clip(path: Path, seed: int, n: int = N_FRAMES) -> Path:
    """An intra-only FFV1 clip with slice CRCs (so a damaged frame is detected)."""
    return write_ffv1(path, stamped_frames(n, seed), [round(k * 1000 / FPS) for k in range(n)], FPS, gop=1,
                      options={"level": "3", "slicecrc": "1"})


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    """clips/: a00..a04.mkv clean, a02_bad.mkv with frame BAD corrupt (6 inputs)."""
    folder = tmp_path_factory.mktemp("batch") / "clips"
    folder.mkdir()
    for seed in range(5):
        write_clip(folder / f"a0{seed}.mkv", seed)
    clean = write_clip(folder.parent / "source-of-bad.mkv", 7)
    damage_frame(clean, folder / "a02_bad.mkv", BAD)
    return folder


def _start(*args):
    return subprocess.Popen([sys.executable, "-m", *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            cwd="/")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def remote():
    """A `dask scheduler` (dashboard and /metrics on a known port) and two `dask worker` processes."""
    port, dashboard = _free_port(), _free_port()
    address = f"tcp://127.0.0.1:{port}"
    scheduler = _start("distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", str(port),
                       "--dashboard-address", f"127.0.0.1:{dashboard}")
    workers = []

    def add_worker():
        # no nanny: killing the process kills the worker, as a lost node would
        workers.append(_start("distributed.cli.dask_worker", address, "--nthreads", "1", "--no-dashboard",
                              "--no-nanny", "--memory-limit", "0"))

    add_worker()
    add_worker()
    from distributed import Client

    with Client(address, timeout="60s") as client:
        client.wait_for_workers(2, timeout=60)
    state = {"address": address, "dashboard": dashboard, "workers": workers, "add_worker": add_worker,
             "wait": lambda n: _wait_workers(address, n)}
    try:
        yield state
    finally:
        for process in workers + [scheduler]:
            process.terminate()
        for process in workers + [scheduler]:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:  # slow to stop (a worker mid-task): don't leave it behind
                process.kill()
                process.wait(timeout=30)


def _wait_workers(address, n):
    from distributed import Client

    with Client(address, timeout="60s") as client:
        client.wait_for_workers(n, timeout=60)


def batch_command(*args) -> list[str]:
    return [sys.executable, "-m", "daskmag", "batch", *args, "--low", BAND[0], "--high", BAND[1],
            "--format", "mkv", "--time-chunk", "8", "--no-progress"]


def _report(outdir: Path) -> dict | None:
    try:
        return json.loads((outdir / REPORT_JSON).read_text())
    except (OSError, ValueError):
        return None


def _reference(client, source: Path, output: Path, **settings) -> np.ndarray:
    motion = MotionSettings(alpha=settings.pop("alpha", 10.0))
    job = Job(source, output, motion, Band(float(BAND[0]), float(BAND[1])), Selection(**settings),
              OutputSettings(), Execution(time_chunk=8))
    run_job(job, progress=False, client=client)
    return open_video(output).frames.compute()


def test_six_clips_one_corrupt_a_worker_killed_then_rerun(tmp_path, clips, remote, client):
    """5 done and 1 failed (one line), exit 1, though a worker dies mid-batch; the re-run skips the 5."""
    outdir = tmp_path / "out"
    command = batch_command(str(clips), "-o", str(outdir), "--scheduler", remote["address"])
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline, killed_at = time.time() + 120, None
    while time.time() < deadline and process.poll() is None:
        report = _report(outdir)
        # as soon as the batch has started (its report written, not finished): on a fast
        # machine the blocks of these small clips may all be done within a second
        if report and not report["finished"]:
            remote["workers"][0].send_signal(signal.SIGKILL)  # a node lost mid-batch
            killed_at = report["totals"]
            break
        time.sleep(0.02)
    key = str(outdir.absolute())
    metrics = {}
    while process.poll() is None and ("daskmag_batch_frames", key, "total") not in metrics:
        # the scheduler's /metrics while the batch runs (the counters appear once its files are checked)
        metrics = parse_metrics(urllib.request.urlopen(
            f"http://127.0.0.1:{remote['dashboard']}/metrics", timeout=10).read().decode())
        time.sleep(0.05)
    stdout, stderr = process.communicate(timeout=300)
    remote["workers"][0].wait(timeout=30)
    remote["workers"].pop(0)
    remote["add_worker"]()  # two workers again for the next tests
    assert killed_at is not None, "the batch finished before a worker could be killed"
    assert killed_at["files_done"] < 5
    if metrics:  # scraped while the batch ran: every checked file's frames (the corrupt one's until it fails)
        total = metrics[("daskmag_batch_frames", key, "total")]
        assert total in (5 * N_FRAMES, 6 * N_FRAMES)
        assert metrics[("daskmag_batch_frames", key, "done")] <= total

    assert process.returncode == 1, stderr
    report = read_report(outdir)
    by_name = {Path(r["input"]).name: r for r in report["files"]}
    assert sorted(by_name) == ["a00.mkv", "a01.mkv", "a02.mkv", "a02_bad.mkv", "a03.mkv", "a04.mkv"]
    bad = by_name.pop("a02_bad.mkv")
    assert bad["status"] == "failed", stderr
    assert "\n" not in bad["error"] and str(BAD) in bad["error"], bad["error"]
    assert f"failed  {bad['input']}: {bad['error']}" in stderr
    assert not (outdir / "a02_bad.mkv").exists() and not list(outdir.glob(".a02_bad*"))  # nothing half-written
    for name, record in by_name.items():
        assert record["status"] == "done" and record["error"] is None
        assert record["frames"] == N_FRAMES and record["seconds"] > 0
        assert record["settings"]["motion"]["alpha"] == 10.0
        assert f"done    {record['input']} -> {record['output']}: {N_FRAMES} frames" in stderr
    assert "5 done, 0 skipped, 1 failed" in stderr
    assert list(outdir.glob(".*.parts")) == []
    # the CSV has the same records
    csv_lines = (outdir / REPORT_CSV).read_text().splitlines()
    assert csv_lines[0] == "input,output,status,error,frames,seconds,settings" and len(csv_lines) == 7

    # the lost worker cost only time: every output is whole and right, frame by frame
    for name in ("a00.mkv", "a03.mkv"):
        got = open_video(outdir / name).frames.compute()
        want = _reference(client, clips / name, tmp_path / f"ref-{name}")
        assert got.shape == (N_FRAMES, 48, 64, 3)
        assert np.abs(got.astype(int) - want).max() <= 1
    for name in by_name:
        assert probe(outdir / name).n_frames == N_FRAMES

    # the scheduler's /metrics carries the batch's counts
    text = urllib.request.urlopen(f"http://127.0.0.1:{remote['dashboard']}/metrics", timeout=10).read().decode()
    metrics = parse_metrics(text)
    assert metrics[("daskmag_batch_files", key, "done")] == 5
    assert metrics[("daskmag_batch_files", key, "failed")] == 1
    assert metrics[("daskmag_batch_files", key, "total")] == 6
    assert metrics[("daskmag_batch_frames", key, "done")] == 5 * N_FRAMES
    assert metrics[("daskmag_batch_frames", key, "total")] == 5 * N_FRAMES

    # the same command again: the 5 are skipped, the bad one fails again
    remote["wait"](2)
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 1, rerun.stderr
    statuses = sorted(r["status"] for r in read_report(outdir)["files"])
    assert statuses == ["failed"] + ["skipped"] * 5
    assert "0 done, 5 skipped, 1 failed" in rerun.stderr

    # daskmag status OUTDIR prints it, one line per file and the totals
    status = subprocess.run([sys.executable, "-m", "daskmag", "status", str(outdir)], capture_output=True,
                            text=True, timeout=60)
    assert status.returncode == 1
    lines = status.stdout.splitlines()
    assert len(lines) == 7 and lines[-1].startswith("6 files: 0 done, 5 skipped, 1 failed")
    assert any(line.startswith("failed") and str(BAD) in line for line in lines)


def test_an_interrupted_batch_resumes(tmp_path, clips, remote, client):
    """Kill the batch itself mid-file: the same command finishes it from the finished blocks."""
    remote["wait"](2)
    outdir = tmp_path / "out"
    inputs = [str(clips / "a01.mkv"), str(clips / "a04.mkv")]
    command = batch_command(*inputs, "-o", str(outdir), "--scheduler", remote["address"],
                            "--blocks-in-flight", "2")
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and process.poll() is None:
        report = _report(outdir)
        if report and any(0 < r["frames_done"] < N_FRAMES for r in report["files"]):
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL, "the batch finished before it could be killed"
    assert list(outdir.glob(".*.parts"))  # finished blocks kept

    rerun = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert "resume  " in rerun.stderr
    assert list(outdir.glob(".*.parts")) == []
    for name in ("a01.mkv", "a04.mkv"):
        got = open_video(outdir / name).frames.compute()
        want = _reference(client, clips / name, tmp_path / f"ref-{name}")
        assert np.abs(got.astype(int) - want).max() <= 1


def test_manifest_with_per_file_settings(tmp_path, clips, client):
    """A .csv manifest: per-row alpha, range and output name; empty cells take the command line's value."""
    manifest = tmp_path / "jobs.csv"
    manifest.write_text(
        "input,output,alpha,max-frames,attenuate_other\n"
        f"{clips / 'a00.mkv'},,5,,\n"
        f"{os.path.relpath(clips / 'a01.mkv', tmp_path)},custom.mkv,,48,yes\n"
    )
    outdir = tmp_path / "out"
    from daskmag.cli import _job, build_parser

    parser = build_parser()
    args = parser.parse_args(["batch", str(manifest), "-o", str(outdir), "-a", "20", "--low", BAND[0],
                              "--high", BAND[1], "--time-chunk", "8", "--format", "mkv"])
    from daskmag.batch import apply_options, default_output

    entries = collect_inputs(args.inputs)
    assert [e.source for e in entries] == [clips / "a00.mkv", tmp_path / os.path.relpath(clips / "a01.mkv",
                                                                                         tmp_path)]
    jobs = []
    for entry in entries:
        output = outdir / entry.output if entry.output else default_output(outdir, entry.source, "mkv")
        jobs.append((entry.source, output, _job(apply_options(args, entry.options, args.manifest_options),
                                                entry.source, output)))
    outdir.mkdir()
    result = run_batch(jobs, outdir, client=client, progress=False, say=lambda line: None)
    assert result.exit_status == 0
    first, second = read_report(outdir)["files"]
    assert first["settings"]["motion"]["alpha"] == 5.0 and first["frames"] == N_FRAMES
    assert not first["settings"]["motion"]["attenuate_other"]
    assert second["output"] == str(outdir / "custom.mkv")
    assert second["settings"]["motion"]["alpha"] == 20.0  # from the command line
    assert second["settings"]["motion"]["attenuate_other"] is True
    assert second["frames"] == 48 and probe(outdir / "custom.mkv").n_frames == 48
    got = open_video(outdir / "a00.mkv").frames.compute()
    want = _reference(client, clips / "a00.mkv", tmp_path / "ref.mkv", alpha=5.0)
    assert np.array_equal(got, want)


def test_manifest_errors(tmp_path, clips, capsys):
    """A column that is no option is a usage error before any work; a bad cell fails only its file."""
    manifest = tmp_path / "jobs.csv"
    manifest.write_text(f"input,alpah\n{clips / 'a00.mkv'},5\n")
    assert main(["batch", str(manifest), "-o", str(tmp_path / "out"), "--low", "3", "--high", "7"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("daskmag: error: the manifest column 'alpah'") and err.count("\n") == 1
    assert not (tmp_path / "out").exists()
    manifest.write_text(f"scheduler,alpha\n{clips / 'a00.mkv'},5\n")
    assert main(["batch", str(manifest), "-o", str(tmp_path / "out"), "--low", "3", "--high", "7"]) == 2
    assert "needs a column 'input'" in capsys.readouterr().err
    # an roi left unquoted splits into four cells: refused, not read as its first number
    manifest.write_text(f"input,output,alpha,roi\n{clips / 'a00.mkv'},,5,10,20,30,40\n")
    assert main(["batch", str(manifest), "-o", str(tmp_path / "out"), "--low", "3", "--high", "7"]) == 2
    err = capsys.readouterr().err
    assert "line 2, has 7 cells for 4 columns" in err and "quote" in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()
    manifest.write_text(f'input,output,alpha,roi\n{clips / "a00.mkv"},,5,"10,20,30,40"\n')
    from daskmag.batch import read_manifest

    assert read_manifest(manifest)[0].options == {"alpha": "5", "roi": "10,20,30,40"}

    from daskmag.batch import apply_options
    from daskmag.cli import build_parser
    from daskmag.errors import UserError

    args = build_parser().parse_args(["batch", "x.mkv", "-o", "out", "--low", "3", "--high", "7"])
    with pytest.raises(UserError, match="alpha: expected a number"):
        apply_options(args, {"alpha": "lots"}, args.manifest_options)
    with pytest.raises(UserError, match="causal must be true or false"):
        apply_options(args, {"causal": "maybe"}, args.manifest_options)


@pytest.mark.parametrize("argv, message", [
    (["nothing-*.mkv"], "no file matches"),
    (["{clips}/a00.mkv", "{clips}/a00.mkv"], "two inputs would write the same output"),
    (["{clips}/a00.mkv", "--scheduler", "tcp://127.0.0.1:9", "--cluster", "slurm"], "not both"),
    (["{empty}"], "no video files in the folder"),
])
def test_usage_errors_exit_2_before_any_work(tmp_path, clips, capsys, argv, message):
    (tmp_path / "empty").mkdir()
    argv = [a.format(clips=clips, empty=tmp_path / "empty") for a in argv]
    code = main(["batch", *argv, "-o", str(tmp_path / "out"), "--low", "3", "--high", "7"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("daskmag: error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_status_without_a_report_is_a_usage_error(tmp_path, capsys):
    assert main(["status", str(tmp_path)]) == 2
    assert "no batch report" in capsys.readouterr().err


def test_a_batch_of_one_is_magnify_with_named_tasks(tmp_path, clips, client):
    """Same frames as magnify; the dashboard sees the file's name in task names and spans."""
    from distributed import get_task_stream

    source = clips / "a03.mkv"
    reference = _reference(client, source, tmp_path / "magnify.mkv")
    outdir = tmp_path / "out"
    outdir.mkdir()
    job = Job(source, outdir / "a03.mkv", MotionSettings(), Band(3.0, 7.0), Selection(), OutputSettings(),
              Execution(time_chunk=8))
    from daskmag.run import job_frames, preflight

    reader, info, _, _ = preflight(job)
    blocks = len(job_frames(job, reader, info, 2).chunks[0])
    with get_task_stream(client) as stream:
        result = run_batch([(str(source), outdir / "a03.mkv", job)], outdir, client=client, progress=False,
                           say=lambda line: None)
    assert result.exit_status == 0
    assert np.array_equal(open_video(outdir / "a03.mkv").frames.compute(), reference)
    keys = {str(task["key"]) for task in stream.data}
    assert blocks > 1 and sum("write a03.mkv" in key for key in keys) == blocks
    spans = client.cluster.scheduler.extensions["spans"].spans.values()
    assert any(span.name == ("daskmag a03.mkv",) for span in spans)


def test_collect_inputs_files_folders_globs(tmp_path, clips):
    (clips.parent / "notes.txt").write_text("not a video")
    entries = collect_inputs([str(clips), str(clips.parent / "source-*.mkv"), str(tmp_path / "missing.mkv")])
    names = [e.source.name for e in entries]
    assert names == ["a00.mkv", "a01.mkv", "a02.mkv", "a02_bad.mkv", "a03.mkv", "a04.mkv", "source-of-bad.mkv",
                     "missing.mkv"]


def test_a_folder_gives_every_kind_of_footage_magnify_reads(tmp_path):
    """Raw H.264/H.265 streams, camera files (a Photron recording once, by its
    header), stores and folders of images count; other files and folders do not."""
    folder = tmp_path / "footage"
    folder.mkdir()
    for name in ("phone.MP4", "board.h264", "cam.265", "bridge.cine", "rec.cihx", "rec.cih", "rec.mraw",
                 "old.cih", "old.mraw", "lone.mraw", "notes.txt", "frame.log"):
        (folder / name).write_bytes(b"\0")
    (folder / "run1").mkdir()
    (folder / "run1" / "C001_000000.tif").write_bytes(b"\0")
    (folder / "empty").mkdir()
    (folder / "long.zarr").mkdir()
    (folder / ".hidden.mp4").write_bytes(b"\0")
    names = [entry.source.name for entry in collect_inputs([str(folder)])]
    assert names == ["board.h264", "bridge.cine", "cam.265", "lone.mraw", "long.zarr", "old.cih", "phone.MP4",
                     "rec.cihx", "run1"]
