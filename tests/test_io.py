"""Video IO: probe, parallel frame-accurate decode, ordered encode, Zarr stores."""

from fractions import Fraction

import dask.array as da
import numpy as np
import pytest
import zarr

from daskmag.write import write_array
from daskmag.errors import UserError
from daskmag.io import open_video, probe, read_frames
from daskmag.write import ingest, partial_path, parts_folder, write_video
from daskmag.synthetic import translating_clip


def _sequential_decode(path):
    import av

    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


@pytest.mark.parametrize("suffix", [".mkv", ".avi"])
def test_lossless_round_trip(tmp_path, texture_clip, suffix):
    path = tmp_path / f"clip{suffix}"
    write_video(da.from_array(texture_clip, chunks=(32, -1, -1, -1)), path, 60)
    info = probe(path)
    assert (info.n_frames, info.height, info.width, info.fps) == (120, 128, 128, Fraction(60))
    assert np.array_equal(open_video(path).frames.compute(), texture_clip)


def test_mp4_keeps_the_exact_ntsc_rate(ntsc_file):
    info = probe(ntsc_file)
    assert info.fps == Fraction(30000, 1001)
    assert info.n_frames == 45 and (info.width, info.height) == (64, 48)
    assert info.codec == "h264" and not info.variable_frame_rate


def test_parallel_seeking_decode_matches_sequential_decode(ntsc_file):
    reference = _sequential_decode(ntsc_file)
    video = open_video(ntsc_file, chunk_frames=7)  # many chunks, each seeks
    assert len(video.frames.chunks[0]) == 7
    assert np.array_equal(video.frames.compute(scheduler="threads"), reference)
    assert np.array_equal(read_frames(ntsc_file, 20, 33), reference[20:33])


@pytest.mark.guitar
def test_guitar_seeking_decode_matches_sequential_decode(guitar):
    """guitar.mp4 has B-frames: every segment must still be frame-exact."""
    reference = _sequential_decode(guitar)
    frames = open_video(guitar, chunk_frames=37).frames.compute(scheduler="threads")
    assert frames.shape == (300, 192, 432, 3)
    assert np.array_equal(frames, reference)


def test_max_frames(clip_file):
    assert open_video(clip_file, max_frames=50).frames.shape[0] == 50


def test_start_and_end_decode_only_that_part(ntsc_file, tmp_path):
    """0.5 s at 29.97 fps is frame 15 (at 0.5005 s); the seeking decode of the part is exact."""
    reference = _sequential_decode(ntsc_file)
    video = open_video(ntsc_file, chunk_frames=7, start="0.5s", end=40)
    assert video.frames.chunks[0] == (7, 7, 7, 4)
    assert np.array_equal(video.frames.compute(scheduler="threads"), reference[15:40])
    assert np.array_equal(open_video(ntsc_file, start=20, max_frames=5).frames.compute(), reference[20:25])
    store = tmp_path / "s.zarr"
    ingest(open_video(ntsc_file), store)
    assert np.array_equal(open_video(store, start="1s", end="1.2s").frames.compute(), reference[30:36])


def test_ingest_makes_a_chunked_zarr_v3_store(tmp_path, clip_file, client):
    store = tmp_path / "clip.zarr"
    ingest(clip_file, store, chunk_frames=32, client=client)
    array = zarr.open_array(str(store), mode="r")
    assert array.metadata.zarr_format == 3
    assert array.shape == (120, 128, 128, 3) and array.chunks == (32, 128, 128, 3)
    assert array.attrs["fps"] == "60/1" and array.attrs["frames"] == 120
    assert array.attrs["source"] == str(clip_file) and array.attrs["codec"] == "ffv1"
    video = open_video(store)
    assert video.fps == 60 and probe(store).kind == "zarr"
    assert np.array_equal(video.frames.compute(), open_video(clip_file).frames.compute())
    assert not partial_path(store).exists()


def test_write_video_computes_blocks_in_order_on_a_cluster(tmp_path, texture_clip, client):
    path = tmp_path / "out.mkv"
    seen = []
    frames = da.from_array(texture_clip, chunks=(25, -1, -1, -1))
    write_video(frames, path, Fraction(30000, 1001), client=client, progress=seen.append)
    assert sorted(seen) == [20, 25, 25, 25, 25]
    assert probe(path).fps == Fraction(30000, 1001)
    assert np.array_equal(open_video(path).frames.compute(), texture_clip)


def test_an_existing_output_is_not_overwritten(tmp_path, texture_clip):
    path = tmp_path / "out.mkv"
    path.write_bytes(b"precious")
    with pytest.raises(UserError, match="exists"):
        write_video(da.from_array(texture_clip), path, 60)
    assert path.read_bytes() == b"precious"
    write_video(da.from_array(texture_clip[:5]), path, 60, overwrite=True)
    assert probe(path).n_frames == 5


def test_a_failed_write_leaves_nothing_behind(tmp_path):
    def boom(block):
        raise RuntimeError("worker failed")

    frames = da.zeros((20, 32, 32, 3), dtype=np.uint8, chunks=(10, -1, -1, -1)).map_blocks(boom, dtype=np.uint8)
    path = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError):
        write_video(frames, path, 30)
    # nothing under the output's name; only the (hidden) record of finished blocks
    assert [p.name for p in tmp_path.iterdir()] == [parts_folder(path).name]
    assert sorted(p.name for p in parts_folder(path).iterdir()) == ["manifest.json"]


def test_an_interrupted_write_resumes_with_only_the_missing_blocks(tmp_path, texture_clip):
    path = tmp_path / "out.mkv"
    frames = da.from_array(texture_clip, chunks=(20, -1, -1, -1))
    log = tmp_path / "computed.txt"  # a file: tasks may run in other processes

    def fail_on_block_3(block, block_info=None):
        index = block_info[None]["chunk-location"][0]
        earlier = log.read_text().split() if log.exists() else []
        with open(log, "a") as record:
            record.write(f"{index}\n")
        if index == 3 and "3" not in earlier:  # the first run dies at block 3
            raise RuntimeError("killed")
        return block

    flaky = frames.map_blocks(fail_on_block_3, dtype=np.uint8)
    with pytest.raises(RuntimeError):
        write_video(flaky, path, 60, client=None)
    finished = sorted(p.name for p in parts_folder(path).glob("*.nut"))
    assert finished == ["000000.nut", "000001.nut", "000002.nut"]
    resumed = []
    write_video(flaky, path, 60, on_resume=lambda done, total: resumed.append((done, total)))
    assert resumed == [(3, 6)]
    calls = [int(x) for x in log.read_text().split()]
    assert calls[:4] == [0, 1, 2, 3] and sorted(calls[4:]) == [3, 4, 5]  # only the missing blocks
    assert np.array_equal(open_video(path).frames.compute(), texture_clip)
    assert not parts_folder(path).exists()


def test_a_different_computation_does_not_resume_someone_elses_parts(tmp_path, texture_clip):
    path = tmp_path / "out.mkv"
    parts = parts_folder(path)
    parts.mkdir()
    (parts / "manifest.json").write_text('{"token": "other", "chunks": [120]}')
    with pytest.raises(UserError, match="--restart"):
        write_video(da.from_array(texture_clip), path, 60)
    write_video(da.from_array(texture_clip), path, 60, restart=True)
    assert probe(path).n_frames == 120


@pytest.mark.parametrize("shape", [(33, 47), (48, 64)])
def test_h264_is_close_to_the_input_at_any_size(tmp_path, shape):
    from conftest import psnr

    frames = translating_clip(10, *shape, 30, ((0.1, 2.0),))
    path = tmp_path / "clip.mp4"
    write_array(frames, path, 30)
    decoded = open_video(path).frames.compute()
    assert decoded.shape == frames.shape
    # 4:2:0 chroma (even sizes) keeps players happy; luminance stays close
    assert psnr(decoded @ [0.299, 0.587, 0.114], frames @ [0.299, 0.587, 0.114]) > 38


@pytest.mark.parametrize(
    "content,message",
    [(None, "not found"), (b"", "cannot read|no frames|no video"), (b"this is not a video" * 50, "cannot read")],
)
def test_bad_inputs(tmp_path, content, message):
    path = tmp_path / "bad.mp4"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(UserError, match=message):
        probe(path)


def test_truncated_file_is_reported(tmp_path, ntsc_file):
    data = ntsc_file.read_bytes()
    path = tmp_path / "truncated.mp4"
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(UserError):
        open_video(path).frames.compute()


@pytest.mark.parametrize("name", ["out.gif", "out", "out.txt"])
def test_unknown_output_extension(tmp_path, texture_clip, name):
    with pytest.raises(UserError, match="unknown output extension"):
        write_video(da.from_array(texture_clip), tmp_path / name, 60)
