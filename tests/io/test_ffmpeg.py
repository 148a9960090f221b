"""Video input: probe, parallel frame-accurate decode, variable rates, corrupt frames, stores."""

from fractions import Fraction

import numpy as np
import pytest

from daskmag.errors import UserError
from daskmag.io import open_video, probe, read_frames
from daskmag.io import ingest


def _sequential_decode(path):
    import av

    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


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


def test_max_frames(clip_file, texture_clip):
    """The first 50 frames, by content."""
    assert np.array_equal(open_video(clip_file, max_frames=50).frames.compute(), texture_clip[:50])


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


# --- difficult input: variable frame rate, corrupt frames -------------------------------------


def _on_grid(pts_ms, frames, fps, n):
    """The rule of read_frames, spelled out: slot i shows the last frame stamped before (i + 1/2) / fps."""
    slots = [(2 * t * fps + 1000) // 2000 for t in pts_ms]  # floor(t * fps + 1/2), exactly
    return np.stack([frames[max(k for k, s in enumerate(slots) if s <= i)] for i in range(n)])


def test_variable_frame_rate_resampled_is_counted_on_the_grid(vfr_file):
    path, pts, _ = vfr_file
    info = probe(path, timing="resample")
    assert info.variable_frame_rate and info.fps == 25
    assert info.stored_frames == len(pts)
    # duration * fps, rounded: the last frame lasts one period (40 ms)
    assert info.n_frames == round((pts[-1] + 40) / 40) == 57
    assert "variable frame rate" in info.describe() and "frames:    57" in info.describe()


def test_variable_frame_rate_frames_land_where_their_timestamps_say(vfr_file):
    path, pts, frames = vfr_file
    decoded = read_frames(path, 0, 57, timing="resample")
    assert np.array_equal(decoded, _on_grid(pts, frames, 25, 57))
    # by hand: frame 3 is 2 periods after frame 2, so slot 3 repeats frame 2 ...
    assert [np.array_equal(decoded[i], frames[k]) for i, k in [(2, 2), (3, 2), (4, 3)]] == [True] * 3
    # ... frames 5 and 6 are at 5.5 and 6 periods: both land on slot 6 (a tie goes to the
    # later slot) and the later frame is kept, so frame 5 is dropped
    assert np.array_equal(decoded[5], frames[4]) and np.array_equal(decoded[6], frames[6])
    assert not any(np.array_equal(d, frames[5]) for d in decoded)


@pytest.mark.parametrize("chunk_frames", [1, 2, 3, 7, 10])
def test_variable_frame_rate_seeking_chunks_match_one_piece(vfr_file, chunk_frames):
    path = vfr_file[0]
    whole = open_video(path, chunk_frames=57, timing="resample").frames.compute(scheduler="sync")
    chunked = open_video(path, chunk_frames=chunk_frames, timing="resample").frames
    assert chunked.shape == whole.shape and len(chunked.chunks[0]) == -(-57 // chunk_frames)
    assert np.array_equal(chunked.compute(scheduler="threads"), whole)


@pytest.mark.parametrize("chunk_frames", [None, 10, 57, 58])
def test_a_corrupt_frame_stops_with_its_number(corrupt_file, chunk_frames):
    from conftest import BAD_FRAME

    clean, corrupt = corrupt_file
    assert probe(corrupt).n_frames == 90 and not probe(corrupt).variable_frame_rate
    with pytest.raises(UserError, match=rf"corrupt.mkv: frame {BAD_FRAME} is corrupt .*--on-corrupt repeat"):
        open_video(corrupt, chunk_frames=chunk_frames).frames.compute(scheduler="sync")
    # the frames around it are fine
    assert np.array_equal(read_frames(corrupt, 0, BAD_FRAME), read_frames(clean, 0, BAD_FRAME))
    assert np.array_equal(read_frames(corrupt, BAD_FRAME + 1, 90), read_frames(clean, BAD_FRAME + 1, 90))


@pytest.mark.parametrize("chunk_frames", [None, 1, 10, 57, 58])
def test_a_corrupt_frame_can_repeat_the_previous_one(corrupt_file, chunk_frames, capfd):
    from conftest import BAD_FRAME

    clean, corrupt = corrupt_file
    expected = read_frames(clean, 0, 90)
    expected[BAD_FRAME] = expected[BAD_FRAME - 1]
    frames = open_video(corrupt, chunk_frames=chunk_frames, on_corrupt="repeat").frames
    assert np.array_equal(frames.compute(scheduler="threads"), expected)
    warnings = capfd.readouterr().err.strip().splitlines()
    assert warnings == [f"daskmag: warning: {corrupt}: frame {BAD_FRAME} is corrupt; repeating the previous frame"]


@pytest.mark.parametrize("chunk_frames", [1, 2, 3, 30, 31, 32])
def test_corrupt_frames_at_a_segment_start_and_at_the_clip_start(tmp_path, corrupt_file, chunk_frames):
    from conftest import damage_frame

    clean = corrupt_file[0]
    path = tmp_path / "bad.mkv"
    # frames 0, 30 and 31: the key frame a seek to 31 or 32 lands on is bad, and so is the next
    damage_frame(damage_frame(damage_frame(clean, path, 0), path, 30), path, 31)
    expected = read_frames(clean, 0, 90)
    expected[0] = expected[1]  # the clip's first frame: the next good one
    expected[30] = expected[31] = expected[29]
    frames = open_video(path, chunk_frames=chunk_frames, on_corrupt="repeat").frames.compute(scheduler="sync")
    assert np.array_equal(frames, expected)
    with pytest.raises(UserError, match="frame 0 is corrupt"):
        read_frames(path, 0, 5)
    with pytest.raises(UserError, match="frame 30 is corrupt"):
        read_frames(path, 29, 40)


def test_on_corrupt_enters_the_task_keys(corrupt_file):
    clean = corrupt_file[0]
    stop = open_video(clean, chunk_frames=30).frames
    assert open_video(clean, chunk_frames=30).frames.name == stop.name  # deterministic
    assert open_video(clean, chunk_frames=30, on_corrupt="repeat").frames.name != stop.name
    with pytest.raises(UserError, match="on_corrupt"):
        open_video(clean, on_corrupt="skip")


SHARED_CASES = ["rotated-portrait.mp4", "mono12-in-16bit.mkv", "raw-90fps.h264", "joined-recordings.ts",
                "edit-list-trim.mp4", "slow-motion-export.mp4", "ffv1-2000fps.mkv", "2023-05-01T12:30:05.mp4"]


@pytest.mark.parametrize("name", SHARED_CASES)
def test_shared_examples_read_the_same_in_key_aligned_and_regular_tasks(name):
    """The kinds of footage users bring: tasks of 5 frames, or started on key frames, give the whole read."""
    from tests.conftest import SHARED_DATA

    from daskmag.io.base import reader_for

    path = SHARED_DATA / "cases" / name
    if not path.exists():
        pytest.skip("../shared/data/cases is absent")
    reader = reader_for(path, fps=90 if name.endswith(".h264") else None)
    info = reader.probe()
    whole = reader.read(0, info.n_frames)
    for aligned in (False, True):
        frames = reader.frames(info, 0, info.n_frames, chunk_frames=5, key_aligned=aligned)
        np.testing.assert_array_equal(frames.compute(scheduler="threads"), whole)
