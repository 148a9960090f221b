"""Every frame in, once, in order: the timing rules of the probe, checked by content.

Each test writes its own small file with PyAV, with its frame number drawn
into every frame (:func:`stamped`), and reads the numbers back
(:func:`numbers`): every input frame must appear exactly once, in order,
however the decoding is split into tasks.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from daskmag.errors import UserError
from daskmag.io import open_video, probe, read_frames
from daskmag.io.base import reader_for

BITS, CELL = 10, 6  # frame numbers up to 1023, one 6x6 square per bit


def stamped(number: int, height: int = 48, width: int = 64, shade: int = 0) -> np.ndarray:
    """An RGB frame with ``number`` drawn as a row of black/white squares (survives H.264)."""
    frame = np.full((height, width, 3), 96 + shade, dtype=np.uint8)
    for bit in range(BITS):
        value = 250 if number >> bit & 1 else 5
        frame[0:CELL, bit * CELL:(bit + 1) * CELL] = value
    return frame


def numbers(frames: np.ndarray) -> list[int]:
    """The frame numbers drawn by :func:`stamped`, read back."""
    out = []
    for frame in frames:
        bits = [frame[CELL // 2, bit * CELL + CELL // 2, :].mean() > 128 for bit in range(BITS)]
        out.append(sum(1 << bit for bit, on in enumerate(bits) if on))
    return out


def encode(path, pts, *, codec="libx264", rate=30, time_base=None, fmt=None, first=0, options=None,
           size=(48, 64), streams=1, rotation=None):
    """Write frames ``first, first + 1, ...`` stamped with their numbers, at timestamps ``pts``."""
    import av

    time_base = time_base or Fraction(1, rate)
    height, width = size
    with av.open(str(path), "w", format=fmt) as container:
        outs = []
        for index in range(streams):
            opts = dict(options or ({"bf": "2", "g": "12"} if codec == "libx264" else {}))
            stream = container.add_stream(codec, rate=rate, options=opts)
            stream.width, stream.height = width, height
            stream.pix_fmt = "yuv420p" if codec in ("libx264", "libx265") else "bgr0"
            stream.codec_context.time_base = time_base
            if rotation is not None:
                stream.set_display_rotation(rotation)
            outs.append(stream)
        for k, stamp in enumerate(pts):
            for index, stream in enumerate(outs):
                frame = av.VideoFrame.from_ndarray(stamped(first + k + 100 * index, height, width), format="rgb24")
                frame.pts, frame.time_base = stamp, time_base
                for packet in stream.encode(frame):
                    container.mux(packet)
        for stream in outs:
            for packet in stream.encode():
                container.mux(packet)
    return path


def read_all(path, chunks=(None, 1, 3, 7), **options):
    """Frame numbers of the whole file, decoded in one piece and split into chunks; they must agree."""
    results = []
    for chunk in chunks:
        video = open_video(path, chunk_frames=chunk, **options)
        results.append(numbers(video.frames.compute(scheduler="threads")))
    assert all(r == results[0] for r in results), results
    return results[0], video.info


def test_constant_rate_with_b_frames_every_frame_once_in_order(tmp_path):
    path = encode(tmp_path / "b.mp4", range(40))
    got, info = read_all(path)
    assert info.timing == "constant" and got == list(range(40))


def test_edit_list_is_applied(tmp_path):
    """Ten coded frames before the edit list's start are not presented (PyAV writes the list)."""
    path = encode(tmp_path / "trim.mp4", range(-10, 30), options={"bf": "0"})
    got, info = read_all(path)
    assert info.n_frames == 30 and got == list(range(10, 40))


def test_variable_rate_is_kept_frame_for_frame(tmp_path, capfd):
    """A slow-motion export: 1/240 s, 1/30 s, 1/240 s steps; every frame once, no drops, no repeats."""
    steps = [1] * 20 + [8] * 20 + [1] * 20  # in 1/240 s
    pts = np.concatenate([[0], np.cumsum(steps)])[:60].tolist()
    path = encode(tmp_path / "slowmo.mp4", pts, rate=240, time_base=Fraction(1, 240))
    got, info = read_all(path)
    assert info.timing == "variable" and got == list(range(60))
    assert "4.167 to 33.33 ms" in info.timing_note
    assert reader_for(path, fps=240).probe().n_frames == 60  # --fps = recording rate: every frame kept
    # resampling only when asked: onto a grid by timestamp, so frames repeat
    resampled, rinfo = read_all(path, chunks=(None, 5), timing="resample")
    assert len(resampled) == rinfo.n_frames and len(set(resampled)) < len(resampled)  # drops and repeats


def test_coarse_clock_keeps_pairs_apart(tmp_path):
    """FFV1 in Matroska at 2000 fps: timestamps in ms, so pairs share one; order comes from the packets."""
    path = encode(tmp_path / "fast.mkv", [k // 2 for k in range(48)], codec="ffv1", rate=2000,
                  time_base=Fraction(1, 1000))
    got, info = read_all(path)
    assert info.timing == "coarse" and info.fps == 2000 and got == list(range(48))


def test_coarse_clock_tasks_seek_instead_of_decoding_from_the_start(tmp_path, monkeypatch):
    """Each task finds where its seek landed by the packet's byte position (no decode from frame 0)."""
    from daskmag.io import ffmpeg

    path = encode(tmp_path / "fast.mkv", [k // 4 for k in range(60)], codec="ffv1", rate=4000,
                  time_base=Fraction(1, 1000), options={"g": "5"})

    def no_fallback():
        raise AssertionError("decoded from the start")

    monkeypatch.setattr(ffmpeg, "_Count", no_fallback)
    got, info = read_all(path, chunks=(None, 4, 9))
    assert info.fps == 4000 and got == list(range(60))


def test_restarting_timestamps_keep_file_order_with_a_warning(tmp_path, capfd):
    """Two MPEG-TS recordings joined byte for byte: the second's timestamps restart at 0."""
    first = encode(tmp_path / "one.ts", range(20), fmt="mpegts", rate=25)
    second = encode(tmp_path / "two.ts", range(20), fmt="mpegts", rate=25, first=20)
    joined = tmp_path / "joined.ts"
    joined.write_bytes(first.read_bytes() + second.read_bytes())
    got, info = read_all(joined)
    assert info.timing == "restart" and got == list(range(40))
    assert "frame 20" in info.timing_note
    from daskmag.io.base import warn_input

    warn_input(info)
    assert "jump back at frame 20" in capfd.readouterr().err


def test_raw_stream_without_timestamps(tmp_path):
    path = encode(tmp_path / "raw.h264", range(30), fmt="h264", rate=90, options={"bf": "0"})
    got, info = read_all(path, chunks=(None, 4))
    assert info.timing == "none" and info.fps == 90 and got == list(range(30))  # the stream's declared rate
    assert reader_for(path, fps=120).probe().fps == 120  # --fps wins


@pytest.mark.parametrize("codec", ["libx264", "libx265"])
def test_raw_stream_reads_start_at_the_idr_before_them(tmp_path, codec):
    """Hours of raw footage must not be decoded from the start by every task: each starts at an IDR.

    B-frames included: frames after an IDR come out in presentation order, numbered on from it.
    """
    import av

    if codec not in av.codecs_available:
        pytest.skip(f"this FFmpeg build has no {codec} encoder")
    options = {"bf": "2", "g": "24"} if codec == "libx264" else {"x265-params": "keyint=24:min-keyint=24:open-gop=0:bframes=2:scenecut=0:log-level=error"}
    path = encode(tmp_path / ("raw.h264" if codec == "libx264" else "raw.h265"), range(120),
                  fmt="h264" if codec == "libx264" else "hevc", rate=90, codec=codec, options=options)
    reader = reader_for(path)
    assert reader.probe().timing == "none"
    assert reader.key_frames() == [0, 24, 48, 72, 96]  # the IDRs, where reads may start
    from daskmag.io.ffmpeg import make_plan

    plan = make_plan(reader.probe())
    assert [plan.task(start, start + 5).get("base") for start in (0, 23, 24, 50, 119)] == [0, 0, 24, 48, 96]
    for start, stop in [(0, 7), (23, 31), (24, 25), (50, 97), (110, 120)]:
        assert numbers(read_frames(path, start, stop)) == list(range(start, stop))
    got, _ = read_all(path, chunks=(None, 7, 24))
    assert got == list(range(120))
    # a seek that does not land on the IDR's packet falls back to counting from the start
    spec = plan.task(50, 60)
    spec["position"] += 1
    assert numbers(read_frames(path, 50, 60, spec=spec)) == list(range(50, 60))


def test_raw_stream_with_open_groups_is_read_from_its_start(tmp_path):
    """Key frames that are not IDRs (open groups of pictures): frames before them may follow them."""
    path = encode(tmp_path / "open.h264", range(150), fmt="h264", rate=90,
                  options={"bf": "3", "g": "50", "x264-params": "open-gop=1"})
    reader = reader_for(path)
    assert reader.key_frames() is None  # no seek
    got, _ = read_all(path, chunks=(None, 7, 40))
    assert got == list(range(150))


def test_second_video_stream_is_chosen_and_the_first_named(tmp_path, capfd):
    path = encode(tmp_path / "two.mp4", range(20), streams=2)
    assert numbers(read_frames(path, 0, 20, stream=1)) == [100 + k for k in range(20)]
    info = probe(path)
    assert len(info.streams) == 2 and "streams:   2 video streams" in info.describe()
    from daskmag.io.base import warn_input

    warn_input(info)
    assert "2 video streams; reading stream 0" in capfd.readouterr().err
    with pytest.raises(UserError, match="--stream 2: .* has 2 video streams"):
        reader_for(path, stream=2).probe()


def test_rotation_is_applied(tmp_path):
    """A display matrix of -90 degrees (a portrait phone clip): frames come out upright."""
    path = encode(tmp_path / "portrait.mp4", range(12), rotation=-90, options={"bf": "0"}, size=(48, 80))
    info = probe(path)
    assert (info.rotation, info.height, info.width) == (90, 80, 48)
    frames = read_frames(path, 0, 12)
    assert frames.shape == (12, 80, 48, 3)
    # turned back, the stamp reads again
    assert numbers(np.rot90(frames, k=1, axes=(1, 2))) == list(range(12))


def test_twelve_bits_in_sixteen_are_read_at_full_depth(tmp_path):
    """12-bit data in 16-bit words is found, and read mono with its own values (nothing cut to 8 bits)."""
    from conftest import write_grey_ffv1

    ramp = (np.arange(64 * 48) * 4095 // (64 * 48 - 1)).reshape(48, 64).astype(np.uint16)  # 0..4095
    path = write_grey_ffv1(tmp_path / "mono12.mkv", np.stack([ramp] * 4), "gray16le")
    info = probe(path)
    assert (info.bits, info.significant_bits) == (16, 12) and "low 12 bits" in info.describe()
    assert (info.dtype, info.channels) == ("uint16", 1) and "full depth" in info.describe()
    frames = read_frames(path, 0, 4)
    assert frames.shape == (4, 48, 64, 1) and frames.dtype == np.uint16
    assert np.array_equal(frames[:, :, :, 0], np.broadcast_to(ramp, (4, 48, 64)))


def test_size_change_is_refused_before_work(tmp_path):
    first = encode(tmp_path / "a.ts", range(20), fmt="mpegts", rate=25)
    second = encode(tmp_path / "b.ts", range(20, 40), fmt="mpegts", rate=25, size=(64, 80))
    joined = tmp_path / "sizes.ts"
    joined.write_bytes(first.read_bytes() + second.read_bytes())
    with pytest.raises(UserError, match="frame size changes from 64x48 to 80x64 at frame 20"):
        probe(joined)


def test_size_change_after_many_groups_is_found_by_decoding_few_key_frames(tmp_path, monkeypatch):
    """The probe decodes a key frame per SIZE_CHECK_EVERY packets and the last one, not every group's
    first (a twelfth of an FFV1 file): a change is still refused, at its exact frame."""
    from daskmag.io import ffmpeg

    first = encode(tmp_path / "a.ts", range(130), fmt="mpegts", rate=25)
    second = encode(tmp_path / "b.ts", range(130, 200), fmt="mpegts", rate=25, size=(64, 80))
    joined = tmp_path / "sizes.ts"
    joined.write_bytes(first.read_bytes() + second.read_bytes())
    decoded = []
    check_size = ffmpeg._check_size

    def counted(frame, *args):  # instrumented, not replaced
        decoded.append(frame)
        return check_size(frame, *args)

    monkeypatch.setattr(ffmpeg, "_check_size", counted)
    with pytest.raises(UserError, match="frame size changes from 64x48 to 80x64 at frame 130"):
        probe(joined)
    # the first frames (B-frame delay), a key frame per interval, the last: not all 17 groups' first
    assert len(decoded) <= 8
    decoded.clear()
    same = encode(tmp_path / "same.mkv", range(200), codec="ffv1", options={"g": "12"})
    assert probe(same).n_frames == 200
    assert len(decoded) <= 200 // ffmpeg.SIZE_CHECK_EVERY + 2  # was 17


def test_one_frame(tmp_path):
    from daskmag.run import magnify_file

    path = encode(tmp_path / "one.mp4", [0])
    assert numbers(read_frames(path, 0, 1)) == [0]
    with pytest.raises(UserError, match="1 frame to process; magnification needs at least 2"):
        magnify_file(path, tmp_path / "out.mp4", low=1, high=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.mp4"]


def test_names_with_colons_are_files_not_urls(tmp_path, monkeypatch):
    from daskmag.io import write_array

    monkeypatch.chdir(tmp_path)
    encode(tmp_path / "2023-05-01T12:30:05.mp4", range(10), options={"bf": "0"})
    for name in ("2023-05-01T12:30:05.mp4", "./2023-05-01T12:30:05.mp4"):
        assert numbers(open_video(name, chunk_frames=4).frames.compute(scheduler="sync")) == list(range(10))
    write_array(np.stack([stamped(k) for k in range(5)]), "12:00.mkv", 25)
    assert numbers(read_frames("12:00.mkv", 0, 5)) == list(range(5))


def test_printf_pattern_is_named_as_such(tmp_path):
    with pytest.raises(UserError, match="input not found: no file matches"):
        probe(tmp_path / "C001H001S0001%06d.tif")


def test_busy_dashboard_port_takes_another(tmp_path):
    import socket

    from daskmag.cluster import _dashboard_address

    with socket.socket() as busy:
        busy.bind(("", 0))
        busy.listen()
        assert _dashboard_address(busy.getsockname()[1]) == ":0"


def test_info_and_flags_on_the_command_line(tmp_path, capsys):
    from daskmag.cli import main

    path = encode(tmp_path / "two.mp4", range(6), streams=2, options={"bf": "0"})
    assert main(["info", str(path), "--stream", "1"]) == 0
    out = capsys.readouterr().out
    assert "reading 1 (--stream N)" in out and "timing:    constant" in out
    assert main(["info", str(path), "--stream", "5"]) == 2
    assert capsys.readouterr().err.startswith("daskmag: error: --stream 5: ")
    assert main(["info", str(path), "--stream", "-1"]) == 2
    assert "--stream must be at least 0" in capsys.readouterr().err


@pytest.mark.parametrize("codec, suffix", [("libx264", ".mp4"), ("ffv1", ".mkv")])
def test_reads_start_on_key_frames_and_decode_only_their_own_frames(tmp_path, monkeypatch, codec, suffix):
    """Read tasks begin on key frames (every 12th here), and a seek to a key frame starts there:
    no group of pictures is decoded for nothing, and every frame still comes once, in order."""
    from daskmag.io import ffmpeg

    path = encode(tmp_path / f"gop{suffix}", range(75), codec=codec, options={"bf": "2", "g": "12"}
                  if codec == "libx264" else {"g": "12"})
    decoded = {}
    frames_of = ffmpeg._Segment._frames

    def counted(segment, packets, codec_context):  # instrumented, not replaced: the real decoder runs
        for packet, frame in frames_of(segment, packets, codec_context):
            if frame is not None:
                decoded[segment.start] = decoded.get(segment.start, 0) + 1
            yield packet, frame

    monkeypatch.setattr(ffmpeg._Segment, "_frames", counted)
    reader = reader_for(tmp_path / f"gop{suffix}")
    info = reader.probe()
    assert reader.key_frames() == list(range(0, 75, 12))
    video = reader.frames(info, 0, 75, chunk_frames=10, key_aligned=True)
    starts = np.cumsum((0,) + video.chunks[0][:-1]).tolist()
    assert starts == list(range(0, 75, 12))
    assert numbers(video.compute(scheduler="sync")) == list(range(75))
    # each task decodes its own frames and at most the one that ends it (and B-frame delay)
    for start, length in zip(starts, video.chunks[0]):
        assert decoded[start] <= length + 2, (start, length, decoded)
    # an unaligned task seeks to the key frame before it, never a group further back
    decoded.clear()
    assert numbers(reader.read(26, 30)) == [26, 27, 28, 29]
    assert decoded[26] <= 30 - 24 + 2


def test_variable_rate_reads_start_on_key_frames(vfr_file):
    """Frame numbers by rank of timestamp (kept frame for frame): key frames every 5, read from there."""
    path, pts, frames = vfr_file
    reader = reader_for(path)
    info = reader.probe()
    assert info.timing == "variable"
    assert reader.key_frames() == list(range(0, len(pts), 5))
    aligned = reader.frames(info, 0, info.n_frames, chunk_frames=4, key_aligned=True)
    assert set(np.cumsum((0,) + aligned.chunks[0][:-1]).tolist()) <= set(range(0, len(pts), 5))
    np.testing.assert_array_equal(aligned.compute(scheduler="sync"), frames)
