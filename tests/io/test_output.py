"""Video output: parts encoded per block, joined in order, resumable, never half-written."""

import time
from fractions import Fraction

import dask
import dask.array as da

import numpy as np
import pytest
import zarr

from conftest import psnr
from daskmag.errors import UserError
from daskmag.io import open_video, probe
from daskmag.synthetic import translating_clip
from daskmag.io import ingest, partial_path, parts_folder, write_array, write_video


@pytest.mark.parametrize("suffix", [".mkv", ".avi"])
def test_lossless_round_trip(tmp_path, texture_clip, suffix):
    path = tmp_path / f"clip{suffix}"
    write_video(da.from_array(texture_clip, chunks=(32, -1, -1, -1)), path, 60)
    info = probe(path)
    assert (info.n_frames, info.height, info.width, info.fps) == (120, 128, 128, Fraction(60))
    assert np.array_equal(open_video(path).frames.compute(), texture_clip)


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
    # the local scheduler, whatever distributed client an earlier test left behind:
    # a scheduler would keep the failed key's error and raise it again on resuming
    with dask.config.set(scheduler="sync"):
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
    frames = translating_clip(10, *shape, 30, ((0.1, 2.0),))
    path = tmp_path / "clip.mp4"
    write_array(frames, path, 30)
    decoded = open_video(path).frames.compute()
    assert decoded.shape == frames.shape
    # 4:2:0 chroma (even sizes) keeps players happy; luminance stays close
    assert psnr(decoded @ [0.299, 0.587, 0.114], frames @ [0.299, 0.587, 0.114]) > 38


@pytest.mark.parametrize("name", ["out.gif", "out", "out.txt"])
def test_unknown_output_extension(tmp_path, texture_clip, name):
    with pytest.raises(UserError, match="unknown output extension"):
        write_video(da.from_array(texture_clip), tmp_path / name, 60)


def test_spatial_tiles_are_encoded_without_a_whole_frame_block(tmp_path, texture_clip):
    """Tiled results go to the encoder tile by tile and come out as whole frames."""
    frames = da.from_array(texture_clip, chunks=(40, 64, 48, 3))
    path = tmp_path / "tiled.mkv"
    write_video(frames, path, 60)
    assert np.array_equal(open_video(path).frames.compute(), texture_clip)


class _Output:
    """An output as run_blocks sees one: no shared results to hold."""
    label = "order"


def _record(x, index):
    return index


def test_each_block_ranks_below_the_blocks_submitted_before_it():
    """dask numbers each submitted graph's tasks on its own, so a staged run's
    first block (whose graph also computes what later blocks share) ranked its
    own synthesis behind later blocks' encodes.  run_blocks gives each
    submission a lower priority than the one before: the scheduler's first
    priority key of each block's own task grows with its place."""
    import logging

    from distributed import Client, LocalCluster
    from distributed.diagnostics.plugin import SchedulerPlugin

    from daskmag.io.output import run_blocks

    class Priorities(SchedulerPlugin):
        def __init__(self):
            self.seen = {}

        def transition(self, key, start, finish, *args, **kwargs):
            if isinstance(key, str) and key.startswith("block-") and finish == "processing":
                self.seen[key] = self.scheduler.tasks[key].priority

    shared = dask.delayed(sum)([1, 2])
    blocks = [dask.delayed(_record)(shared, i, dask_key_name=f"block-{i}") for i in range(5)]
    plugin = Priorities()
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0",
                      silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        plugin.scheduler = cluster.scheduler
        cluster.scheduler.add_plugin(plugin)
        run_blocks(((_Output(), i, task) for i, task in enumerate(blocks)), client, window=3)
    # each block's own (last) task ranks a window (3) below the rest of its block
    assert [plugin.seen[f"block-{i}"][0] for i in range(5)] == [3, 4, 5, 6, 7]


#: What the tasks below ran, in order (the workers are threads of this process).
_RAN = []


def _synthesise(index):
    time.sleep(0.2)  # long enough for every block to be submitted while the first runs
    _RAN.append(f"s{index}")
    return index


def _encode(frames, index):
    _RAN.append(f"e{index}")
    return frames


def test_blocks_in_flight_are_synthesised_before_any_is_encoded():
    """The last block's synthesis used to wait behind the earlier blocks'
    encodes and then encode alone, the other threads idle.  A block's own
    last task (its encode) now ranks below the other work of every block in
    flight: on one thread, all syntheses run first."""
    import logging

    from distributed import Client, LocalCluster

    from daskmag.cluster import WORKER_SATURATION
    from daskmag.io.output import run_blocks

    _RAN.clear()
    blocks = [dask.delayed(_encode)(dask.delayed(_synthesise)(i, dask_key_name=f"synthesis-{i}"), i,
                                    dask_key_name=f"encode-{i}") for i in range(4)]
    # the syntheses here have no inputs, so at distributed's default saturation
    # the scheduler would queue them and send them one by one (daskmag's cluster: 4.0)
    with dask.config.set({"distributed.scheduler.worker-saturation": WORKER_SATURATION}), \
            LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0",
                         silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        done = []
        run_blocks(((_Output(), i, task) for i, task in enumerate(blocks)), client, window=4,
                   on_done=lambda item, result: done.append((item[1], result)))
    assert _RAN == ["s0", "s1", "s2", "s3", "e0", "e1", "e2", "e3"]
    assert sorted(done) == [(i, i) for i in range(4)]  # every block's own result, once
