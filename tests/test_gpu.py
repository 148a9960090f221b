"""GPUs (daskmag.gpu): what the CPU can check here, and the GPU checks marked ``gpu``.

The ``gpu`` tests run where a CUDA device is usable (``benchmarks/gpu_check.sh``
on a GPU machine) and are skipped elsewhere; the others check, without a GPU,
the refusal and the opt-in, the device plan, the kernel tasks' resource
labels and where a real cluster runs them, and the device check's scripts.
"""

from __future__ import annotations

import logging
import re
import subprocess
import zipfile
from pathlib import Path

import dask
import numpy as np
import pytest

from conftest import BAND, FPS, GUITAR, IN_BAND, OUT_OF_BAND
from daskmag import gpu
from daskmag.errors import UserError
from daskmag.graph.colour import magnify_colour
from daskmag.graph.motion import magnify_motion
from daskmag.settings import Band, ColourSettings, Execution, MotionSettings, parse_gpus

ROOT = Path(__file__).resolve().parents[1]
CHECK = ROOT / "benchmarks" / "gpu_check.sh"
WHEELS = ROOT / "benchmarks" / "gpu_wheels.sh"
HAS_GPU = gpu.device_problem() is None
no_gpu_here = pytest.mark.skipif(HAS_GPU, reason="a CUDA GPU is usable here: the no-GPU path cannot be seen")


def decoded(path) -> np.ndarray:
    from daskmag.io import probe, read_frames

    return read_frames(path, 0, probe(path).n_frames)


def magnify_cli(clip_file, out, *extra):
    from daskmag.cli import main

    return main(["magnify", str(clip_file), "-o", str(out), "--low", str(BAND[0]), "--high", str(BAND[1]),
                 "--no-progress", *extra])


# --------------------------------------------------------------------------- refusal and opt-in


def test_accel_cuda_is_refused_in_one_line_unless_opted_in(tmp_path, clip_file, capsys, monkeypatch):
    monkeypatch.delenv(gpu.UNVERIFIED_ENV, raising=False)
    monkeypatch.setattr(gpu, "GPU_VERIFIED", False)
    out = tmp_path / "out.mkv"
    assert magnify_cli(clip_file, out, "--accel", "cuda") == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("daskmag: error: ")
    assert "not available" in lines[0] and gpu.UNVERIFIED_ENV in lines[0] and "--accel cpu" in lines[0]
    assert not out.exists() and list(tmp_path.iterdir()) == []


@no_gpu_here
def test_opting_in_warns_in_one_line_then_needs_a_usable_gpu(tmp_path, clip_file, capsys, monkeypatch):
    monkeypatch.setenv(gpu.UNVERIFIED_ENV, "1")
    out = tmp_path / "out.mkv"
    assert magnify_cli(clip_file, out, "--accel", "cuda") == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("daskmag: warning: ") and "unverified" in lines[0]
    assert lines[1].startswith("daskmag: error: ") and "usable CUDA GPU" in lines[1]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("extra,words", [
    (["--gpus", "2"], ["--gpus", "--accel cuda"]),
    (["--accel", "cuda", "--gpus", "0,x"], ["--gpus", "device numbers"]),
    (["--accel", "cuda", "--gpus", "1,1"], ["distinct"]),
    (["--accel", "cuda", "--gpus", "0"], ["--gpus", "at least 1"]),
    (["--accel", "cuda", "--workers", "2"], ["--workers", "--gpus"]),
    (["--accel", "cuda", "--gpus", "1", "--scheduler", "tcp://127.0.0.1:1"], ["--gpus", "dask cuda worker"]),
])
def test_gpu_flags_are_checked_in_one_line(tmp_path, clip_file, capsys, monkeypatch, extra, words):
    monkeypatch.setenv(gpu.UNVERIFIED_ENV, "1")
    assert magnify_cli(clip_file, tmp_path / "out.mkv", *extra) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("daskmag: error: ")
    assert all(word in lines[0] for word in words), lines[0]


def test_gpus_parse_and_round_trip_through_json():
    assert parse_gpus("2") == 2 and parse_gpus("0,2") == (0, 2) and parse_gpus([3]) == (3,)
    execution = Execution(device="cuda", gpus="1,3")
    assert Execution.from_dict(execution.to_dict()) == execution
    assert gpu.select_devices(2, [0, 1, 2]) == [0, 1] and gpu.select_devices((2, 0), [0, 1, 2]) == [2, 0]
    with pytest.raises(UserError, match="more GPUs"):
        gpu.select_devices(4, [0, 1])
    with pytest.raises(UserError, match="no usable GPU numbered 5"):
        gpu.select_devices((0, 5), [0, 1])


@no_gpu_here
def test_an_importable_cupy_is_not_a_usable_gpu():
    pytest.importorskip("cupy", reason="CuPy is not installed here: only its absence can be seen")
    problem = gpu.device_problem()
    assert problem is not None and "\n" not in problem
    assert gpu.usable_devices() == []
    with pytest.raises(UserError, match="usable CUDA GPU"):
        gpu.check_local_devices()


@no_gpu_here
def test_a_kernel_task_on_a_worker_without_a_gpu_fails_in_one_line():
    kernel = gpu.on_device(np.negative, "cuda")
    assert isinstance(kernel, gpu.DeviceKernel) and gpu.on_device(np.negative) is np.negative
    with pytest.raises(UserError) as error:
        kernel(np.zeros((2, 3)))
    assert "without a usable GPU" in str(error.value) and "\n" not in str(error.value)


# --------------------------------------------------------------------------- the device plan


def _halo(settings=MotionSettings(), band=Band(*BAND, 60.0)):
    temporal, _ = settings.temporal_filters(band)
    return max(temporal.halo_before, temporal.halo_after)


def test_the_device_plan_takes_whole_frames_and_hundreds_of_frames():
    halo = _halo()
    free = 139 * 2**30
    plan = gpu.device_time_chunk(600, 1080, 1920, halo, free, host_bytes=128 * 2**30, blocks_in_flight=8)
    assert plan.tile == 0  # whole frames, not the CPU's 512-pixel tiles
    assert 200 <= plan.time_chunk <= gpu.GPU_MAX_BLOCK_FRAMES
    assert plan.block_frames == min(600, plan.time_chunk + 2 * halo)
    assert plan.device_bytes <= gpu.DEVICE_MEMORY_FRACTION * free
    # less device memory: shorter blocks, still whole frames, still at least the halo
    small = gpu.device_time_chunk(600, 1080, 1920, halo, 24 * 2**30, host_bytes=128 * 2**30, blocks_in_flight=8)
    assert small.tile == 0 and halo <= small.time_chunk < plan.time_chunk
    assert small.device_bytes <= gpu.DEVICE_MEMORY_FRACTION * 24 * 2**30
    # the blocks in flight bound it by the host's memory
    host = gpu.device_time_chunk(600, 1080, 1920, halo, free, host_bytes=64 * 2**30, blocks_in_flight=32)
    assert host.time_chunk < plan.time_chunk
    assert 32 * (host.time_chunk + 2 * halo) * 1080 * 1920 * 6 <= 64 * 2**30 * gpu.HOST_MEMORY_FRACTION
    # 8K on a small device: tiles, each block fitting the device
    tiled = gpu.device_time_chunk(600, 4320, 7680, halo, 8 * 2**30, host_bytes=128 * 2**30)
    assert tiled.tile >= 256 and tiled.device_bytes <= gpu.DEVICE_MEMORY_FRACTION * 8 * 2**30
    # a short clip gives every device a block; the user's choices are kept
    assert gpu.device_time_chunk(300, 1080, 1920, halo, free, n_devices=4, host_bytes=2**40).time_chunk == 75
    kept = gpu.device_time_chunk(600, 1080, 1920, halo, free, time_chunk=40, tile=256)
    assert (kept.time_chunk, kept.tile) == (40, 256)


def test_plan_job_shapes_the_blocks_for_the_device(clip_file):
    from daskmag.io import probe
    from daskmag.plan import plan_job

    info = probe(clip_file)
    cpu = plan_job(info, MotionSettings(), Band(*BAND), execution=Execution(), min_blocks=2)
    cuda = plan_job(info, MotionSettings(), Band(*BAND), execution=Execution(device="cuda"), min_blocks=1,
                    device_free=80 * 2**30)
    assert cuda.execution.device == "cuda" and cuda.execution.tile == 0
    assert cuda.blocks.rows == (info.height,) and cuda.blocks.cols == (info.width,)
    assert cuda.blocks.time_chunks == (info.n_frames,)  # the whole short clip in one block on one GPU
    assert cpu.blocks.n_blocks >= 2 and cpu.execution.time_chunk is None  # the CPU plan is unchanged
    two = plan_job(info, MotionSettings(), Band(*BAND), execution=Execution(device="cuda"), min_blocks=2,
                   device_free=80 * 2**30)
    assert two.blocks.n_blocks == 2


def test_the_fft_plan_cache_holds_every_band_shape():
    from daskmag.kernels.pyramid import PyramidSpec, pyramid_filters

    for spec, shape in ((PyramidSpec(), (1080, 1920)), (PyramidSpec("half-octave"), (270, 480))):
        filters = pyramid_filters(shape, spec)
        shapes = {band.shape for band in filters.bands} | {filters.lowpass.shape, shape}
        assert len(shapes) > 4
        assert gpu.fft_plan_count(shape, spec) >= 2 * len(shapes)  # forward and inverse of each


# --------------------------------------------------------------------------- placement


def _annotated(collection):
    return {name: layer.annotations["resources"] for name, layer in collection.__dask_graph__().layers.items()
            if (layer.annotations or {}).get("resources")}


def test_only_kernel_layers_carry_the_gpu_resource(texture_clip):
    motion = magnify_motion(texture_clip, 10, *BAND, FPS, device="cuda")
    labels = _annotated(motion)
    assert list(labels.values()) == [gpu.KERNEL_RESOURCES]
    (name,) = labels
    assert name.startswith("magnify-motion-") and name == motion.name
    import cloudpickle

    tasks = dict(motion.__dask_graph__().layers[name]).values()
    assert all(b"DeviceKernel" in cloudpickle.dumps(task) for task in tasks)  # the transfers around the kernel
    colour = magnify_colour(texture_clip, 10, *BAND, FPS, device="cuda", level=2)
    names = sorted(name.rsplit("-", 1)[0] for name in _annotated(colour))
    assert names == ["colour-magnify", "colour-reduce"]  # the small band-pass stays on the CPU
    # the CPU graph is unchanged: no labels, the same keys as before
    assert _annotated(magnify_motion(texture_clip, 10, *BAND, FPS)) == {}
    assert magnify_motion(texture_clip, 10, *BAND, FPS).name == magnify_motion(texture_clip, 10, *BAND, FPS).name
    assert magnify_motion(texture_clip, 10, *BAND, FPS, device="cuda").name == motion.name  # resumable


@pytest.fixture(scope="module")
def labelled_cluster():
    """A real cluster of two workers: one labelled GPU=1 (a CPU stands in), one plain."""
    from distributed import Client, Scheduler, SpecCluster, Worker

    workers = {"gpu": {"cls": Worker, "options": {"nthreads": 1, "resources": dict(gpu.KERNEL_RESOURCES)}},
               "cpu": {"cls": Worker, "options": {"nthreads": 2}}}
    with SpecCluster(workers=workers, scheduler={"cls": Scheduler, "options": {"dashboard_address": ":0"}},
                     silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        names = client.run(lambda dask_worker: dask_worker.name)
        yield client, {address: name for address, name in names.items()}


@pytest.mark.parametrize("roi", [None, (24, 24, 64, 64)])
def test_kernel_tasks_run_on_gpu_workers_through_the_writer(tmp_path, clip_file, labelled_cluster, roi):
    from distributed import get_task_stream

    from daskmag.graph.region import in_region
    from daskmag.io import open_video, write_video

    client, names = labelled_cluster
    video = open_video(clip_file)

    def magnify(frames, resources):
        return magnify_motion(frames, 10, *BAND, FPS, time_chunk=40, resources=resources)

    def graph(resources):
        if roi is None:
            return magnify(video.frames, resources)
        return in_region(video.frames, roi, lambda frames: magnify(frames, resources))

    labelled, plain = graph(gpu.KERNEL_RESOURCES), graph(None)
    assert len(gpu.kernel_keys(labelled)) == 3 and gpu.kernel_keys(plain) == set()
    with get_task_stream(client) as stream, gpu.kernel_placement(labelled):
        write_video(labelled, tmp_path / "gpu.mkv", FPS, client=client)
    kernels = [t for t in stream.data if str(t["key"][0] if isinstance(t["key"], tuple) else t["key"])
               .startswith("magnify-motion")]
    assert len(kernels) == 3 and {names[t["worker"]] for t in kernels} == {"gpu"}
    assert {t["key"] for t in kernels} == gpu.kernel_keys(labelled)  # not fused into other keys
    others = {names[t["worker"]] for t in stream.data if t not in kernels}
    assert "cpu" in others  # reading and encoding are not tied to the GPU worker
    write_video(plain, tmp_path / "cpu.mkv", FPS, client=client)
    a, b = decoded(tmp_path / "gpu.mkv"), decoded(tmp_path / "cpu.mkv")
    # the labelled graph runs the fused kernel, the plain one the staged graph: the same
    # method with other block shapes, so BLAS may round a few values to the other grey
    # level (8 of 5.9 million on an AVX2 machine); a swapped or repeated frame moves thousands
    assert a.shape == b.shape and a.shape[0] == video.info.n_frames
    difference = np.abs(a.astype(np.int16) - b)
    assert difference.max() <= 1 and np.count_nonzero(difference) <= 1e-4 * a.size


def test_colour_kernel_tasks_run_on_gpu_workers_and_the_band_pass_anywhere(tmp_path, labelled_cluster):
    from distributed import get_task_stream

    from daskmag.io import write_video
    from daskmag.synthetic import pulsing_clip

    client, names = labelled_cluster
    clip = pulsing_clip(90, 64, 64, 30.0)

    def graph(resources):
        return magnify_colour(clip, 20, 0.8, 2.0, 30.0, level=2, time_chunk=30, resources=resources)

    labelled = graph(gpu.KERNEL_RESOURCES)
    with get_task_stream(client) as stream, gpu.kernel_placement(labelled):
        write_video(labelled, tmp_path / "gpu.mkv", 30, client=client)
    placed = {}
    for task in stream.data:
        key = task["key"][0] if isinstance(task["key"], tuple) else task["key"]
        placed.setdefault(str(key).rsplit("-", 1)[0], set()).add(names[task["worker"]])
    # the kernel tasks keep their own keys (none fused into another), so the scheduler's table applies
    assert placed["colour-reduce"] == {"gpu"} and placed["colour-magnify"] == {"gpu"}
    assert not [name for name in placed if name.startswith("colour-") and name not in
                ("colour-reduce", "colour-magnify", "colour-bandpass")]
    write_video(graph(None), tmp_path / "cpu.mkv", 30, client=client)
    assert np.array_equal(decoded(tmp_path / "gpu.mkv"), decoded(tmp_path / "cpu.mkv"))


def test_a_scheduler_without_gpu_workers_is_refused_before_any_work(tmp_path, clip_file, labelled_cluster,
                                                                      monkeypatch):
    from distributed import LocalCluster

    from daskmag.run import magnify_file

    monkeypatch.setenv(gpu.UNVERIFIED_ENV, "1")
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0",
                      silence_logs=logging.ERROR) as cluster:
        with pytest.raises(UserError, match="no GPU worker.*dask cuda worker"):
            magnify_file(clip_file, tmp_path / "out.mkv", low=BAND[0], high=BAND[1], accel="cuda",
                         scheduler=cluster.scheduler_address, quiet=True, progress=False)
    assert list(tmp_path.iterdir()) == []
    client, _ = labelled_cluster
    assert len(gpu.gpu_workers(client)) == 1


@no_gpu_here
def test_gpu_worker_setup_leaves_a_worker_without_a_device_alone(labelled_cluster):
    client, _ = labelled_cluster
    states = gpu.setup_gpu_workers(client, fft_plans=40)
    assert len(states) == 1
    (state,) = states.values()
    assert state["problem"] and "free" not in state
    with pytest.raises(UserError, match="cannot use its GPU"):
        gpu.device_memory(client)


# --------------------------------------------------------------------------- the device check's scripts


def test_gpu_check_script_parses():
    assert subprocess.run(["bash", "-n", str(CHECK)], capture_output=True).returncode == 0
    text = CHECK.read_text()
    assert "--target /tmp/site" in text and "tests/test_gpu.py" in text and "gpu_bench.py" in text


def _pins() -> dict[str, str]:
    pins = re.findall(r"^\s+([A-Za-z0-9_.-]+)==([^\s]+)\s*$", WHEELS.read_text(), flags=re.M)
    names = [name.lower().replace("_", "-") for name, _ in pins]
    assert len(names) == len(set(names)), "one version of each package"
    return {name.lower().replace("_", "-"): version for name, version in pins}


def test_gpu_wheels_name_consistent_versions():
    from packaging.requirements import Requirement
    from packaging.version import Version

    pins = _pins()
    assert {"dask", "distributed", "dask-cuda", "av", "zarr"} <= set(pins)
    assert pins["dask"] == pins["distributed"]
    assert subprocess.run(["bash", "-n", str(WHEELS)], capture_output=True).returncode == 0
    assert ".whl/" in (ROOT / ".gitignore").read_text().split()
    carried = sorted((ROOT / ".whl").glob("*.whl")) if (ROOT / ".whl").is_dir() else []
    if not carried:
        pytest.skip("no .whl/ here: run benchmarks/gpu_wheels.sh to check the wheels' own requirements")
    versions = {}
    for path in carried:
        name, version = path.name.split("-")[:2]
        versions[name.lower().replace("_", "-")] = Version(version)
    assert {name: str(v) for name, v in versions.items()} == {n: str(Version(v)) for n, v in pins.items()}
    environment = {"python_version": "3.12", "python_full_version": "3.12.3", "sys_platform": "linux",
                   "platform_machine": "x86_64", "implementation_name": "cpython", "extra": ""}
    for path in carried:
        with zipfile.ZipFile(path) as wheel:
            metadata = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
            lines = wheel.read(metadata).decode().splitlines()
        for line in lines:
            if not line.startswith("Requires-Dist:"):
                continue
            requirement = Requirement(line.split(":", 1)[1].strip())
            if requirement.marker is not None and not requirement.marker.evaluate(environment):
                continue
            name = requirement.name.lower().replace("_", "-")
            if name in versions:
                assert requirement.specifier.contains(versions[name], prereleases=True), (path.name, line)


# --------------------------------------------------------------------------- on a GPU


@pytest.fixture(scope="module")
def cuda_cluster():
    """A dask-cuda LocalCUDACluster, one worker per GPU, each labelled GPU=1."""
    with gpu.cuda_client(quiet=True) as client:
        gpu.setup_gpu_workers(client, fft_plans=64)
        yield client


def _device_calls(client) -> int:
    return sum(state["kernel_calls"] for state in client.run(gpu.worker_device_state).values())


def _on(client, collection):
    with gpu.kernel_placement(collection):
        return client.compute(collection).result()


@pytest.mark.gpu
def test_gpu_and_cpu_motion_agree_within_one_grey_level_with_the_same_gains(cuda_cluster, texture_clip):
    from daskmag.measure import motion_gain

    before = _device_calls(cuda_cluster)
    cpu = magnify_motion(texture_clip, 10, *BAND, FPS).compute(scheduler="threads")
    graph = magnify_motion(texture_clip, 10, *BAND, FPS, device="cuda", time_chunk=60)
    on_gpu = _on(cuda_cluster, graph)
    assert _device_calls(cuda_cluster) >= before + 2  # the kernel ran on the device
    assert on_gpu.shape == cpu.shape and on_gpu.dtype == np.uint8
    assert np.abs(on_gpu.astype(int) - cpu).max() <= 1
    frequencies = [IN_BAND, OUT_OF_BAND]
    gains_cpu = motion_gain(texture_clip, cpu, frequencies, FPS, trim=5)
    gains_gpu = motion_gain(texture_clip, on_gpu, frequencies, FPS, trim=5)
    assert gains_cpu[0] > 5  # it magnified
    np.testing.assert_allclose(gains_gpu, gains_cpu, rtol=0.01)


@pytest.mark.gpu
def test_tiled_and_untiled_gpu_runs_agree(cuda_cluster):
    from daskmag.synthetic import translating_clip

    clip = translating_clip(60, 256, 384, FPS, ((0.1, 5.0),), seed=5)
    whole = _on(cuda_cluster, magnify_motion(clip, 10, *BAND, FPS, device="cuda"))
    tiled = _on(cuda_cluster, magnify_motion(clip, 10, *BAND, FPS, device="cuda", tile=128, tile_margin=64))
    assert np.percentile(np.abs(tiled.astype(int) - whole), 99.9) <= 1
    assert np.abs(whole.astype(int) - clip).max() > 10  # it did magnify


@pytest.mark.gpu
def test_gpu_and_cpu_colour_agree_within_one_grey_level(cuda_cluster):
    from daskmag.synthetic import pulsing_clip

    clip = pulsing_clip(90, 96, 128, 30.0)
    settings = ColourSettings(alpha=50, level=3)
    cpu = magnify_colour(clip, low=0.8, high=2.0, fps=30.0, settings=settings).compute(scheduler="threads")
    on_gpu = _on(cuda_cluster, magnify_colour(clip, low=0.8, high=2.0, fps=30.0, settings=settings,
                                              device="cuda"))
    assert np.abs(on_gpu.astype(int) - cpu).max() <= 1
    assert np.abs(cpu.astype(int) - clip).max() > 2


@pytest.mark.gpu
@pytest.mark.guitar
def test_gpu_and_cpu_agree_within_one_grey_level_on_guitar(tmp_path, cuda_cluster, monkeypatch):
    from daskmag.run import magnify_file

    monkeypatch.setenv(gpu.UNVERIFIED_ENV, "1")
    common = dict(alpha=20, low=72, high=92, fps=600, max_frames=150, progress=False, quiet=True)
    before = _device_calls(cuda_cluster)
    magnify_file(GUITAR, tmp_path / "gpu.mkv", accel="cuda", client=cuda_cluster, **common)
    assert _device_calls(cuda_cluster) > before
    magnify_file(GUITAR, tmp_path / "cpu.mkv", **common)
    a, b = decoded(tmp_path / "gpu.mkv"), decoded(tmp_path / "cpu.mkv")
    assert a.shape == b.shape and a.shape[0] == 150
    assert np.abs(a.astype(int) - b).max() <= 1


def test_the_cupy_calls_of_the_gpu_path_exist_in_the_installed_cupy():
    """Catches a renamed CuPy API without a GPU (CuPy imports without one)."""
    cupy = pytest.importorskip("cupy", reason="CuPy is not installed here")
    import cupyx
    from cupy.fft._cache import PlanCache

    for owner, names in ((cupy, ["get_default_memory_pool", "get_default_pinned_memory_pool", "empty",
                                 "ascontiguousarray"]),
                         (cupy.cuda, ["get_allocator", "set_allocator", "set_pinned_memory_allocator",
                                      "get_current_stream", "Device"]),
                         (cupy.cuda.runtime, ["getDeviceCount", "memGetInfo", "getDeviceProperties"]),
                         (cupy.fft.config, ["get_plan_cache"]), (cupyx, ["empty_pinned"]),
                         (PlanCache, ["set_size", "set_memsize"]), (cupy.ndarray, ["set", "get"])):
        missing = [name for name in names if not hasattr(owner, name)]
        assert not missing, (owner, missing)
    assert "out=" in cupy.ndarray.get.__doc__.splitlines()[0]  # to_host copies into the pinned buffer
