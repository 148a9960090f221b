"""Phantom .cine (pycine-lite): unpacked 8/16-bit and packed 12-bit frames, read lazily, frame for frame."""

import ctypes
import struct

import numpy as np
import pytest

from daskmag.errors import UserError
from daskmag.io import open_video, probe

pytest.importorskip("pycine")


def pack12(frames) -> bytes:
    flat = frames.astype(np.uint16).ravel()
    a, b = flat[0::2], flat[1::2]
    return np.stack([a >> 4, ((a & 15) << 4) | (b >> 8), b & 255], axis=1).astype(np.uint8).tobytes()


def write_cine(path, frames, rate, bits, packed=False):
    """A mono .cine as the Phantom file format documents it: file header, bitmap header, setup,
    image offsets, then each image (annotation size, image size, samples, bottom row first if unpacked)."""
    from pycine.cine import BITMAPINFOHEADER, CINEFILEHEADER, SETUP

    n, height, width = frames.shape
    cfh, bih, setup = CINEFILEHEADER(), BITMAPINFOHEADER(), SETUP()
    cfh.Type, cfh.Headersize, cfh.Version = 0x4943, ctypes.sizeof(cfh), 1
    cfh.FirstImageNo, cfh.ImageCount, cfh.TotalImageCount = 0, n, n
    cfh.OffImageHeader = ctypes.sizeof(cfh)
    cfh.OffSetup = cfh.OffImageHeader + ctypes.sizeof(bih)
    cfh.OffImageOffsets = cfh.OffSetup + ctypes.sizeof(setup)
    eight = frames.dtype == np.uint8
    bih.biSize, bih.biWidth, bih.biHeight, bih.biPlanes = ctypes.sizeof(bih), width, height, 1
    bih.biBitCount = 12 if packed else (8 if eight else 16)
    bih.biCompression = 1024 if packed else 0
    images = [pack12(f) if packed else np.flipud(f).astype("<u2" if not eight else np.uint8).tobytes()
              for f in frames]
    bih.biSizeImage = len(images[0])
    setup.FrameRate, setup.FrameRate16, setup.Length = rate, min(rate, 65535), ctypes.sizeof(setup)
    setup.Mark = 0x5453  # "ST"
    setup.RealBPP, setup.BlackLevel, setup.WhiteLevel = bits, 0, 2**bits - 1
    offsets, position = [], cfh.OffImageOffsets + 8 * n
    for image in images:
        offsets.append(position)
        position += 8 + len(image)
    with open(path, "wb") as f:
        f.write(bytes(cfh) + bytes(bih) + bytes(setup) + struct.pack(f"<{n}q", *offsets))
        for image in images:
            f.write(struct.pack("<II", 8, len(image)) + image)
    return path


def frames_of(n, bits, height=12, width=20, seed=0):
    frames = np.random.default_rng(seed).integers(0, 2**bits, (n, height, width), dtype=np.uint16)
    frames[:, 0, 0] = np.arange(n)  # each frame says which it is
    return frames.astype(np.uint8) if bits == 8 else frames


@pytest.mark.parametrize("bits,packed", [(8, False), (12, False), (16, False), (12, True)])
def test_cine_reads_frame_for_frame(tmp_path, bits, packed):
    frames = frames_of(11, bits, seed=bits)
    path = write_cine(tmp_path / "shot.cine", frames, 25000, bits, packed)
    video = open_video(path, chunk_frames=4)
    info = video.info
    assert (info.n_frames, info.height, info.width, info.channels, info.bits) == (11, 12, 20, 1, bits)
    assert info.fps == 25000 and info.playback_rate == 30 and info.kind == "phantom"
    assert info.dtype == ("uint8" if bits == 8 else "uint16")
    assert np.array_equal(video.frames.compute()[..., 0], frames)


def test_ffmpeg_reads_the_test_files_the_same_way(tmp_path):
    """An independent reader of the layout the test writes: FFmpeg's cine demuxer (unpacked only)."""
    import av

    frames = frames_of(6, 16, seed=9)
    path = write_cine(tmp_path / "shot.cine", frames, 4000, 16)
    with av.open(str(path)) as container:
        decoded = np.stack([f.to_ndarray(format="gray16le") for f in container.decode(video=0)])
    assert np.array_equal(decoded, frames)
    assert np.array_equal(open_video(path).frames.compute()[..., 0], decoded)


def test_truncated_and_foreign_files_are_refused(tmp_path):
    path = write_cine(tmp_path / "shot.cine", frames_of(5, 16), 1000, 16)
    data = path.read_bytes()
    (tmp_path / "cut.cine").write_bytes(data[:-100])
    with pytest.raises(UserError, match="frame 4 is cut short"):
        open_video(tmp_path / "cut.cine").frames.compute()
    (tmp_path / "other.cine").write_bytes(b"XX" + data[2:])
    with pytest.raises(UserError, match="not a Phantom .cine"):
        probe(tmp_path / "other.cine")
