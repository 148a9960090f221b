"""TIFF-sequence output: one file per frame at the frames' depth, complete or absent."""

import dask.array as da
import numpy as np
import pytest
import tifffile

from daskmag.errors import UserError
from daskmag.io import open_video, partial_path, parts_folder, write_video


def frames_of(n, channels, dtype, seed=0):
    top = np.iinfo(dtype).max
    frames = np.random.default_rng(seed).integers(0, top + 1, (n, 20, 28, channels), dtype=dtype)
    frames[:, 0, 0, 0] = np.arange(n)  # each frame says which it is
    return frames


@pytest.mark.parametrize("channels,dtype", [(1, np.uint16), (3, np.uint16), (3, np.uint8)])
def test_pattern_output_round_trips_bit_for_bit(tmp_path, client, channels, dtype):
    frames = frames_of(23, channels, dtype)
    out = tmp_path / "out" / "%06d.tif"
    write_video(da.from_array(frames, chunks=(5, -1, -1, -1)), out, 2000, client=client)
    files = sorted((tmp_path / "out").iterdir())
    assert [f.name for f in files] == [f"{k:06d}.tif" for k in range(23)]
    first = tifffile.imread(files[0])
    assert first.dtype == dtype and first.shape == ((20, 28) if channels == 1 else (20, 28, 3))
    back = open_video(out, chunk_frames=7).frames.compute()
    assert np.array_equal(back, frames)
    assert not partial_path(tmp_path / "out").exists() and not parts_folder(tmp_path / "out").exists()


def test_folder_output_and_its_refusals(tmp_path):
    frames = frames_of(6, 1, np.uint16)
    write_video(da.from_array(frames, chunks=(4, -1, -1, -1)), f"{tmp_path / 'seq'}/", 30)
    assert np.array_equal(open_video(tmp_path / "seq").frames.compute(), frames)
    with pytest.raises(UserError, match="output exists"):
        write_video(da.from_array(frames), f"{tmp_path / 'seq'}/", 30)
    with pytest.raises(UserError, match="output exists"):
        write_video(da.from_array(frames), tmp_path / "seq" / "%06d.tif", 30)
    write_video(da.from_array(frames[:2]), tmp_path / "seq" / "%04d.tif", 30, overwrite=True)
    assert sorted(f.name for f in (tmp_path / "seq").iterdir()) == ["0000.tif", "0001.tif"]
    with pytest.raises(UserError, match="one file per frame"):
        write_video(da.from_array(frames), tmp_path / "single.tif", 30)


def test_a_failed_write_leaves_no_folder(tmp_path):
    frames = frames_of(8, 1, np.uint16)

    def fail(block):
        if block[0, 0, 0, 0] >= 4:
            raise UserError("frame 4 is corrupt")
        return block

    broken = da.from_array(frames, chunks=(4, -1, -1, -1)).map_blocks(fail, dtype=np.uint16)
    with pytest.raises(UserError, match="corrupt"):
        write_video(broken, tmp_path / "out" / "%06d.tif", 30)
    assert list(tmp_path.iterdir()) == []
