"""Zarr v3 stores: ingested video in, any result out (:class:`ZarrReader`, :class:`ZarrWriter`).

A store holds one array, ``(frames, height, width, C)`` uint8 or uint16
(``C`` 3 for RGB, 1 for mono: the source's own samples), chunked by whole
frames along time, with attributes ``fps`` (the playback rate,
``"num/den"``), ``frames`` and, where known, ``recording_fps`` (the rate the
footage was filmed at, which the filters use), ``bits`` (significant bits per
sample), ``source`` and ``codec``.  Written block by block in
place, in chunk-aligned regions (no locks), with a marker file per finished
block, so an interrupted write resumes.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import dask
import dask.array as da
import numpy as np

from ..errors import UserError
from ..settings import DEFAULT_CRF
from .base import Reader, VideoInfo, reason, register_reader
from .output import Writer, exact_rate, partial_path, register_writer, remove_path, replace_path

STORE_SUFFIX = ".zarr"


def is_store(path: Path) -> bool:
    """Whether ``path`` names a Zarr store (by its suffix, or a folder with ``zarr.json``)."""
    path = Path(path)
    return path.suffix == STORE_SUFFIX or (path.is_dir() and (path / "zarr.json").exists())


def open_store_array(path: Path):
    """The frames array of a store.

    Raises
    ------
    UserError
        Missing, not Zarr, or not (frames, height, width, 1 or 3) uint8 or uint16.
    """
    import zarr

    if not path.exists():
        raise UserError(f"input not found: {path}")
    try:
        node = zarr.open(str(path), mode="r")
    except Exception as exc:
        raise UserError(f"cannot open {path} as a Zarr store ({reason(exc)})") from None
    if isinstance(node, zarr.Group):
        if "frames" not in node:
            raise UserError(f"{path} is a Zarr group without a 'frames' array")
        node = node["frames"]
    if node.ndim != 4 or node.shape[-1] not in (1, 3) or node.dtype not in (np.uint8, np.uint16):
        raise UserError(f"{path} does not hold (frames, height, width, 1 or 3) uint8 or uint16 video")
    return node


class ZarrReader(Reader):
    """A store made by :func:`daskmag.ingest` or written by ``magnify -o out.zarr``."""

    kind = "zarr"

    @classmethod
    def accepts(cls, path: Path) -> bool:
        return is_store(path)

    def probe(self) -> VideoInfo:
        array = open_store_array(self.path)
        attrs = dict(array.attrs)
        playback = Fraction(attrs.get("fps", "0"))
        recording = Fraction(attrs.get("recording_fps", attrs.get("fps", "0")))
        n_frames, height, width, channels = array.shape
        if n_frames == 0:
            raise UserError(f"{self.path} has no frames")
        dtype = np.dtype(array.dtype)
        return VideoInfo(str(self.path), n_frames, height, width, recording, str(attrs.get("codec", "zarr")),
                         "zarr", dtype=str(dtype), channels=channels, bits=int(attrs.get("bits", 8 * dtype.itemsize)),
                         playback_fps=playback if playback != recording else None)

    def read(self, start: int, stop: int) -> np.ndarray:
        return np.asarray(open_store_array(self.path)[start:stop])

    def frames(self, info: VideoInfo, first: int, stop: int, chunk_frames: int | None = None, *,
               key_aligned: bool = False, longest: int | None = None) -> da.Array:
        # every chunk of a store is read as cheaply as another: its own chunks serve
        frames = da.from_zarr(open_store_array(self.path))[first:stop]
        if chunk_frames:
            frames = frames.rechunk({0: chunk_frames})
        return frames


register_reader(ZarrReader)


def _store_part(block, store: str, offset: int, marker: str) -> int:
    import zarr

    array = zarr.open_array(store, mode="r+")
    array[offset : offset + len(block)] = np.asarray(block)
    Path(marker).touch()
    return len(block)


def _open_store(path: Path, frames: da.Array, fps, attrs: dict, resume: bool):
    """The partial Zarr store of ``path``: created, or reopened to resume.

    Its chunks divide every block's start, so each block writes whole chunks
    of its own (the last block may also write a trailing partial chunk): no
    two tasks ever write the same chunk, and no lock is needed.
    """
    import math

    import zarr

    tmp = partial_path(path)
    lengths = frames.chunks[0]
    step = math.gcd(*lengths[:-1]) if len(lengths) > 1 else lengths[0]
    chunks = (step,) + frames.shape[1:]
    if resume and tmp.exists():
        array = zarr.open_array(str(tmp), mode="r+")
        if array.shape == frames.shape and array.chunks == chunks:
            return tmp
    remove_path(tmp)
    array = zarr.create_array(str(tmp), shape=frames.shape, chunks=chunks, dtype=frames.dtype)
    rate = exact_rate(fps)
    array.attrs.update({"fps": f"{rate.numerator}/{rate.denominator}", "frames": frames.shape[0], **attrs})
    return tmp



class ZarrWriter(Writer):
    """A Zarr store written in place, block by block, with a marker per finished block."""

    suffixes = (STORE_SUFFIX,)
    part_name = "done-{:06d}"

    def block_tasks(self, frames, path: Path, fps, parts, todo, *, crf: float = DEFAULT_CRF, attrs=None) -> dict:
        chunks = frames.chunks[0]
        offsets = np.concatenate([[0], np.cumsum(chunks)[:-1]]).astype(int)
        blocks = frames.rechunk({1: -1, 2: -1}).to_delayed().ravel()
        store = _open_store(path, frames, fps, attrs or {}, resume=parts.resuming)
        return {i: dask.delayed(_store_part)(blocks[i], str(store), int(offsets[i]),
                                             str(parts.folder / self.part_name.format(i)))
                for i in todo}

    def finish(self, path: Path, parts, n_blocks: int, fps):
        replace_path(partial_path(path), path)


register_writer(ZarrWriter)
