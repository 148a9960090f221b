"""Lazy, Dask-parallel motion magnification: argument checks, overlap depth, graph.

The graph is one task per time block: the block's frames plus the temporal
filter's halo (``taps // 2`` frames on each side for the default FIR; see
:class:`daskmag.kernels.temporal.TemporalFilter`) (``dask.array.overlap``) go through the
fused kernel :func:`daskmag.kernels.phase.magnify_block` (frames -> bands -> phase ->
filter -> collapse -> frames), which returns only the block's own frames.
No band is ever held whole and nothing is rechunked into whole-length time
columns, so memory depends on the block size, never on the video's length.
"""

from __future__ import annotations

import dask.array as da
import numpy as np

from ..errors import UserError
from ..kernels.colourspace import luma
from ..kernels.phase import magnify_block
from ..kernels.pyramid import PyramidSpec, centred_spectrum, pyramid_filters, sampled_band, sampling_step
from ..plan import BLOCK_BYTES, TILE_MARGIN, plan_motion, tiling
from ..settings import Band, MotionSettings
from . import as_frames, block_position, register_blocks_in_flight


def magnify_motion(video, alpha: float = 10.0, low: float | None = None, high: float | None = None, fps=None, *,
                   taps: int | None = None, pyramid: PyramidSpec | None = None, time_chunk: int | None = None,
                   min_blocks: int = 1, block_bytes: int = BLOCK_BYTES, tile: int | None = None,
                   tile_margin: int = TILE_MARGIN, filter: str = "fir", order: int = 2,
                   causal: bool = False, sigma: float = 0.0, attenuate_other: bool = False,
                   settings: MotionSettings | None = None, device: str = "cpu",
                   resources: dict | None = None, staged: bool | None = None) -> da.Array:
    """Phase-based motion magnification, lazily.

    Parameters
    ----------
    video : Video or array-like (T, H, W, C) uint8 or uint16
        From :func:`daskmag.open_video`, or any NumPy/Dask array of RGB
        (``C = 3``) or mono (``C = 1``) frames, 8 or 16-bit.
    alpha : float
        Magnification: motion in the band becomes ``1 + alpha`` times as large
        (``alpha < 0`` attenuates it).
    low, high : float
        Temporal pass band in Hz.
    fps : float, optional
        The rate the frames were *filmed* at (default: the video's own).
    taps : int, optional
        Length of the zero-phase FIR band-pass (default from the band, see
        :func:`daskmag.kernels.temporal.default_taps`); the temporal halo is ``taps // 2``.
        With ``filter="window"``: the window, in frames (default 30).
    pyramid : PyramidSpec, optional
        Default: octave bandwidth, 4 orientations, as many levels as fit.
    time_chunk : int, optional
        Frames per block (default: from ``block_bytes``).
    min_blocks : int
        Split short videos into at least this many blocks (for parallelism).
    tile : int, optional
        Process frames larger than ``tile`` pixels (either side) in square
        spatial tiles of this size (0: whole frames; default: see ``staged``), each with a ``tile_margin`` pixel halo
        taken periodically across the frame's edges as the whole-frame FFT
        does, so 4K and 8K footage runs in bounded worker memory.  The
        pyramid has as many levels as a tile with its margins allows (at most
        the whole frame's).  Tiled and whole-frame results agree to one grey
        level (tested).
    tile_margin : int
        Spatial halo of each tile, in pixels.
    filter : {"fir", "ideal", "butter", "diff-iir", "window"}
        Temporal filter (:func:`daskmag.kernels.temporal.make_filter`).  The time
        blocks' halos come from it; ``ideal`` puts the whole clip in one
        block (at most :data:`daskmag.plan.IDEAL_MAX_FRAME_PIXELS` frames x pixels).
    order : int
        Order of ``filter="butter"``.
    causal : bool
        ``filter="butter"`` forwards only (streams over any length), else
        forward-backward (zero-phase).
    sigma : float
        Amplitude-weighted Gaussian smoothing of every band's phase shift,
        in pixels of the frame (MIT's sigma); reduces magnified noise.
    attenuate_other : bool
        Remove motion outside the band (MIT's attenuateOtherFreq) above half
        the band's low edge (:func:`daskmag.kernels.temporal.reference_highpass`).
    settings : MotionSettings, optional
        All of ``alpha``, ``filter``, ``taps``, ``order``, ``causal``,
        ``pyramid``, ``sigma`` and ``attenuate_other`` at once (then those
        keywords are ignored).
    device : {"cpu", "cuda"}
        Where the kernel runs: ``"cuda"`` moves each block to the worker's
        GPU and back around it (:class:`daskmag.gpu.DeviceKernel`); the
        array stays NumPy in the graph.
    resources : dict, optional
        Dask resources each kernel task needs (default ``{"GPU": 1}`` with
        ``device="cuda"``, none on the CPU): the kernel layer is annotated
        with them (:func:`daskmag.gpu.kernel_annotation`).
    staged : bool, optional
        Analyse each frame once, in three stages of tasks (analysis, the
        temporal filter in strips, synthesis; :func:`staged_plan`), instead
        of one fused task per block that also analyses its neighbours' halo
        frames.  Default: staged where it applies (whole frames on the CPU,
        a time-domain filter, more than one block, no ``resources``, and a
        group of frames that fits :data:`daskmag.plan.GROUP_BYTES`), else fused, in tiles
        for frames over :data:`daskmag.plan.AUTO_TILE_PIXELS` pixels unless
        ``tile`` says otherwise.  ``False``: always fused.  The two agree
        within one grey level (tested).

    Returns
    -------
    dask.array.Array
        Same shape, dtype and frames as the input; nothing is computed yet.

    Raises
    ------
    UserError
        Unusable settings, a band above Nyquist, frames smaller than 16x16,
        or ``filter="ideal"`` on a clip too long for memory.

    Notes
    -----
    At the clip's ends the phase is continued by linear prediction
    (:func:`daskmag.kernels.temporal.extend_by_prediction`), so the first and last
    frames are magnified like the others and every input frame is output.
    """
    frames, fps = as_frames(video, fps)
    if settings is None:
        settings = MotionSettings(alpha=alpha, filter=filter, taps=taps, order=order, causal=causal,
                                  pyramid=pyramid or PyramidSpec(), sigma=sigma, attenuate_other=attenuate_other)
    band = Band(low, high, fps).at_rate(fps)
    band.check_duration(frames.shape[0])
    temporal, reference = settings.temporal_filters(band)
    n_frames, height, width, _ = frames.shape
    plan = plan_motion(n_frames, height, width, temporal, reference, settings.pyramid, time_chunk=time_chunk,
                       tile=tile, tile_margin=tile_margin, min_blocks=min_blocks, block_bytes=block_bytes)
    if staged is not False and resources is None:  # kernels placed by resources stay fused
        staged = staged_plan(frames.shape, plan, temporal, device, tile, min_blocks, time_chunk,
                             frames.dtype.itemsize)
        if staged is not None:
            return _magnify_staged(frames, staged, plan.pyramid, temporal, reference, settings)
    if tile is None:
        from ..plan import auto_tile

        tile = auto_tile(height, width)
        if tile:
            plan = plan_motion(n_frames, height, width, temporal, reference, settings.pyramid,
                               time_chunk=time_chunk, tile=tile, tile_margin=tile_margin, min_blocks=min_blocks,
                               block_bytes=block_bytes)
    before, after, rows, cols, margin = plan.halo_before, plan.halo_after, plan.rows, plan.cols, plan.margin
    frames = frames.rechunk((plan.time_chunks, rows, cols, frames.shape[-1]))
    single = plan.n_blocks == 1
    depth = {0: (0, 0) if single else (before, after), 1: margin if len(rows) > 1 else 0,
             2: margin if len(cols) > 1 else 0, 3: 0}
    boundary = {0: "none", 1: "periodic", 2: "periodic", 3: "none"}
    if before != after and not single:
        # dask's asymmetric overlap needs boundary "none" on every axis: add the spatial margins apart
        extended = da.overlap.overlap(frames, depth={0: depth[0], 1: 0, 2: 0, 3: 0}, boundary="none")
        extended = da.overlap.overlap(extended, depth={0: 0, 1: depth[1], 2: depth[2], 3: 0},
                                      boundary=boundary)
    else:
        depth[0] = depth[0][0]
        extended = da.overlap.overlap(frames, depth=depth, boundary=boundary)
    from ..gpu import KERNEL_RESOURCES, kernel_annotation, on_device

    if resources is None and device == "cuda":
        resources = KERNEL_RESOURCES
    with kernel_annotation(resources):  # kernel tasks only: decoding and encoding stay anywhere
        return extended.map_blocks(
            on_device(_magnify_chunk, device),
            temporal=temporal,
            alpha=settings.alpha,
            spec=plan.pyramid,
            halos=(before, after),
            margins=(depth[1], depth[2]),
            sigma=settings.sigma,
            reference=reference,
            chunks=frames.chunks,
            dtype=frames.dtype,  # mono stays mono, 16-bit stays 16-bit
            meta=np.empty((0, 0, 0, 0), dtype=frames.dtype),
            token="magnify-motion",
        )


def _magnify_chunk(block, temporal, alpha, spec, halos, margins=(0, 0), sigma=0.0, reference=None,
                   block_info=None):
    start, stop, pad_before, pad_after = block_position(block_info, *halos, block.shape[0])
    if spec.kind == "riesz":
        from ..kernels.riesz import SKIP_OCTAVES, magnify_block_riesz

        levels = None if spec.levels is None else max(1, spec.levels - SKIP_OCTAVES)
        out = magnify_block_riesz(block, temporal, alpha, start, stop, pad_before, pad_after,
                                  sigma=sigma or None, reference=reference, levels=levels)  # 0: its default
    else:
        out = magnify_block(block, temporal, alpha, spec, start, stop, pad_before=pad_before,
                            pad_after=pad_after, sigma=sigma, reference=reference)
    dy, dx = margins
    return out[:, dy : out.shape[1] - dy, dx : out.shape[2] - dx]


def staged_chunk_frames(shape, itemsize: int, settings: MotionSettings, band: Band, *,
                        time_chunk: int | None = None, tile: int | None = None, min_blocks: int = 1,
                        device: str = "cpu") -> int | None:
    """The time chunk :func:`magnify_motion`'s staged graph plans for frames of ``shape``, or None.

    For the reader: read tasks no longer than this, starting on key frames,
    become the staged graph's chunks (:func:`daskmag.plan.follow_chunks`),
    so that no read task serves two chunks.

    Parameters
    ----------
    shape : tuple (T, H, W, C)
        The frames as :func:`magnify_motion` gets them (after any scale and region).
    itemsize : int
        Bytes per sample (1 or 2).
    settings, band
        The job's; ``band`` at its recording rate.
    """
    temporal, reference = settings.temporal_filters(band)
    n_frames, height, width = shape[:3]
    plan = plan_motion(n_frames, height, width, temporal, reference, settings.pyramid, time_chunk=time_chunk,
                       tile=tile, min_blocks=min_blocks)
    staged = staged_plan(tuple(shape), plan, temporal, device, tile, min_blocks, time_chunk, itemsize)
    return None if staged is None else staged.time_chunks[0]  # the regular chunk (the last may be longer)


def staged_plan(frames_shape, plan, temporal, device: str = "cpu", tile: int | None = None,
                min_blocks: int = 1, time_chunk: int | None = None, itemsize: int = 1):
    """The :class:`daskmag.plan.StagedPlan` :func:`magnify_motion` uses, or None for the fused kernel.

    The fused kernel (one task per block, the halo frames analysed by both
    neighbours) stays for ``--filter ideal`` (one block), the Riesz pyramid
    (its own kernel), tiles asked for, GPU workers (whole blocks suit a
    device best), and frames too large for a stage-2 group in memory.
    """
    if temporal.whole_clip or plan.pyramid.kind == "riesz" or tile or device != "cpu":
        return None
    from ..plan import plan_staged

    staged = plan_staged(*frames_shape[:3], plan, min_blocks=min_blocks, time_chunk=time_chunk,
                         frame_bytes=int(np.prod(frames_shape[1:])) * itemsize)
    if staged is None or len(staged.time_chunks) < 2:
        return None  # one block: nothing to share
    return staged


def _magnify_staged(frames, staged, spec, temporal, reference, settings):
    """The graph of :func:`magnify_motion` in three stages, each frame analysed once.

    1. per time chunk: every band's phase increments over its frames (and
       the change from the previous chunk's last frame); also the
       coefficients where they fit in memory (:class:`daskmag.plan.StagedPlan`);
    2. per group of chunks and strip of the bands
       (:func:`daskmag.kernels.phase.band_strips`): the temporal filter over
       the group's increments and its halos, taken from the neighbouring
       chunks or predicted at the clip's ends, times alpha;
    3. per chunk: the frames with every band's phase shifted
       (:func:`daskmag.kernels.phase.apply_phase_shifts`).

    No frame is analysed twice for its neighbours' halos: only increments
    travel between tasks, and memory depends on the group, never on the
    clip's length.
    """
    import bisect
    import itertools
    import operator

    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph

    from ..kernels.phase import band_strips
    from ..plan import STRIP_TASK_BYTES, follow_chunks

    n_frames, height, width, channels = frames.shape
    staged = follow_chunks(staged, frames.chunks[0])  # the read tasks' chunks, where they nest in the plan's
    chunks = staged.time_chunks
    frames = frames.rechunk((chunks, height, width, channels))
    starts = [0, *itertools.accumulate(chunks)]
    strips = band_strips((height, width), spec, staged.window * np.dtype(staged.dtype).itemsize,
                         STRIP_TASK_BYTES, staged.min_strips)

    token = tokenize(frames.name, staged, spec, temporal, reference, settings.alpha, settings.sigma)
    analysed, previous = "analyse-chunk-" + token, "previous-frame-" + token
    inc_name, coef_name = "phase-increments-" + token, "coefficients-" + token
    shift_name, rows_name, out_name = "phase-shifts-" + token, "shift-rows-" + token, "magnify-motion-" + token
    stage1, pieces, kept, stage2, rows, stage3 = {}, {}, {}, {}, {}, {}
    for k in range(len(chunks)):
        if k:
            stage1[(previous, k)] = (_last_frame, (frames.name, k - 1, 0, 0, 0))
        stage1[(analysed, k)] = (_analyse_task, (frames.name, k, 0, 0, 0), (previous, k) if k else None, spec,
                                 staged.dtype, staged.keep)
        for s, strip in enumerate(strips):
            pieces[(inc_name, k, s)] = (_segments_of, (analysed, k), strip)
        kept[(coef_name, k)] = (operator.getitem, (analysed, k), 1)
    # A group's filter reaches past its chunks by the halos: a block's graph
    # runs the analysis of chunks of other blocks, before and after its own
    # (and reads the frame before each), and the group's filter serves each
    # of its blocks.  The writer holds those results from the first block
    # that uses them until the last one is submitted (``holders``); then any
    # number of blocks in flight will do.  The window registered below is for
    # a writer that cannot hold them.
    holders = {("chunk", k): set() for k in range(len(chunks))}
    first_chunk = 0
    for g, count in enumerate(staged.groups):
        group = range(first_chunk, first_chunk + count)
        start, stop = starts[group.start], starts[group.stop]
        # the chunks holding the group's frames and its halos (within the clip),
        # found by bisection: a scan of every chunk per group grew with the square
        # of the clip's length (18,000 chunks and 6,000 groups in an hour of 1080p)
        reach = range(max(0, bisect.bisect_right(starts, start - staged.halo_before) - 1),
                      min(bisect.bisect_left(starts, stop + staged.halo_after), len(chunks)))
        holders[("group", g)] = set(group)
        for block in group:
            for k in {*reach, block}:
                holders[("chunk", k)].add(block)
                if k:
                    holders[("chunk", k - 1)].add(block)  # the frame before the chunk
        for s in range(len(strips)):
            stage2[(shift_name, g, s)] = (_shift_task, [(inc_name, k, s) for k in reach], starts[reach[0]],
                                          start, stop, n_frames, temporal, settings.alpha, reference,
                                          (staged.halo_before, staged.halo_after))
            for k in group:
                rows[(rows_name, k, s)] = (_rows_of, (shift_name, g, s), starts[k] - start, starts[k + 1] - start)
        first_chunk += count
    register_blocks_in_flight(out_name, max(staged.groups) + 1)
    for k in range(len(chunks)):
        stage3[(out_name, k, 0, 0, 0)] = (_apply_task, (frames.name, k, 0, 0, 0),
                                          [(rows_name, k, s) for s in range(len(strips))], strips,
                                          (coef_name, k) if staged.keep else None, spec, settings.sigma)
    # Stage 1 gives an (increments, coefficients) pair per chunk; stage 2
    # takes the segments of its strip from each chunk as they are, not a
    # concatenated copy of the whole window.
    graph = HighLevelGraph.from_collections(analysed, stage1, dependencies=[frames])
    layers, dependencies = dict(graph.layers), dict(graph.dependencies)
    layers[inc_name], dependencies[inc_name] = pieces, {analysed}
    layers[coef_name], dependencies[coef_name] = kept, {analysed}
    layers[shift_name], dependencies[shift_name] = stage2, {inc_name}
    layers[rows_name], dependencies[rows_name] = rows, {shift_name}
    layers[out_name], dependencies[out_name] = stage3, {rows_name, coef_name, *frames.__dask_layers__()}
    graph = HighLevelGraph(layers, dependencies)
    from . import EarlyInputs, register_early_inputs

    results = {("chunk", k): ((analysed, k), (frames.name, k, 0, 0, 0)) for k in range(len(chunks))}
    results.update({("group", g): tuple((shift_name, g, s) for s in range(len(strips)))
                    for g in range(len(staged.groups))})
    register_early_inputs(out_name, EarlyInputs(tuple(chunks), {k: tuple(sorted(v)) for k, v in holders.items()},
                                                results))
    return da.Array(graph, out_name, chunks=frames.chunks, dtype=frames.dtype,
                    meta=np.empty((0, 0, 0, 0), dtype=frames.dtype))


def _last_frame(block):
    return block[-1]


def _analyse_task(block, previous, spec, dtype, keep):
    from ..kernels.phase import analyse_chunk

    return analyse_chunk(block, spec, previous, dtype, keep)


def _segments_of(result, strip):
    return [result[0][j][:, r0:r1] for j, r0, r1 in strip]


def _shift_task(pieces, first, start, stop, n_frames, temporal, alpha, reference, halos):
    from ..kernels.phase import shift_strip

    # pieces: per chunk, the strip's segments; filtered segment by segment
    return [shift_strip([chunk[i] for chunk in pieces], first, start, stop, n_frames, temporal, alpha, reference,
                        halos) for i in range(len(pieces[0]))]


def _rows_of(shifts, start, stop):
    return [segment[start:stop] for segment in shifts]


def _apply_task(rgb, shifts, strips, coefficients, spec, sigma):
    from ..kernels.phase import apply_phase_shifts

    per_band = {}
    for strip, segments in zip(strips, shifts):
        for (j, _, _), segment in zip(strip, segments):
            per_band.setdefault(j, []).append(segment)
    # each band's rows, in order, as they come from the strips: joined a batch of frames at a time
    bands = [parts[0] if len(parts) == 1 else parts for _, parts in sorted(per_band.items())]
    return apply_phase_shifts(rgb, bands, spec, coefficients, sigma)


def pyramid_bands(video, pyramid: PyramidSpec | None = None, *, tile: int | None = None,
                  tile_margin: int = TILE_MARGIN):
    """The complex steerable pyramid of every frame's luminance, as lazy Dask arrays.

    Parameters
    ----------
    video : Video or array-like (T, H, W, 3) uint8
    pyramid : PyramidSpec, optional
    tile, tile_margin : int, optional
        Compute the bands tile by tile, as :func:`magnify_motion` does; the
        arrays are then chunked by these tiles (each tile's margin must be a
        multiple of the coarsest band's sampling step).

    Returns
    -------
    list of (BandFilter, dask.array.Array)
        One entry per oriented band, fine to coarse.  Each array is complex64
        (T, ceil(H / s), ceil(W / s)): the band sampled every ``s`` pixels
        (:func:`daskmag.kernels.pyramid.sampling_step`; ``2**level`` in the octave
        pyramid, as pyrtools), chunked like the video along time and by tiles
        in space.  Nothing is computed until asked.
    """
    frames, _ = as_frames(video, 1)
    height, width = frames.shape[1:3]
    if pyramid is not None and pyramid.kind == "riesz":
        raise UserError("pyramid_bands gives the bands of a steerable pyramid; the Riesz pyramid has none")
    rows, cols, margin, spec = tiling(pyramid or PyramidSpec(), height, width, tile, tile_margin)
    filters = pyramid_filters((height, width), spec)
    frames = frames.rechunk({1: rows, 2: cols, 3: -1})
    depth = {0: 0, 1: margin if len(rows) > 1 else 0, 2: margin if len(cols) > 1 else 0, 3: 0}
    extended = da.overlap.overlap(frames, depth=depth, boundary={1: "periodic", 2: "periodic"})
    out = []
    for index, band in enumerate(filters.bands):
        step = sampling_step(band, (height, width))
        if margin and any(size % step for size in rows[:-1] + cols[:-1] + (margin,)):
            raise UserError(f"tiles and margin must be multiples of {step} pixels for level {band.level}")
        chunks = (frames.chunks[0], tuple(-(-r // step) for r in rows), tuple(-(-c // step) for c in cols))
        out.append((band, extended.map_blocks(
            _tile_band, spec=spec, index=index, step=step, margins=(depth[1], depth[2]),
            chunks=chunks, drop_axis=3, dtype=np.complex64,
            meta=np.empty((0, 0, 0), dtype=np.complex64), token="pyramid-band",
        )))
    return out


def _tile_band(block, spec, index, step, margins):
    height, width = block.shape[1:3]
    band = pyramid_filters((height, width), spec).bands[index]
    coefficients = sampled_band(centred_spectrum(luma(block)), band, step)
    dy, dx = margins[0] // step, margins[1] // step
    return coefficients[:, dy : coefficients.shape[1] - dy, dx : coefficients.shape[2] - dx]
