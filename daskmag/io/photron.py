"""Photron high-speed camera files: ``.mraw`` frames with their ``.cih``/``.cihx`` header.

Read with `pyMRAW <https://pypi.org/project/pyMRAW/>`_ (LADISK, University of
Ljubljana): its header parser (``get_cih``, both the text ``.cih`` and the
XML ``.cihx``) and its 12-bit unpacker.  Frames are read lazily per time
block: 8 and 16-bit frames are a memory map of the block's bytes only; 12-bit
frames (two samples in three bytes, big-endian) are unpacked block by block
by pyMRAW's compiled ``nb_read_uint12`` (``pyMRAW.load_video`` would unpack
the whole file into memory).  Samples keep their values: 8-bit as uint8, 12
and 16-bit as uint16, mono (colour ``.mraw`` is refused).

The recording rate is the header's ``Record Rate(fps)``; outputs play at
:data:`~daskmag.io.base.DEFAULT_PLAYBACK_FPS` unless ``--playback-fps``.
pyMRAW is GPL-3.0 and needs numba: install it with ``pip install daskmag[camera]``.
"""

from __future__ import annotations

import warnings
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import UserError
from .base import DEFAULT_PLAYBACK_FPS, Reader, VideoInfo, file_stamp, reason, register_reader

SUFFIXES = (".cih", ".cihx", ".mraw")


def _pymraw():
    try:
        import pyMRAW
    except ImportError:
        raise UserError("reading Photron .mraw files needs pyMRAW: pip install 'daskmag[camera]'") from None
    return pyMRAW


def header_path(path: Path) -> Path:
    """The ``.cihx`` or ``.cih`` header of a Photron recording named by any of its files."""
    path = Path(path)
    if path.suffix.lower() in (".cih", ".cihx"):
        return path
    for suffix in (".cihx", ".cih"):
        candidate = path.with_suffix(suffix)
        if candidate.exists():
            return candidate
    raise UserError(f"{path} has no .cihx or .cih header beside it (Photron keeps the frame size there)")


def read_header(path: Path) -> dict:
    """The header as pyMRAW's dict, checked: mono MRAW, 8, 12 or 16 bits, frames that fit the file.

    Raises
    ------
    UserError
        Unreadable header, colour, another bit depth or file format, or an
        ``.mraw`` shorter than its header says.
    """
    pymraw = _pymraw()
    header = header_path(path)
    try:
        cih = pymraw.get_cih(str(header))
        fields = ("Total Frame", "Image Width", "Image Height", "Record Rate(fps)", "Color Bit", "File Format")
        missing = [name for name in fields if name not in cih]
    except Exception as exc:
        raise UserError(f"cannot read {header} as a Photron header ({reason(exc)})") from None
    if missing:
        raise UserError(f"{header} lacks {', '.join(missing)}")
    if str(cih["File Format"]).lower() != "mraw":
        raise UserError(f"{header} describes {cih['File Format']} files, not .mraw; open those images instead")
    if str(cih.get("Color Type", "Mono")).lower() != "mono" or int(cih["Color Bit"]) not in (8, 12, 16):
        raise UserError(f"{header}: {cih.get('Color Type', '')} {cih['Color Bit']}-bit .mraw is not read "
                        f"(mono 8, 12 and 16-bit are)")
    mraw = header.with_suffix(".mraw")
    if not mraw.exists():
        raise UserError(f"{mraw} not found (the frames of {header.name})")
    need = int(cih["Total Frame"]) * frame_bytes(cih)
    if mraw.stat().st_size < need:
        raise UserError(f"{mraw} holds {mraw.stat().st_size} bytes, fewer than the {need} of its "
                        f"{cih['Total Frame']} frames: the file is truncated")
    return cih


def frame_bytes(cih: dict) -> int:
    """Bytes of one frame in the ``.mraw``."""
    return int(cih["Image Width"]) * int(cih["Image Height"]) * int(cih["Color Bit"]) // 8


class PhotronReader(Reader):
    """A Photron recording, named by its ``.cihx``, ``.cih`` or ``.mraw``.

    Frames come out as (n, H, W, 1), uint8 (8-bit) or uint16 (12, 16-bit).
    """

    kind = "photron"

    def __init__(self, path: Path, on_corrupt: str = "stop"):
        super().__init__(path, on_corrupt)
        self._cih = None

    @classmethod
    def accepts(cls, path: Path) -> bool:
        return path.suffix.lower() in SUFFIXES and not path.is_dir()

    @property
    def cih(self) -> dict:
        if self._cih is None:
            self._cih = read_header(self.path)
        return self._cih

    @property
    def mraw(self) -> Path:
        return header_path(self.path).with_suffix(".mraw")

    def probe(self) -> VideoInfo:
        cih = self.cih
        colour_bit = int(cih["Color Bit"])
        effective = int(cih.get("EffectiveBit Depth", colour_bit) or colour_bit)
        if str(cih.get("EffectiveBit Side", "Lower")).lower() == "higher":
            effective = colour_bit  # the data sit in the high bits: the whole word is used
        rate = Fraction(str(cih["Record Rate(fps)"])).limit_denominator(1_000_000)
        if rate <= 0:
            raise UserError(f"{header_path(self.path)} records a rate of {cih['Record Rate(fps)']} fps")
        n = int(cih["Total Frame"])
        if n < 1:
            raise UserError(f"{self.path} has no frames")
        return VideoInfo(str(self.path), n, int(cih["Image Height"]), int(cih["Image Width"]), rate,
                         f"mraw {colour_bit}-bit", self.kind, dtype="uint8" if colour_bit == 8 else "uint16",
                         channels=1, bits=min(effective, colour_bit), playback_fps=DEFAULT_PLAYBACK_FPS)

    def read(self, start: int, stop: int) -> np.ndarray:
        cih = self.cih
        height, width, bit = int(cih["Image Height"]), int(cih["Image Width"]), int(cih["Color Bit"])
        size = frame_bytes(cih)
        n = stop - start
        if bit in (8, 16):
            dtype = np.uint8 if bit == 8 else np.dtype("<u2")
            frames = np.memmap(self.mraw, dtype=dtype, mode="r", offset=start * size, shape=(n, height, width))
            out = np.array(frames, dtype=np.uint8 if bit == 8 else np.uint16)
        else:
            packed = np.memmap(self.mraw, dtype=np.uint8, mode="r", offset=start * size, shape=(n * size,))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out = _pymraw().nb_read_uint12(np.array(packed)).reshape(n, height, width)
        return out[..., None]

    def token(self) -> tuple:
        header = header_path(self.path)
        return (type(self).__name__, str(self.path), file_stamp(header), file_stamp(header.with_suffix(".mraw")))

    def __getstate__(self):
        return {**self.__dict__, "_cih": self._cih}


register_reader(PhotronReader)
