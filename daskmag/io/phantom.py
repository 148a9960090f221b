"""Phantom high-speed camera files (Vision Research ``.cine``).

Read with `pycine-lite <https://pypi.org/project/pycine-lite/>`_ (LGPL-3.0):
its header structures (``read_header``: file header, bitmap header, camera
setup, image offsets) and its frame decoding (``create_raw_array``), which
covers unpacked 8 and 16-bit data and the packed 10-bit (``P10``, through the
camera's linearisation table to 12 bits) and 12-bit (``P12L``) formats that
FFmpeg's ``cine`` demuxer does not read.  Frames are read lazily per time
block: each task seeks to its own frames through the image offsets, so a
``.cine`` of any length is read in parallel in constant memory.  Samples are
as pycine-lite gives them (black level to 0, white level to full scale of
``RealBPP`` bits: unchanged when they are 0 and ``2**RealBPP - 1``): uint8
for 8-bit, uint16 otherwise, mono (colour ``.cine`` is refused).

The recording rate is the setup's ``FrameRate``; outputs play at
:data:`~daskmag.io.base.DEFAULT_PLAYBACK_FPS` unless ``--playback-fps``.
Install with ``pip install daskmag[camera]``.
"""

from __future__ import annotations

import struct
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import UserError
from .base import DEFAULT_PLAYBACK_FPS, Reader, VideoInfo, file_stamp, reason, register_reader

#: ``biCompression`` values pycine-lite decodes: unpacked, packed 10-bit, packed 12-bit.
COMPRESSIONS = {0: "unpacked", 256: "packed 10-bit", 1024: "packed 12-bit"}


def _pycine():
    try:
        import pycine.file
        import pycine.raw
    except ImportError:
        raise UserError("reading Phantom .cine files needs pycine-lite: pip install 'daskmag[camera]'") from None
    return pycine


def read_header(path: Path) -> dict:
    """pycine-lite's header of a ``.cine``, checked.

    Raises
    ------
    UserError
        Unreadable, colour, an unknown packing, or no frames.
    """
    pycine = _pycine()
    try:
        header = pycine.file.read_header(str(path))
    except Exception as exc:
        raise UserError(f"cannot read {path} as a Phantom .cine ({reason(exc)})") from None
    bih, setup, cfh = header["bitmapinfoheader"], header["setup"], header["cinefileheader"]
    if int(cfh.Type) != 0x4943:  # "CI", little-endian
        raise UserError(f"{path} is not a Phantom .cine (no 'CI' signature)")
    if bih.biCompression not in COMPRESSIONS:
        raise UserError(f"{path}: compression {bih.biCompression} is not read (unpacked, P10 and P12L are)")
    if setup.CFA or bih.biBitCount in (24, 48) or (bih.biCompression == 0 and bih.biBitCount not in (8, 16)):
        raise UserError(f"{path}: colour or {bih.biBitCount}-bit .cine is not read (mono 8 to 16-bit is)")
    if cfh.ImageCount < 1:
        raise UserError(f"{path} has no frames")
    return header


class PhantomReader(Reader):
    """A Phantom ``.cine``: frames (n, H, W, 1), uint8 (8-bit) or uint16 (10 to 16-bit)."""

    kind = "phantom"

    def __init__(self, path: Path, on_corrupt: str = "stop"):
        super().__init__(path, on_corrupt)
        self._header = None

    @classmethod
    def accepts(cls, path: Path) -> bool:
        return path.suffix.lower() == ".cine" and not path.is_dir()

    @property
    def header(self) -> dict:
        if self._header is None:  # read once per worker, not shipped with every task
            self._header = read_header(self.path)
        return self._header

    def probe(self) -> VideoInfo:
        header = self.header
        bih, setup, cfh = header["bitmapinfoheader"], header["setup"], header["cinefileheader"]
        rate = Fraction(int(setup.FrameRate or setup.FrameRate16))
        if rate <= 0:
            raise UserError(f"{self.path} records no frame rate")
        bits = int(_pycine().raw.read_bpp(header))
        eight = bih.biCompression == 0 and bih.biBitCount == 8
        return VideoInfo(str(self.path), int(cfh.ImageCount), abs(int(bih.biHeight)), int(bih.biWidth), rate,
                         f"cine {COMPRESSIONS[bih.biCompression]} {bits}-bit", self.kind,
                         dtype="uint8" if eight else "uint16", channels=1, bits=bits,
                         playback_fps=DEFAULT_PLAYBACK_FPS)

    def read(self, start: int, stop: int) -> np.ndarray:
        raw = _pycine().raw
        header = self.header
        bih = header["bitmapinfoheader"]
        eight = bih.biCompression == 0 and bih.biBitCount == 8
        out = np.empty((stop - start, abs(int(bih.biHeight)), int(bih.biWidth), 1),
                       dtype=np.uint8 if eight else np.uint16)
        with open(self.path, "rb") as f:
            for k in range(start, stop):
                # each image: AnnotationSize (uint32), annotation, ImageSize (uint32), samples
                f.seek(header["pImage"][k])
                annotation = struct.unpack("<I", f.read(4))[0]
                f.seek(header["pImage"][k] + annotation - 4)
                size = struct.unpack("<I", f.read(4))[0]
                data = f.read(size)
                if len(data) < size:
                    raise UserError(f"{self.path}: frame {k} is cut short (the file is truncated)")
                out[k - start, ..., 0] = raw.create_raw_array(data, header)
        return out

    def token(self) -> tuple:
        return (type(self).__name__, str(self.path), file_stamp(self.path))

    def __getstate__(self):
        return {**self.__dict__, "_header": None}  # ctypes structures do not pickle


register_reader(PhantomReader)
