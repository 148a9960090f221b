"""The block plan: time blocks, temporal halos, spatial tiles and margins.

One function per mode decides how a clip of a given size is cut into tasks
(:func:`plan_motion`, :func:`plan_colour`); the graph builders
(:mod:`daskmag.graph`), the command line's pre-flight (:func:`plan_job`,
which runs every check that needs the frame size before any work) and the
benchmarks all use it, so they agree on what a task is.

Memory depends on the block, never on the clip's length: a block holds
``HALOS_PER_BLOCK`` temporal halos' worth of frames (so the halos add at most
a quarter to the work), fewer if that would exceed ``block_bytes`` of working
memory; frames above :data:`AUTO_TILE_PIXELS` pixels are cut into tiles.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from .errors import UserError
from .kernels.pyramid import PyramidSpec
from .kernels.temporal import TemporalFilter
from .settings import (Band, ColourSettings, Execution, MotionSettings, Selection, check_roi, check_scale,
                       scale_roi)

#: Default spatial halo of a tile, in pixels.
TILE_MARGIN = 64
#: Default tile size: frames with more pixels than a 1024 x 1024 frame are
#: tiled (``daskmag magnify --tile``).
AUTO_TILE = 512
AUTO_TILE_PIXELS = 1024 * 1024
#: Default working-memory budget of one time block (one task), in bytes.
BLOCK_BYTES = 1 * 2**30
#: A block's own frames, in halos (see :func:`plan_time_chunks`).
HALOS_PER_BLOCK = 8
MIN_BLOCK_FRAMES = 64
#: ``--filter ideal`` holds the whole clip in one block: at most this many
#: frames x pixels (of a tile), ~16 GiB of working memory.
IDEAL_MAX_FRAME_PIXELS = 2**30
#: Working bytes per pixel per frame of a block: the phase increments of all
#: bands (~3.3 coefficients per pixel, float16 in large blocks), the phase
#: shifts of the core frames, and the RGB frames in and out.
BYTES_PER_PIXEL_FRAME = 16
#: Smallest frame the motion pyramid works on.
MIN_PYRAMID_SIZE = 16
#: Frame around a region that is magnified with it (and then discarded), in
#: pixels: the pyramid's periodic borders and its coarse filters reach about
#: this far, as a tile's margin.
REGION_MARGIN = 64


@dataclass(frozen=True)
class BlockPlan:
    """How a clip is cut into tasks.

    Attributes
    ----------
    time_chunks : tuple of int
        Frames of each time block's own (output) frames.
    halo_before, halo_after : int
        The temporal filter's reach: frames each block reads before and after
        its own; at the clip's ends (and for a single block) they are
        predicted instead.
    rows, cols : tuple of int
        Tile heights and widths (one each for whole frames).
    margin : int
        Spatial halo of each tile, pixels (0 for whole frames).
    pyramid : PyramidSpec or None
        The pyramid a tile holds (motion mode; fewer levels when tiled).
    """

    time_chunks: tuple[int, ...]
    halo_before: int
    halo_after: int
    rows: tuple[int, ...]
    cols: tuple[int, ...]
    margin: int = 0
    pyramid: PyramidSpec | None = None

    @property
    def halo(self) -> int:
        return max(self.halo_before, self.halo_after)

    @property
    def tiled(self) -> bool:
        return len(self.rows) > 1 or len(self.cols) > 1

    @property
    def n_blocks(self) -> int:
        return len(self.time_chunks)

    @property
    def tile_pixels(self) -> int:
        """Pixels of the largest tile, margins included."""
        return (max(self.rows) + 2 * self.margin) * (max(self.cols) + 2 * self.margin)

    def frames_read(self, index: int) -> int:
        """Frames block ``index`` reads, halos included (not beyond the clip)."""
        before = self.halo_before if index > 0 else 0
        after = self.halo_after if index < self.n_blocks - 1 else 0
        return self.time_chunks[index] + before + after


def _split(total: int, size: int, join_below: int = 0) -> list[int]:
    """``total`` in parts of ``size``; a remainder shorter than ``join_below`` joins the last part."""
    parts = [size] * (total // size)
    remainder = total % size
    if remainder and parts and remainder < join_below:
        parts[-1] += remainder
    elif remainder:
        parts.append(remainder)
    return parts


def plan_time_chunks(n_frames: int, frame_pixels: int, halo: int, *, time_chunk: int | None = None,
                     min_blocks: int = 1, block_bytes: int = BLOCK_BYTES) -> tuple[int, ...]:
    """Frames per time block.

    By default a block holds ``HALOS_PER_BLOCK`` halos' worth of frames (so
    the halos add at most a quarter to the work) unless that would exceed
    ``block_bytes``; it never holds fewer than ``halo`` frames (so that only
    direct neighbours overlap), and a short video is split into at least
    ``min_blocks`` blocks.  The size does not depend on the video's length
    (beyond that split), so neither does memory.  A trailing block shorter
    than the halo joins the one before it.
    """
    if time_chunk is None:
        fit = block_bytes // max(1, BYTES_PER_PIXEL_FRAME * frame_pixels) - 2 * halo
        enough = max(HALOS_PER_BLOCK * halo, MIN_BLOCK_FRAMES)
        time_chunk = min(max(min(fit, enough), halo, 8), max(1, math.ceil(n_frames / max(1, min_blocks))))
    time_chunk = max(int(time_chunk), halo, 1)
    return tuple(_split(n_frames, time_chunk, halo))


def auto_tile(height: int, width: int, tile: int | None = None) -> int | None:
    """The tile size to use: ``tile`` if given (0 means whole frames), else
    :data:`AUTO_TILE` for frames larger than :data:`AUTO_TILE_PIXELS`."""
    if tile is not None:
        return int(tile) or None
    return AUTO_TILE if height * width > AUTO_TILE_PIXELS else None


def spatial_chunks(size: int, tile: int | None, margin: int) -> tuple[int, ...]:
    """Tile sizes along one axis; a last tile smaller than the margin joins the one before."""
    if not tile or size <= tile:
        return (size,)
    tile = max(int(tile), margin)
    chunks = [tile] * (size // tile)
    remainder = size - sum(chunks)
    if remainder:
        if remainder < margin:
            chunks[-1] += remainder
        else:
            chunks.append(remainder)
    return tuple(chunks)


def tiling(spec: PyramidSpec, height: int, width: int, tile: int | None, margin: int = TILE_MARGIN):
    """Tile sizes along each axis, the margin in use, and the pyramid a tile can hold.

    Returns
    -------
    rows, cols : tuple of int
    margin : int
        0 when the frame is one tile.
    spec : PyramidSpec
        ``spec`` with as many levels as a tile with its margins allows (at most the frame's).
    """
    rows, cols = spatial_chunks(height, tile, margin), spatial_chunks(width, tile, margin)
    if len(rows) == 1 and len(cols) == 1:
        return rows, cols, 0, spec
    extended_tile = (min(rows) + 2 * margin, min(cols) + 2 * margin)
    spec = replace(spec, levels=min(spec.n_levels((height, width)), spec.n_levels(extended_tile)))
    return rows, cols, margin, spec


def plan_motion(n_frames: int, height: int, width: int, temporal: TemporalFilter,
                reference: TemporalFilter | None = None, pyramid: PyramidSpec | None = None, *,
                time_chunk: int | None = None, tile: int | None = None, tile_margin: int = TILE_MARGIN,
                min_blocks: int = 1, block_bytes: int = BLOCK_BYTES) -> BlockPlan:
    """The block plan of motion magnification (:func:`daskmag.graph.motion.magnify_motion`).

    ``tile`` is used as given (``None`` or 0: whole frames); callers that want
    the automatic choice pass :func:`auto_tile`'s.

    Raises
    ------
    UserError
        Frames too small for a pyramid, or ``--filter ideal`` on a clip too
        long to hold in memory.
    """
    if min(height, width) < MIN_PYRAMID_SIZE:
        raise UserError(f"frames of {width}x{height} (as processed, after any --scale and --roi) are too "
                        f"small for a pyramid (need {MIN_PYRAMID_SIZE}x{MIN_PYRAMID_SIZE})")
    filters = [temporal] + ([reference] if reference is not None else [])
    before = max(f.halo_before for f in filters)
    after = max(f.halo_after for f in filters)
    rows, cols, margin, spec = tiling(pyramid or PyramidSpec(), height, width, tile or None, tile_margin)
    tile_pixels = (max(rows) + 2 * margin) * (max(cols) + 2 * margin)
    if temporal.whole_clip:
        if n_frames * tile_pixels > IDEAL_MAX_FRAME_PIXELS:
            raise UserError(f"--filter ideal needs the whole clip in memory: {n_frames} frames of "
                            f"{tile_pixels} pixels is too long; use --max-frames, --tile or another --filter")
        chunks = (n_frames,)
    else:
        chunks = plan_time_chunks(n_frames, tile_pixels, max(before, after), time_chunk=time_chunk,
                                  min_blocks=min_blocks, block_bytes=block_bytes)
    return BlockPlan(chunks, before, after, rows, cols, margin, spec)


#: Working memory of one stage-2 group of a staged plan (:func:`plan_staged`):
#: the phase increments of its frames and halos, over every coefficient.
GROUP_BYTES = 2 * 2**30
#: Most bytes of one stage-1 task's results (increments, and coefficients when kept).
STAGE1_BYTES = 256 * 2**20
#: Keep the coefficients between stages 1 and 3 when a group's fit in this many bytes.
STAGED_KEEP_BYTES = 1 * 2**30
#: Most bytes of increments one stage-2 task filters (a strip of the coefficients).
STRIP_TASK_BYTES = 128 * 2**20
#: Most bytes the staged graph holds at once, over all workers, as the plan
#: counts them: two groups and their halos, each frame with its decoded
#: samples, its increments, its phase shifts at the increments' size (and its
#: coefficients where they are kept).  The shifts are float32 (float16 ones
#: cost more CPU to convert and round to 2 grey levels), and the writer keeps
#: a few blocks in flight and holds what they share with later ones
#: (:class:`daskmag.graph.EarlyInputs`), so the count is an upper bound: 600
#: frames of 1080p peak at 5.4 GiB over all processes (docs/benchmarks.md).
STAGED_BYTES = 4 * 2**30


@dataclass(frozen=True)
class StagedPlan:
    """How the staged motion graph (each frame analysed once) cuts a clip.

    Stage 1 (analysis) and stage 3 (synthesis) work on time chunks of whole
    frames; stage 2, the temporal filter, on groups of consecutive chunks
    (long enough that the filter's halos add little), cut into strips of
    the bands (:func:`daskmag.kernels.phase.band_strips`) of at most
    :data:`STRIP_TASK_BYTES` over the group and its halos.

    Attributes
    ----------
    time_chunks : tuple of int
        Frames of each chunk (stages 1 and 3; also the output blocks).
    groups : tuple of int
        Chunks in each stage-2 group, in order.
    halo_before, halo_after : int
    coefficients : int
        N, the pyramid's coefficients per frame.
    window : int
        Frames of the longest group with its halos.
    dtype : str
        Storage of the increments and shifts, ``"float32"`` or ``"float16"``.
    keep : bool
        Stage 1 hands its coefficients to stage 3 instead of stage 3
        recomputing them.
    min_strips : int
        Strips to cut stage 2 into at least, so that a short clip keeps every
        worker busy.
    """

    time_chunks: tuple[int, ...]
    groups: tuple[int, ...]
    halo_before: int
    halo_after: int
    coefficients: int
    window: int
    dtype: str
    keep: bool
    min_strips: int = 1


def plan_staged(n_frames: int, height: int, width: int, blocks: BlockPlan, *, min_blocks: int = 1,
                time_chunk: int | None = None, group_bytes: int = GROUP_BYTES,
                frame_bytes: int | None = None, staged_bytes: int = STAGED_BYTES) -> StagedPlan | None:
    """The staged plan for whole frames, or None where its memory would not stay bounded.

    A group holds ``HALOS_PER_BLOCK`` halos' worth of frames where memory
    allows (float32 increments, else float16): its window within
    ``group_bytes``, and two groups with their halos, each frame with its
    decoded samples (``frame_bytes``, default 8-bit RGB), increments and
    phase shifts, within ``staged_bytes``.  It holds at least one halo, else
    the clip is left to the fused kernel's tiles (None): the filter's cost
    grows with ``(group + halos) / group``, but each frame is still analysed
    once, where the fused kernel analyses the halo frames again for each
    block and a tile's margins again for each tile.  Chunks hold at most
    :data:`STAGE1_BYTES` of stage-1 results and split a short clip into at
    least ``min_blocks``.
    """
    from .kernels.phase import coefficient_count

    before, after = blocks.halo_before, blocks.halo_after
    halos = before + after
    least = min(max(before, after, 8), n_frames)
    # every pyramid kind has at least 3 coefficients per pixel: frames too
    # large are turned away before building their filters
    if group_bytes // (3 * height * width * 2) - halos < least:
        return None
    if frame_bytes is None:
        frame_bytes = height * width * 3
    total = coefficient_count((height, width), blocks.pyramid)
    wanted = min(max(HALOS_PER_BLOCK * max(before, after), MIN_BLOCK_FRAMES), n_frames)

    def fitting(size: int, kept: int = 0) -> int:
        """The longest group within both budgets, with increments and shifts of
        ``size`` bytes (and ``kept`` bytes of coefficients) per coefficient."""
        per_frame = (2 * size + kept) * total + frame_bytes
        in_flight = (staged_bytes // per_frame - halos) // 2
        if n_frames * per_frame <= staged_bytes:  # a clip that fits whole: one group, no halos
            in_flight = n_frames
        return min(wanted, group_bytes // (total * size) - halos, in_flight)

    for dtype, size in (("float32", 4), ("float16", 2)):
        group = fitting(size)
        if group >= wanted:
            break
    if group < least:
        return None
    # Stage 1 hands the coefficients to stage 3 where they fit: a group half
    # as long costs the filter less than a second analysis of every frame
    kept_group = min(group, STAGED_KEEP_BYTES // (8 * total), fitting(size, kept=8))
    keep = kept_group >= max(least, group // 2)
    if keep:
        group = kept_group
    per_frame = total * (size + (8 if keep else 0))
    chunk = time_chunk or max(8, min(group, STAGE1_BYTES // per_frame))
    chunk = max(1, min(chunk, math.ceil(n_frames / max(1, min_blocks))))
    time_chunks = _split(n_frames, chunk, chunk // 2)  # a sliver joins the chunk before it
    per_group = max(1, round(group / chunk))
    groups = _split(len(time_chunks), per_group)
    window = max(sum(time_chunks[i : i + per_group]) for i in range(0, len(time_chunks), per_group)) + halos
    return StagedPlan(tuple(time_chunks), tuple(groups), before, after, total, window, dtype, keep,
                      max(1, math.ceil(min_blocks / len(groups))))


def follow_chunks(staged: StagedPlan, chunks) -> StagedPlan:
    """``staged`` on the input's own time chunks where they nest in its plan.

    Where no input chunk is longer than the plan's regular chunk, nor on
    average under half as long, stages 1 and 3 take the input's chunks as
    they are (the read tasks', which start on key frames: :func:`daskmag.io.base.read_bounds`),
    and the groups are re-formed of whole chunks, each no longer than the
    plan's regular group, so memory stays within the plan's budget.  A
    read task then serves one chunk only: cut across chunks, it was decoded
    again for each of them once released (1.3-1.9x the frames decoded).
    Otherwise ``staged`` is returned unchanged (the input is rechunked).
    """
    chunks = tuple(int(c) for c in chunks)
    planned = staged.time_chunks
    regular = planned[0]  # the last chunk may hold a sliver besides
    if chunks == planned or max(chunks) > regular or 2 * sum(chunks) < len(chunks) * regular:
        return staged
    longest = sum(planned[: staged.groups[0]])  # a regular group's frames
    groups, sizes = [], []
    for chunk in chunks:
        if not sizes or sizes[-1] + chunk > longest:
            groups.append(0)
            sizes.append(0)
        groups[-1] += 1
        sizes[-1] += chunk
    return replace(staged, time_chunks=chunks, groups=tuple(groups),
                   window=max(sizes) + staged.halo_before + staged.halo_after)


def plan_colour(n_frames: int, height: int, width: int, temporal: TemporalFilter, level: int, *,
                time_chunk: int | None = None, min_blocks: int = 1, block_bytes: int = BLOCK_BYTES) -> BlockPlan:
    """The block plan of colour magnification (:func:`daskmag.graph.colour.magnify_colour`).

    Raises
    ------
    UserError
        Frames too small for the pyramid level.
    """
    if min(height, width) <= 2**level:
        raise UserError(
            f"frames of {width}x{height} are too small for pyramid level {level} "
            f"(need more than {2**level} pixels each way)"
        )
    halo = max(temporal.halo_before, temporal.halo_after)
    chunks = plan_time_chunks(n_frames, height * width, halo, time_chunk=time_chunk,
                              min_blocks=min_blocks, block_bytes=block_bytes)
    return BlockPlan(chunks, halo, halo, (height,), (width,))


@dataclass(frozen=True)
class JobPlan:
    """What :func:`plan_job` decided, before any frame is read.

    Attributes
    ----------
    first, stop : int
        Input frames ``[first, stop)`` to process.
    height, width : int
        Frame size after ``--scale``.
    roi : (x, y, w, h) or None
        The region in pixels of the scaled frame.
    band : Band
        The band with its recording rate resolved.
    blocks : BlockPlan
        The plan of the frames the kernels see (the region's box with
        ``--roi``).
    execution : Execution, optional
        The execution the blocks were planned with: on a GPU, with the time
        chunk and tile of :func:`daskmag.gpu.device_execution` filled in.
    """

    first: int
    stop: int
    height: int
    width: int
    roi: tuple[int, int, int, int] | None
    band: Band
    blocks: BlockPlan
    execution: Execution | None = None

    @property
    def n_frames(self) -> int:
        return self.stop - self.first


def region_box(roi, height: int, width: int, margin: int = REGION_MARGIN) -> tuple[slice, slice]:
    """Rows and columns of a region ``(x, y, w, h)`` plus ``margin``, within the frame."""
    x, y, w, h = roi
    return (slice(max(y - margin, 0), min(y + h + margin, height)),
            slice(max(x - margin, 0), min(x + w + margin, width)))


def plan_job(info, settings: MotionSettings | ColourSettings, band: Band, selection: Selection = Selection(),
             execution: Execution = Execution(), *, min_blocks: int = 1,
             block_bytes: int = BLOCK_BYTES, device_free: int | None = None,
             blocks_in_flight: int = 8) -> JobPlan:
    """Every check that needs the input's size, and the block plan: run before any work.

    Parameters
    ----------
    info : daskmag.io.VideoInfo
        The probed input.
    settings, band, selection, execution
        The job's settings (:mod:`daskmag.settings`).
    min_blocks : int
        Split short clips into at least this many blocks (the cluster's
        threads; on GPUs, the number of GPUs).
    device_free, blocks_in_flight : int, optional
        With ``execution.device == "cuda"``: the smallest GPU's free memory
        in bytes and the blocks the writer keeps in flight, for the plan
        shaped for the device (:func:`daskmag.gpu.device_execution`: whole
        frames, hundreds of frames per block).

    Raises
    ------
    UserError
        A range outside the clip, a region outside the frame, a band above
        Nyquist, frames too small for the pyramid, and the like.
    """
    first, stop = selection.frames(info.n_frames, info.fps)
    height, width = check_scale(selection.scale, info.height, info.width)
    roi = None
    box_height, box_width = height, width
    if selection.roi is not None:
        roi = scale_roi(check_roi(selection.roi, info.height, info.width), selection.scale)
        rows, cols = region_box(roi, height, width)  # what the kernels see
        box_height, box_width = rows.stop - rows.start, cols.stop - cols.start
    band = band.at_rate(info.fps)
    n_frames = stop - first
    if n_frames < 2:
        raise UserError(f"{info.path}: {n_frames} frame to process; magnification needs at "
                        f"least 2 (a single frame has no motion)")
    band.check_duration(n_frames)
    if execution.device == "cuda":  # a plan shaped for the device: whole frames, long blocks
        from .gpu import device_execution

        execution = device_execution(execution, settings, band, n_frames, box_height, box_width, device_free,
                                     n_devices=min_blocks, blocks_in_flight=blocks_in_flight)
    if isinstance(settings, ColourSettings):
        temporal = settings.temporal_filter(band)
        blocks = plan_colour(n_frames, box_height, box_width, temporal, settings.level,
                             time_chunk=execution.time_chunk, min_blocks=min_blocks, block_bytes=block_bytes)
    else:
        temporal, reference = settings.temporal_filters(band)
        blocks = plan_motion(n_frames, box_height, box_width, temporal, reference, settings.pyramid,
                             time_chunk=execution.time_chunk,
                             tile=auto_tile(box_height, box_width, execution.tile), min_blocks=min_blocks,
                             block_bytes=block_bytes)
    return JobPlan(first, stop, height, width, roi, band, blocks, execution)
