"""Thin graph builders: validate, plan the blocks (:mod:`daskmag.plan`), and
map the pure kernels of :mod:`daskmag.kernels` over Dask arrays with
``map_blocks``/overlap and ``meta``, as dask-image does.  Nothing here
computes; every function returns a lazy Dask array."""

from __future__ import annotations

import dataclasses
import functools

import dask.array as da
import numpy as np

from ..errors import UserError


def as_frames(video, fps=None, *, name: str = "video"):
    """``(frames, fps)`` from a :class:`daskmag.io.Video` or an array of frames.

    Parameters
    ----------
    video : Video or array-like (T, H, W, C) uint8 or uint16
        ``C`` is 3 (RGB) or 1 (mono; a (T, H, W) array is refused, not guessed).
    fps : float, optional
        Overrides the video's own rate; required for a bare array.

    Raises
    ------
    UserError
        A bare array without ``fps``, or frames that are not (T, H, W, 1 or 3)
        uint8 or uint16.
    """
    from ..io import Video

    if isinstance(video, Video):
        frames, rate = video.frames, (fps if fps is not None else video.fps)
    else:
        frames = video if isinstance(video, da.Array) else da.from_array(np.asarray(video))
        if fps is None:
            raise UserError("give fps for a bare array")
        rate = fps
    if frames.ndim != 4 or frames.shape[-1] not in (1, 3):
        raise UserError(f"expected (frames, height, width, 3) RGB or (frames, height, width, 1) mono "
                        f"{name}, got shape {frames.shape}")
    if frames.dtype not in (np.uint8, np.uint16):
        raise UserError(f"expected uint8 or uint16 frames, got {frames.dtype}")
    return frames, rate


def block_position(block_info, halo_before: int, halo_after: int, length: int):
    """``(start, stop, pad_before, pad_after)`` of a time block inside its overlapped array.

    Inner blocks carry their neighbours' halos; the clip's first and last
    block have none on the outside, and the kernel predicts it instead.
    """
    index = block_info[None]["chunk-location"][0]
    count = block_info[None]["num-chunks"][0]
    first, last = index == 0, index == count - 1
    start = 0 if first else halo_before
    stop = length - (0 if last else halo_after)
    return start, stop, halo_before if first else 0, halo_after if last else 0


#: Blocks a graph's output needs in flight at once, by the name of a layer
#: of it (:func:`register_blocks_in_flight`).
_BLOCKS_IN_FLIGHT: dict[str, int] = {}


def register_blocks_in_flight(layer: str, blocks: int):
    """Say that a graph with ``layer`` shares work between ``blocks`` consecutive output blocks.

    The staged motion graph's filter groups span several output blocks and
    their neighbours' halos: if fewer are in flight, a shared result is
    released between two blocks and computed again.
    """
    _BLOCKS_IN_FLIGHT[layer] = max(int(blocks), _BLOCKS_IN_FLIGHT.get(layer, 0))


def blocks_in_flight(frames) -> int:
    """Output blocks of ``frames`` to keep in flight at least (0: no need)."""
    return max((_BLOCKS_IN_FLIGHT.get(name, 0) for name in frames.dask.layers), default=0)


@dataclasses.dataclass(frozen=True)
class EarlyInputs:
    """Results an output block computes for later blocks, to hold until those are submitted.

    The staged motion graph's filter group reaches past its own chunks by
    the temporal filter's halo: submitting block ``k`` runs the analysis of
    chunks after it.  Their decoded frames and analysis are needed again by
    their own blocks; released in between, they would be decoded and
    analysed a second time.  Likewise a group's filtered strips serve each
    of the group's blocks.

    Attributes
    ----------
    chunks : tuple of int
        Frames of each time block, as the output's (holding applies only then).
    holders : dict
        ``{item: the blocks whose graphs use its results}``, sorted; an item
        is a chunk's (its frames and analysis) or a filter group's (its strips).
    results : dict
        ``{item: keys}``: what to hold, keys of the graph (the writer takes
        them from the graph its blocks are computed from, :meth:`delayed`).
    """

    chunks: tuple
    holders: dict
    results: dict

    @functools.cached_property
    def _uses(self) -> dict:
        """``holders`` inverted: ``{block: its items}``."""
        uses = {}
        for item, blocks in self.holders.items():
            for block in blocks:
                uses.setdefault(block, []).append(item)
        return uses

    def pulls(self, block: int) -> list:
        """The items whose results block ``block``'s graph uses."""
        return self._uses.get(block, [])

    def delayed(self, blocks) -> EarlyInputs:
        """This with :attr:`results` as ``[Delayed]`` taken from the graphs of ``blocks``
        (the Delayed the writer computes): the same tasks under the same keys, so
        that holding them holds the blocks' own.  Items whose keys no block's
        graph has (fused away, or only in blocks already written) are not held.
        """
        from dask.delayed import Delayed

        tasks = {}
        for block in blocks:
            tasks.update(block.__dask_graph__())
        results = {j: [Delayed(key, tasks) for key in keys] for j, keys in self.results.items()
                   if all(key in tasks for key in keys)}
        return dataclasses.replace(self, results=results)


#: :class:`EarlyInputs` by the name of a layer of the graph (:func:`register_early_inputs`).
_EARLY_INPUTS: dict[str, EarlyInputs] = {}


def register_early_inputs(layer: str, early: EarlyInputs):
    """Say that the output blocks of a graph with ``layer`` compute results for later blocks."""
    _EARLY_INPUTS[layer] = early


def early_inputs(frames) -> EarlyInputs | None:
    """The :class:`EarlyInputs` of ``frames``, where its time blocks are the ones registered."""
    for name in frames.dask.layers:
        early = _EARLY_INPUTS.get(name)
        if early is not None and tuple(frames.chunks[0]) == early.chunks:
            return early
    return None
