"""Shared fixtures: real clusters, real encoded files, synthetic clips."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest

from daskmag.io import write_array
from daskmag.synthetic import translating_clip

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
GUITAR = SHARED_DATA / "guitar.mp4"

#: The synthetic clip most tests use: 0.1 px at 5 Hz (in band) and 15 Hz (out).
FPS = 60.0
BAND = (3.0, 7.0)
IN_BAND, OUT_OF_BAND = 5.0, 15.0


@pytest.fixture(params=["compiled", "numpy"])
def kernel_path(request):
    """Run a test on the compiled loops (:mod:`daskmag.kernels.compiled`) and on the NumPy paths."""
    from daskmag.kernels import compiled

    if request.param == "numpy":
        with compiled.disabled():
            yield request.param
        return
    if compiled.loops() is None:
        pytest.skip("Numba is not importable here (or DASKMAG_COMPILED=0): the NumPy path only")
    yield request.param


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: needs a CUDA GPU (skipped when none is usable)")
    config.addinivalue_line("markers", "guitar: needs ../shared/data/guitar.mp4")


def pytest_collection_modifyitems(config, items):
    from daskmag.kernels.backend import cupy_or_none

    no_gpu = pytest.mark.skip(reason="no usable CUDA GPU (cupy.cuda.is_available() is false)")
    no_guitar = pytest.mark.skip(reason=f"{GUITAR} is absent (the shared data folder is not beside the project)")
    gpu = None
    for item in items:
        if "gpu" in item.keywords:
            if gpu is None:
                gpu = cupy_or_none() is not None
            if not gpu:
                item.add_marker(no_gpu)
        if "guitar" in item.keywords and not GUITAR.exists():
            item.add_marker(no_guitar)


@pytest.fixture(scope="session")
def client():
    """A real distributed LocalCluster: 2 worker threads in one process."""
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                      dashboard_address=":0", silence_logs=logging.ERROR) as cluster:
        with Client(cluster) as c:
            yield c


@pytest.fixture(scope="session")
def texture_clip():
    """120 frames, 128x128, 60 fps: a colour texture moving 0.1 px at 5 and 15 Hz."""
    return translating_clip(120, 128, 128, FPS, ((0.1, IN_BAND), (0.1, OUT_OF_BAND)))


@pytest.fixture(scope="session")
def grating_clip():
    """As texture_clip, but a pure sinusoidal grating."""
    return translating_clip(120, 128, 128, FPS, ((0.1, IN_BAND), (0.1, OUT_OF_BAND)), pattern="grating")


@pytest.fixture(scope="session")
def clip_file(tmp_path_factory, texture_clip):
    """texture_clip stored losslessly (FFV1 .mkv) at 60 fps."""
    path = tmp_path_factory.mktemp("clips") / "texture.mkv"
    write_array(texture_clip, path, FPS)
    return path


@pytest.fixture(scope="session")
def ntsc_file(tmp_path_factory):
    """A short H.264 .mp4 with B-frames at 29.97 fps (30000/1001), 64x48."""
    frames = translating_clip(45, 48, 64, 30000 / 1001, ((0.3, 2.0),), seed=3)
    path = tmp_path_factory.mktemp("clips") / "ntsc.mp4"
    write_array(frames, path, __import__("fractions").Fraction(30000, 1001))
    return path


def write_ffv1(path, frames, pts, fps, gop: int = 12, options: dict | None = None):
    """Write RGB ``frames`` as FFV1 with hand-set timestamps ``pts`` (in ms, Matroska's unit)."""
    import av
    from fractions import Fraction

    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=fps, options=options or {})
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "bgr0"
        stream.codec_context.time_base = Fraction(1, 1000)
        stream.codec_context.gop_size = gop
        for rgb, stamp in zip(frames, pts):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts, frame.time_base = stamp, Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_grey_ffv1(path, frames, pix_fmt: str, fps: int = 30):
    """Write grey uint16 ``frames`` (T, H, W) as FFV1 in ``pix_fmt`` (``gray12le``, ``gray16le``), one frame per tick."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], pix_fmt
        for k, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format=pix_fmt)
            frame.pts = k
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def noise_frames(n: int, seed: int = 0) -> np.ndarray:
    """``n`` distinct random 48x64 RGB frames."""
    return np.random.default_rng(seed).integers(0, 256, (n, 48, 64, 3), dtype=np.uint8)


#: Steps between the timestamps of the VFR clip, in frame periods (40 ms at 25 fps):
#: gaps of 2 periods (a frame is missing) and of 1/2 (two frames share a slot).
VFR_STEPS = [1, 1, 2, 1, 0.5, 0.5, 1, 1, 2, 2, 1, 0.5, 1, 1, 0.5, 1.5, 1] * 3 + [0.5]  # 56 periods


@pytest.fixture(scope="session")
def vfr_file(tmp_path_factory):
    """(path, pts in ms, frames): a variable-frame-rate FFV1 .mkv, nominally 25 fps, key frame every 5."""
    pts = [0]
    for step in VFR_STEPS:
        pts.append(pts[-1] + int(step * 40))
    frames = noise_frames(len(pts), seed=1)
    path = tmp_path_factory.mktemp("clips") / "vfr.mkv"
    return write_ffv1(path, frames, pts, 25, gop=5), pts, frames


#: The frame that ``corrupt_file`` damages.
BAD_FRAME = 57


def damage_frame(source, target, index: int):
    """Copy ``source`` to ``target`` with the end of frame ``index``'s packet payload overwritten.

    For FFV1 version 3 that is the slice footer (slice size and CRC): the
    decoder rejects the frame.  The payload is found by its bytes, since a
    packet's ``pos`` points at the container's block header, not the payload.
    """
    import av

    with av.open(str(source)) as container:
        payloads = [bytes(p) for p in container.demux(video=0) if p.size]
    data = bytearray(Path(source).read_bytes())
    start = data.find(payloads[index])
    assert start > 0 and data.find(payloads[index], start + 1) == -1
    end = start + len(payloads[index])
    data[end - 8 : end] = b"\xff" * 8
    Path(target).write_bytes(bytes(data))
    return target


@pytest.fixture(scope="session")
def corrupt_file(tmp_path_factory):
    """(clean path, path whose frame BAD_FRAME is corrupt): intra-only FFV1 .mkv, 90 frames at 30 fps."""
    folder = tmp_path_factory.mktemp("clips")
    frames = noise_frames(90, seed=2)
    clean = write_ffv1(folder / "clean.mkv", frames, [round(k * 1000 / 30) for k in range(90)], 30,
                       gop=1, options={"level": "3", "slicecrc": "1"})
    return clean, damage_frame(clean, folder / "corrupt.mkv", BAD_FRAME)


@pytest.fixture
def guitar():
    return GUITAR


def psnr(a, b) -> float:
    """Peak signal-to-noise ratio in dB of two uint8 arrays."""
    mse = np.mean((np.asarray(a, float) - np.asarray(b, float)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


os.environ.setdefault("PYTHONUNBUFFERED", "1")
