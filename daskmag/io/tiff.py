"""TIFF-sequence output: one TIFF per frame, at the frames' own depth (8 or 16-bit, mono or RGB).

``-o out/%06d.tif`` writes ``out/000000.tif``, ``out/000001.tif``, ... (frame
numbers from 0, a printf pattern of the file name); ``-o out/`` (a folder)
uses ``%06d.tif``.  Files are written with `tifffile
<https://pypi.org/project/tifffile/>`_, uncompressed, grey (``minisblack``)
or RGB.  Each time block is written by its own task into the hidden folder
``.out.partial``, with a marker per finished block (so an interrupted run
resumes); the folder gets its final name only when every frame is there.
TIFF has no frame rate: the sequence is read back with ``--fps``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import dask
import numpy as np

from ..errors import UserError
from ..settings import DEFAULT_CRF
from .output import Writer, partial_path, register_writer, remove_path, replace_path

#: File name of each frame in a folder output.
DEFAULT_PATTERN = "%06d.tif"
_PRINTF = re.compile(r"%0?\d*d")
_SUFFIXES = (".tif", ".tiff")


def split_target(path) -> tuple[Path, str]:
    """``(folder, file-name pattern)`` of a TIFF-sequence output.

    Raises
    ------
    UserError
        A single ``.tif`` name without a frame-number field.
    """
    text = str(path)
    if text.endswith(("/", os.sep)) or (Path(text).is_dir() and Path(text).suffix.lower() not in (".zarr",)):
        return Path(text.rstrip("/" + os.sep) or "/"), DEFAULT_PATTERN
    path = Path(text)
    if len(_PRINTF.findall(path.name)) != 1 or "%" in _PRINTF.sub("", path.name):
        raise UserError(f"a TIFF output is one file per frame: give a pattern with one frame-number field "
                        f"(e.g. {path.with_name(path.stem + '%06d' + path.suffix)}) or a folder ending in /")
    return path.parent, path.name


def _write_block(block, folder: str, pattern: str, offset: int, marker: str) -> int:
    import tifffile

    block = np.asarray(block)
    photometric = "minisblack" if block.shape[-1] == 1 else "rgb"
    for k, frame in enumerate(block):
        image = frame[..., 0] if frame.shape[-1] == 1 else frame
        tifffile.imwrite(os.path.join(folder, pattern % (offset + k)), image, photometric=photometric)
    Path(marker).touch()
    return len(block)


class TiffSequenceWriter(Writer):
    """A folder of TIFFs, one per frame, written block by block."""

    #: Not a suffix: listed with the others in messages; :meth:`claims` picks the writer.
    suffixes = ("/%06d.tif",)
    part_name = "done-{:06d}"

    @classmethod
    def claims(cls, path: str) -> bool:
        text = str(path)
        if text.endswith(("/", os.sep)):
            return True
        candidate = Path(text)
        if candidate.suffix.lower() in _SUFFIXES:
            return True
        return candidate.is_dir() and not candidate.suffix and not (candidate / "zarr.json").exists()

    def target(self, path: Path) -> Path:
        return split_target(path)[0]

    def normalise(self, path) -> Path:
        folder, pattern = split_target(path)
        return folder / pattern

    def block_tasks(self, frames, path: Path, fps, parts, todo, *, crf: float = DEFAULT_CRF, attrs=None) -> dict:
        folder, pattern = split_target(path)
        tmp = partial_path(folder)
        if not parts.resuming:
            remove_path(tmp)
        tmp.mkdir(exist_ok=True)
        offsets = np.concatenate([[0], np.cumsum(frames.chunks[0])[:-1]]).astype(int)
        blocks = frames.rechunk({1: -1, 2: -1}).to_delayed().ravel()
        return {i: dask.delayed(_write_block)(blocks[i], str(tmp), pattern, int(offsets[i]),
                                              str(parts.folder / self.part_name.format(i)))
                for i in todo}

    def finish(self, path: Path, parts, n_blocks: int, fps):
        folder = split_target(path)[0]
        replace_path(partial_path(folder), folder)


register_writer(TiffSequenceWriter)
