"""Photron .mraw + .cih/.cihx (pyMRAW): 8, 12 and 16-bit frames read lazily, frame for frame."""

from fractions import Fraction

import numpy as np
import pytest

from daskmag.errors import UserError
from daskmag.io import open_video, probe

pyMRAW = pytest.importorskip("pyMRAW")


def frames_of(n, bits, height=16, width=24, seed=0):
    frames = np.random.default_rng(seed).integers(0, 2**bits, (n, height, width), dtype=np.uint16)
    frames[:, 0, 0] = np.arange(n)  # each frame says which it is
    return frames.astype(np.uint8) if bits == 8 else frames


def pack12(frames) -> bytes:
    """Photron's 12-bit layout: two samples in three bytes, most significant first."""
    flat = frames.astype(np.uint16).ravel()
    a, b = flat[0::2], flat[1::2]
    packed = np.stack([a >> 4, ((a & 15) << 4) | (b >> 8), b & 255], axis=1).astype(np.uint8)
    return packed.tobytes()


def write_cih(path, n, height, width, bits, rate, effective=None):
    lines = ["#Camera Information Header", f"Record Rate(fps) : {rate}", "Shutter Speed(s) : 0.000050",
             f"Total Frame : {n}", f"Original Total Frame : {n}", f"Image Width : {width}",
             f"Image Height : {height}", "Color Type : Mono", f"Color Bit : {bits}", "File Format : MRaw",
             f"EffectiveBit Depth : {effective or bits}", "EffectiveBit Side : Lower", "", ""]
    path.write_text("\n".join(lines))
    return path


def write_cihx(path, n, height, width, bits, rate):
    xml = f"""<cih>
<fileInfo><date>2026/11/30</date></fileInfo>
<deviceInfo><deviceName>FASTCAM test</deviceName></deviceInfo>
<recordInfo><recordRate>{rate}</recordRate><shutterSpeed>0.00005</shutterSpeed></recordInfo>
<frameInfo><totalFrame>{n}</totalFrame><recordedFrame>{n}</recordedFrame></frameInfo>
<imageDataInfo><resolution><width>{width}</width><height>{height}</height></resolution>
<effectiveBit><depth>{bits}</depth><side>Lower</side></effectiveBit><colorInfo><bit>{bits}</bit></colorInfo>
</imageDataInfo>
<imageFileInfo><fileFormat>MRaw</fileFormat></imageFileInfo>
<basicInfo><comment>written by a test</comment></basicInfo>
</cih>
"""
    path.write_text(xml)
    return path


@pytest.mark.parametrize("bits", [8, 16])
def test_pymraw_written_files_read_frame_for_frame(tmp_path, bits):
    frames = frames_of(13, bits, seed=bits)
    _, cih = pyMRAW.save_mraw(frames, str(tmp_path / "rec.cih"), bit_depth=bits,
                              info_dict={"Record Rate(fps)": 20000})
    for name in ("rec.cih", "rec.mraw"):  # either file names the recording
        video = open_video(tmp_path / name, chunk_frames=5)
        info = video.info
        assert (info.n_frames, info.height, info.width, info.channels) == (13, 16, 24, 1)
        assert info.fps == 20000 and info.playback_rate == 30 and info.kind == "photron"
        assert info.dtype == ("uint8" if bits == 8 else "uint16")
        assert np.array_equal(video.frames.compute()[..., 0], frames)
    assert np.array_equal(open_video(tmp_path / "rec.cih", start=4, end=11).frames.compute()[..., 0], frames[4:11])


def test_packed_12_bit_with_a_cihx_header(tmp_path):
    frames = frames_of(9, 12, seed=5)
    (tmp_path / "clip.mraw").write_bytes(pack12(frames))
    write_cihx(tmp_path / "clip.cihx", 9, 16, 24, 12, 50000)
    info = probe(tmp_path / "clip.cihx")
    assert info.bits == 12 and info.dtype == "uint16" and info.fps == Fraction(50000)
    video = open_video(tmp_path / "clip.mraw", chunk_frames=2)  # the .cihx beside it is found
    assert np.array_equal(video.frames.compute()[..., 0], frames)
    assert "recording rate" in info.describe() and "12-bit" in info.describe()


def test_damaged_recordings_are_refused(tmp_path):
    frames = frames_of(4, 16)
    (tmp_path / "cut.mraw").write_bytes(frames.tobytes()[:-10])
    write_cih(tmp_path / "cut.cih", 4, 16, 24, 16, 1000)
    with pytest.raises(UserError, match="truncated"):
        probe(tmp_path / "cut.cih")
    (tmp_path / "alone.mraw").write_bytes(frames.tobytes())
    with pytest.raises(UserError, match="no .cihx or .cih header"):
        probe(tmp_path / "alone.mraw")
    write_cih(tmp_path / "colour.cih", 4, 16, 24, 24, 1000)
    (tmp_path / "colour.mraw").write_bytes(bytes(4 * 16 * 24 * 3))
    with pytest.raises(UserError, match="not read"):
        probe(tmp_path / "colour.cih")
