"""Image sequences and stacks: a folder, a printf pattern or a glob of TIFF or PNG files.

Lab and high-speed cameras often save one image per frame (``C001H001S0001000001.tif``
...) or one multi-page TIFF (BigTIFF past 4 GiB).  :class:`ImageSequenceReader`
reads them as a video, lazily: each time chunk is one task that reads only its
own files (or pages), so a sequence of 100,000 frames is read in parallel in
constant memory.

* TIFF through `tifffile <https://pypi.org/project/tifffile/>`_ (Gohlke): any
  page layout and compression it reads, BigTIFF and multi-page stacks
  (``series[0]`` of the file).
* PNG through FFmpeg's PNG decoder (PyAV), which keeps 16-bit RGB: Pillow (and
  so imageio's default plugin) silently reduces 16-bit RGB PNG to 8 bits.

Samples are kept as stored: 8-bit or 16-bit, mono (``channels=1``) or RGB.
Image files record no frame rate: the recording rate comes from ``--fps``
(:func:`daskmag.run.preflight` refuses without it), and an output plays at
:data:`~daskmag.io.base.DEFAULT_PLAYBACK_FPS` unless ``--playback-fps`` says
otherwise.
"""

from __future__ import annotations

import copy
import glob
import re
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import UserError
from .base import DEFAULT_PLAYBACK_FPS, Reader, VideoInfo, file_stamp, reason, register_reader

#: Suffixes of image files, by kind.
TIFF_SUFFIXES = (".tif", ".tiff")
PNG_SUFFIXES = (".png",)
IMAGE_SUFFIXES = TIFF_SUFFIXES + PNG_SUFFIXES
#: A printf field for the frame number: ``%d``, ``%06d``.
PRINTF = re.compile(r"%(0?\d*)d")
#: PyAV pixel formats of decoded PNG frames, by (channels, dtype).
_PNG_FORMATS = {(1, "uint8"): "gray", (1, "uint16"): "gray16le", (3, "uint8"): "rgb24", (3, "uint16"): "rgb48le"}


def _natural_key(name: str):
    """Sort key that orders ``frame9`` before ``frame10``."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def is_pattern(path: Path) -> bool:
    """Whether ``path``'s name is a printf pattern or a glob of image files."""
    name = Path(path).name
    return Path(path).suffix.lower() in IMAGE_SUFFIXES and bool(PRINTF.search(name) or glob.has_magic(name))


def _pattern_files(path: Path) -> list[Path]:
    """The files a printf pattern names, in frame-number order, with no number missing."""
    name = path.name
    match = PRINTF.search(name)
    width = match.group(1)
    digits = rf"\d{{{int(width)}}}" if width.startswith("0") and len(width) > 1 else r"\d+"
    regex = re.compile(re.escape(name[: match.start()]) + f"({digits})" + re.escape(name[match.end():]) + r"\Z")
    folder = path.parent
    if not folder.is_dir():
        raise UserError(f"input not found: {folder} is not a folder")
    numbered = sorted((int(m.group(1)), folder / entry.name) for entry in folder.iterdir()
                      if (m := regex.match(entry.name)))
    if not numbered:
        raise UserError(f"input not found: no file matches {path}")
    _check_consecutive([n for n, _ in numbered], path)
    return [file for _, file in numbered]


def _check_consecutive(numbers: list[int], source):
    """A missing frame number is an error: frames are never silently skipped."""
    steps = np.diff(numbers)
    if len(steps) and (steps != 1).any():
        gap = int(np.argmax(steps != 1))
        raise UserError(f"{source}: frame number {numbers[gap] + 1} is missing "
                        f"(files go from {numbers[gap]} to {numbers[gap + 1]})")


def _numbers(names: list[str]) -> list[int] | None:
    """The frame numbers of names that differ only in their last number, else None."""
    parts = [re.match(r"(.*?)(\d+)(\D*)\Z", name) for name in names]
    if not all(parts) or len({(p.group(1), p.group(3)) for p in parts}) != 1:
        return None
    return [int(p.group(2)) for p in parts]


def list_images(path) -> tuple[list[Path], str]:
    """The image files of a folder, printf pattern, glob or single file, in frame order.

    Returns
    -------
    files : list of Path
    kind : {"tiff", "png"}

    Raises
    ------
    UserError
        No image files, TIFF and PNG mixed, or a frame number missing from a
        numbered sequence.
    """
    path = Path(path)
    if path.is_dir():
        files = sorted((f for f in path.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file()
                        and not f.name.startswith(".")), key=lambda f: _natural_key(f.name))
        if not files:
            raise UserError(f"{path} holds no .tif, .tiff or .png images")
        numbers = _numbers([f.name for f in files])
        if numbers is not None:
            _check_consecutive(numbers, path)
    elif path.exists():
        files = [path]
    elif PRINTF.search(path.name):
        files = _pattern_files(path)
    else:
        files = sorted((Path(f) for f in glob.glob(str(path))), key=lambda f: _natural_key(f.name))
        if not files:
            raise UserError(f"input not found: no file matches {path}")
    kinds = {"png" if f.suffix.lower() in PNG_SUFFIXES else "tiff" for f in files}
    if len(kinds) > 1:
        raise UserError(f"{path} mixes TIFF and PNG images; give a pattern that names one kind")
    return files, kinds.pop()


def _as_frames(array: np.ndarray, n: int, source) -> np.ndarray:
    """``(n, H, W, C)`` from a stack of n frames (``(n, H, W)``, ``(n, H, W, C)``, or unstacked)."""
    array = np.asarray(array)
    if n == 1 and array.ndim in (2, 3) and (array.ndim == 2 or array.shape[-1] in (3, 4)):
        array = array[None]
    if array.ndim == 3:
        array = array[..., None]
    if array.ndim != 4 or array.shape[0] != n:
        raise UserError(f"{source}: images of shape {array.shape[1:]} are not mono or RGB frames")
    if array.shape[-1] not in (1, 3):
        raise UserError(f"{source}: {array.shape[-1]} samples per pixel; only mono (1) and RGB (3) are read")
    if array.dtype not in (np.uint8, np.uint16):
        raise UserError(f"{source}: {array.dtype} samples; only 8-bit and 16-bit unsigned images are read")
    return array


def _tiff_stack(path: Path):
    """``(frames, height, width, channels, dtype, bits)`` of a TIFF file's first series.

    The frame is the series' last axes, ``YX`` (mono) or ``YXS`` (samples);
    every axis before them counts frames (pages).
    """
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            shape, axes, dtype = tuple(series.shape), series.axes, np.dtype(series.dtype)
            bits = int(tif.pages[0].bitspersample)
    except Exception as exc:
        raise UserError(f"cannot read {path} as a TIFF ({reason(exc)})") from None
    frame = shape[-3:] if axes.endswith("S") else shape[-2:]
    n = int(np.prod(shape[: len(shape) - len(frame)], dtype=np.int64))
    _as_frames(np.empty((1,) + frame, dtype=dtype), 1, path)  # refuses what is not mono or RGB
    channels = frame[2] if len(frame) == 3 else 1
    return n, frame[0], frame[1], channels, dtype, bits


def _read_tiff(file: Path, key=None) -> np.ndarray:
    import tifffile

    try:
        return tifffile.imread(file, key=key, series=0) if key is not None else tifffile.imread(file)
    except Exception as exc:
        raise UserError(f"cannot read {file} ({reason(exc)})") from None


def _read_png(codec, file: Path, channels: int, dtype: str) -> np.ndarray:
    """One PNG as (H, W, C), decoded by FFmpeg at its stored depth."""
    import av

    try:
        frame = codec.decode(av.Packet(file.read_bytes()))[0]
    except Exception as exc:
        raise UserError(f"cannot read {file} as a PNG ({reason(exc)})") from None
    if _PNG_KINDS.get(frame.format.name) != (channels, dtype):
        raise UserError(f"{file} is {frame.format.name}, unlike the sequence's first image")
    return frame.to_ndarray(format=_PNG_FORMATS[(channels, dtype)]).reshape(frame.height, frame.width, channels)


#: PNG pixel formats read, as (channels, dtype).
_PNG_KINDS = {"gray": (1, "uint8"), "gray16be": (1, "uint16"), "rgb24": (3, "uint8"), "rgb48be": (3, "uint16")}


def _png_info(file: Path):
    """``(height, width, channels, dtype, bits)`` of a PNG, from FFmpeg's decoder."""
    import av

    codec = av.CodecContext.create("png", "r")
    try:
        frame = codec.decode(av.Packet(file.read_bytes()))[0]
    except Exception as exc:
        raise UserError(f"cannot read {file} as a PNG ({reason(exc)})") from None
    if frame.format.name not in _PNG_KINDS:
        raise UserError(f"{file}: {frame.format.name} PNG (palette, 1-bit or alpha) is not read; "
                        f"save 8 or 16-bit grey or RGB")
    channels, dtype = _PNG_KINDS[frame.format.name]
    return frame.height, frame.width, channels, dtype, 16 if dtype == "uint16" else 8


class ImageSequenceReader(Reader):
    """A folder, printf pattern (``NAME%06d.tif``), glob (``NAME*.png``) or multi-page TIFF.

    Frames come out as ``(n, H, W, C)``, ``C`` 1 (mono) or 3 (RGB), uint8 or
    uint16 as stored.  A sequence is read file by file; a stack page by page.
    The files are listed once, when the reader is made.
    """

    kind = "images"
    patterns = True

    def __init__(self, path: Path, on_corrupt: str = "stop"):
        super().__init__(path, on_corrupt)
        self.files, self.format = list_images(self.path)
        self.stack = len(self.files) == 1 and self.format == "tiff"
        self.offset = 0  # frame number of files[0] (a part's reader holds only its files)
        self._token = None

    @classmethod
    def accepts(cls, path: Path) -> bool:
        from .zarr_store import is_store

        if path.is_dir():
            return not is_store(path) and any(f.suffix.lower() in IMAGE_SUFFIXES for f in path.iterdir())
        if path.exists():
            return path.suffix.lower() in IMAGE_SUFFIXES
        return is_pattern(path)

    def probe(self) -> VideoInfo:
        first = self.files[0]
        if self.stack:
            n, height, width, channels, dtype, bits = _tiff_stack(first)
            codec = "tiff (multi-page)" if n > 1 else "tiff"
        else:
            n = len(self.files)
            if self.format == "tiff":
                n_pages, height, width, channels, dtype, bits = _tiff_stack(first)
                if n_pages != 1:
                    raise UserError(f"{first} holds {n_pages} frames: give the stack itself, not a sequence of stacks")
            else:
                height, width, channels, dtype, bits = _png_info(first)
            codec = f"{self.format} sequence ({first.name} ... {self.files[-1].name})"
        return VideoInfo(str(self.path), n, height, width, Fraction(0), codec, self.kind,
                         dtype=str(np.dtype(dtype)), channels=channels, bits=bits,
                         playback_fps=DEFAULT_PLAYBACK_FPS)

    def read(self, start: int, stop: int) -> np.ndarray:
        if self.stack:
            return _as_frames(_read_tiff(self.files[0], key=slice(start, stop)), stop - start, self.files[0])
        files = self.files[start - self.offset : stop - self.offset]
        first = self._read_one(files[0])
        out = np.empty((len(files),) + first.shape, dtype=first.dtype)
        out[0] = first
        for i, file in enumerate(files[1:], 1):
            image = self._read_one(file, first.shape[-1], str(first.dtype))
            if image.shape != first.shape or image.dtype != first.dtype:
                raise UserError(f"{file} is {image.shape[1]}x{image.shape[0]} {image.dtype} with "
                                f"{image.shape[2]} channels, unlike {files[0].name}: all frames must match")
            out[i] = image
        return out

    def part(self, start: int, stop: int) -> ImageSequenceReader:
        """This reader with only the files of frames ``[start, stop)`` (not the whole list)."""
        part = copy.copy(self)
        if not self.stack:
            part.files, part.offset = self.files[start:stop], start
        part._token = None
        return part

    def _read_one(self, file: Path, channels: int | None = None, dtype: str | None = None) -> np.ndarray:
        if self.format == "tiff":
            return _as_frames(_read_tiff(file), 1, file)[0]
        import av

        if channels is None:
            _, _, channels, dtype, _ = _png_info(file)
        # a decoder per file: FFmpeg's PNG decoder keeps state between pictures (APNG), and
        # a reused one returned wrong samples for some files of a sequence
        return _read_png(av.CodecContext.create("png", "r"), file, channels, dtype)

    def token(self) -> tuple:
        # every file's size and modification time: a changed frame gets new graph keys
        if self._token is None:
            stamps = tuple(file_stamp(f) for f in self.files)
            self._token = (type(self).__name__, str(self.path), self.offset, tuple(map(str, self.files)), stamps)
        return self._token

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_token"] = None  # recomputed where needed, not shipped with every task
        return state


register_reader(ImageSequenceReader)
