"""Image sequences and TIFF stacks: folder, printf pattern, glob; 8/16-bit, mono/RGB; frame by frame."""

import pickle
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest
import tifffile

from daskmag.errors import UserError
from daskmag.io import open_video, probe, reader_for


def stamped(n, height=24, width=32, channels=1, dtype=np.uint16, seed=0):
    """Random frames, each with its number written into its first row (frames tell which they are)."""
    top = np.iinfo(dtype).max
    frames = np.random.default_rng(seed).integers(0, top + 1, (n, height, width, channels), dtype=dtype)
    frames[:, 0, 0, 0] = np.arange(n)
    return frames


def png_bytes(image):
    """A PNG of (H, W, C) uint8/uint16 samples, encoded by FFmpeg (Pillow cannot write 16-bit RGB)."""
    import av

    channels, deep = image.shape[-1], image.dtype == np.uint16
    source = {(1, False): "gray", (1, True): "gray16le", (3, False): "rgb24", (3, True): "rgb48le"}[channels, deep]
    target = {(1, False): "gray", (1, True): "gray16be", (3, False): "rgb24", (3, True): "rgb48be"}[channels, deep]
    codec = av.CodecContext.create("png", "w")
    codec.width, codec.height, codec.pix_fmt = image.shape[1], image.shape[0], target
    codec.time_base = Fraction(1, 1)
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image[..., 0] if channels == 1 else image), format=source)
    frame = frame.reformat(format=target)
    frame.pts = 0
    return b"".join(bytes(p) for p in codec.encode(frame) + codec.encode(None))


def write_sequence(folder, frames, kind="tif", name="C001H001S0001{:06d}", first=1):
    folder.mkdir(parents=True, exist_ok=True)
    for k, frame in enumerate(frames):
        path = folder / (name.format(first + k) + "." + kind)
        if kind == "png":
            path.write_bytes(png_bytes(frame))
        else:
            tifffile.imwrite(path, frame[..., 0] if frame.shape[-1] == 1 else frame,
                             photometric="minisblack" if frame.shape[-1] == 1 else "rgb")
    return folder


@pytest.mark.parametrize("kind", ["tif", "png"])
@pytest.mark.parametrize("channels,dtype", [(1, np.uint8), (1, np.uint16), (3, np.uint8), (3, np.uint16)])
def test_sequence_reads_frame_for_frame(tmp_path, kind, channels, dtype):
    frames = stamped(11, channels=channels, dtype=dtype, seed=channels)
    folder = write_sequence(tmp_path / "seq", frames, kind)
    info = probe(folder)
    assert (info.n_frames, info.height, info.width, info.channels, info.dtype) == \
        (11, 24, 32, channels, np.dtype(dtype).name)
    assert info.bits == 8 * np.dtype(dtype).itemsize and info.fps == 0 and info.kind == "images"
    video = open_video(folder, chunk_frames=4)  # three read tasks
    assert video.frames.chunks[0] == (4, 4, 3) and video.frames.dtype == dtype
    assert np.array_equal(video.frames.compute(), frames)


def test_folder_pattern_and_glob_name_the_same_frames(tmp_path):
    frames = stamped(12)
    folder = write_sequence(tmp_path / "seq", frames, first=7)
    (folder / "notes.txt").write_text("not a frame")
    expected = open_video(folder).frames.compute()
    assert np.array_equal(expected, frames)
    for source in (folder / "C001H001S0001%06d.tif", folder / "C001H001S0001*.tif"):
        video = open_video(source, chunk_frames=5)
        assert np.array_equal(video.frames.compute(), frames), source
    assert np.array_equal(open_video(folder, start=3, end=9).frames.compute(), frames[3:9])


def test_numbers_sort_naturally_and_a_missing_one_is_refused(tmp_path):
    frames = stamped(12)
    folder = tmp_path / "seq"
    write_sequence(folder, frames, name="f{}", first=1)  # f1 ... f12: "f10" sorts after "f9"
    assert np.array_equal(open_video(folder).frames.compute()[:, 0, 0, 0], np.arange(12))
    (folder / "f5.tif").unlink()
    with pytest.raises(UserError, match="frame number 5 is missing"):
        probe(folder)
    with pytest.raises(UserError, match="frame number 5 is missing"):
        probe(folder / "f%d.tif")


def test_multipage_and_bigtiff_stacks(tmp_path):
    mono = stamped(9)
    rgb = stamped(6, channels=3, dtype=np.uint8, seed=3)
    tifffile.imwrite(tmp_path / "stack.tif", mono[..., 0], photometric="minisblack")
    tifffile.imwrite(tmp_path / "big.tif", rgb, photometric="rgb", bigtiff=True)
    for name, frames in (("stack.tif", mono), ("big.tif", rgb)):
        video = open_video(tmp_path / name, chunk_frames=4)
        assert video.info.n_frames == len(frames) and video.info.channels == frames.shape[-1]
        assert np.array_equal(video.frames.compute(), frames), name


def test_each_read_task_carries_only_its_own_files(tmp_path):
    folder = write_sequence(tmp_path / "seq", stamped(40))
    frames = open_video(folder, chunk_frames=4).frames
    sizes = [len(pickle.dumps(task)) for task in frames.dask.values()]
    whole = len(pickle.dumps(reader_for(folder)))
    assert max(sizes) < whole / 3  # a long sequence does not travel whole with every task


def test_bad_sequences_are_refused_in_one_line(tmp_path):
    folder = write_sequence(tmp_path / "mixed", stamped(3))
    (folder / "extra.png").write_bytes(png_bytes(stamped(1)[0]))
    with pytest.raises(UserError, match="mixes TIFF and PNG"):
        probe(folder)
    with pytest.raises(UserError, match="no file matches"):
        probe(tmp_path / "none%04d.tif")
    odd = write_sequence(tmp_path / "odd", stamped(3))
    tifffile.imwrite(odd / "C001H001S0001000004.tif", np.zeros((24, 33), np.uint16))
    with pytest.raises(UserError, match="all frames must match"):
        open_video(odd).frames.compute()
    float_folder = tmp_path / "float"
    float_folder.mkdir()
    tifffile.imwrite(float_folder / "a1.tif", np.zeros((8, 8), np.float32))
    with pytest.raises(UserError, match="float32 samples"):
        probe(float_folder)


def test_a_sequence_needs_fps_on_the_command_line(tmp_path):
    folder = write_sequence(tmp_path / "seq", stamped(20, 32, 32))
    command = [sys.executable, "-m", "daskmag", "magnify", str(folder / "C001H001S0001%06d.tif"),
               "-o", str(tmp_path / "out.mkv"), "--low", "50", "--high", "100"]
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"daskmag: error: {folder / 'C001H001S0001%06d.tif'} records no frame rate: "
        f"give the recording rate with --fps"]
    assert not (tmp_path / "out.mkv").exists()
    info = subprocess.run([sys.executable, "-m", "daskmag", "info", str(folder)], capture_output=True, text=True)
    assert "not recorded (give the recording rate with --fps)" in info.stdout
    assert "playback:  30 fps" in info.stdout and "mono (1 x uint16), 16-bit" in info.stdout


def test_ingest_keeps_depth_channels_and_both_rates(tmp_path, client):
    import zarr

    from daskmag.io import ingest

    frames = stamped(10, channels=1, dtype=np.uint16)
    folder = write_sequence(tmp_path / "seq", frames)
    with pytest.raises(UserError, match="records no frame rate"):
        ingest(folder, tmp_path / "a.zarr", client=client)
    store = ingest(folder, tmp_path / "b.zarr", fps=5000, client=client)
    array = zarr.open_array(str(store), mode="r")
    assert array.dtype == np.uint16 and array.shape == (10, 24, 32, 1)
    assert array.attrs["recording_fps"] == "5000/1" and array.attrs["fps"] == "30/1" and array.attrs["bits"] == 16
    video = open_video(store)
    assert video.fps == 5000 and video.info.playback_rate == 30
    assert np.array_equal(video.frames.compute(), frames)
