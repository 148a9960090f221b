"""Shared fixtures: real clusters, real encoded files, synthetic clips."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest

from daskmag.write import write_array
from daskmag.synthetic import translating_clip

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
GUITAR = SHARED_DATA / "guitar.mp4"

#: The synthetic clip most tests use: 0.1 px at 5 Hz (in band) and 15 Hz (out).
FPS = 60.0
BAND = (3.0, 7.0)
IN_BAND, OUT_OF_BAND = 5.0, 15.0


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: needs a CUDA GPU (skipped when none is usable)")
    config.addinivalue_line("markers", "guitar: needs ../shared/data/guitar.mp4")


def pytest_collection_modifyitems(config, items):
    from daskmag._backend import cupy_or_none

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


@pytest.fixture
def guitar():
    return GUITAR


def psnr(a, b) -> float:
    """Peak signal-to-noise ratio in dB of two uint8 arrays."""
    mse = np.mean((np.asarray(a, float) - np.asarray(b, float)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


os.environ.setdefault("PYTHONUNBUFFERED", "1")
