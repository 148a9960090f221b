"""Lazy, Dask-parallel motion magnification: argument checks, overlap depth, graph.

The graph is one task per time block: the block's frames plus the temporal
filter's halo (``taps // 2`` frames on each side for the default FIR; see
:class:`daskmag.temporal.TemporalFilter`) (``dask.array.overlap``) go through the
fused kernel :func:`daskmag.phase.magnify_block` (frames -> bands -> phase ->
filter -> collapse -> frames), which returns only the block's own frames.
No band is ever held whole and nothing is rechunked into whole-length time
columns, so memory depends on the block size, never on the video's length.
"""

from __future__ import annotations

import math
from dataclasses import replace

import dask.array as da
import numpy as np

from .color import luma
from .errors import UserError
from .io import Video
from .phase import magnify_block
from .pyramid import PyramidSpec, centred_spectrum, pyramid_filters, sampled_band, sampling_step
from .temporal import FILTER_KINDS, make_filter, reference_highpass

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


def check_band(alpha: float, low: float, high: float, fps: float, taps: int | None = None):
    """Raise :class:`UserError` with a one-line reason if the settings are unusable."""
    if alpha is None or not math.isfinite(alpha):
        raise UserError(f"alpha must be a finite number, got {alpha}")
    if not (math.isfinite(low) and math.isfinite(high)):
        raise UserError("the band edges must be finite numbers")
    if low <= 0:
        raise UserError(f"the low frequency must be above 0 Hz, got {low:g}")
    if low >= high:
        raise UserError(f"the low frequency ({low:g} Hz) must be below the high one ({high:g} Hz)")
    if not fps or not math.isfinite(fps) or fps <= 0:
        raise UserError(f"the frame rate must be positive, got {fps}")
    nyquist = fps / 2.0
    if high >= nyquist:
        raise UserError(
            f"the band {low:g}-{high:g} Hz reaches the Nyquist frequency ({nyquist:g} Hz) of "
            f"{fps:g} fps; if the footage was filmed faster than it is stored, give the real "
            f"rate with --fps (e.g. --fps 600)"
        )
    if taps is not None and taps < 3:
        raise UserError(f"the temporal filter needs at least 3 taps, got {taps}")


def check_controls(filter: str = "fir", order: int = 2, causal: bool = False, sigma: float = 0.0,
                   taps: int | None = None):
    """Raise :class:`UserError` with a one-line reason if the filter or smoothing settings are unusable."""
    if filter not in FILTER_KINDS:
        raise UserError(f"unknown temporal filter {filter!r}: use one of {', '.join(FILTER_KINDS)}")
    if sigma is None or not math.isfinite(sigma) or sigma < 0:
        raise UserError(f"sigma must be a number of pixels >= 0, got {sigma}")
    if filter == "butter" and not 1 <= order <= 10:
        raise UserError(f"the Butterworth order must be 1 to 10, got {order}")
    if causal and filter != "butter":
        raise UserError("--causal applies to --filter butter (diff-iir is always causal, "
                        "fir/ideal/window are zero-phase)")
    if taps is not None and filter in ("ideal", "butter", "diff-iir"):
        raise UserError(f"--taps/-ws sets the length of --filter fir or window, not {filter}")


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
    chunks = [time_chunk] * (n_frames // time_chunk)
    remainder = n_frames - sum(chunks)
    if remainder:
        if chunks and remainder < halo:
            chunks[-1] += remainder
        else:
            chunks.append(remainder)
    return tuple(chunks)


def _as_frames(video, fps):
    if isinstance(video, Video):
        return video.frames, (fps if fps is not None else video.fps)
    if not isinstance(video, da.Array):
        video = da.from_array(np.asarray(video))
    if fps is None:
        raise UserError("give fps for a bare array")
    return video, fps


def magnify_motion(video, alpha: float, low: float, high: float, fps=None, *, taps: int | None = None,
                   pyramid: PyramidSpec | None = None, time_chunk: int | None = None,
                   min_blocks: int = 1, block_bytes: int = BLOCK_BYTES, tile: int | None = None,
                   tile_margin: int = TILE_MARGIN, filter: str = "fir", order: int = 2,
                   causal: bool = False, sigma: float = 0.0, attenuate_other: bool = False) -> da.Array:
    """Phase-based motion magnification, lazily.

    Parameters
    ----------
    video : Video or array-like (T, H, W, 3) uint8
        From :func:`daskmag.open_video`, or any NumPy/Dask array of RGB frames.
    alpha : float
        Magnification: motion in the band becomes ``1 + alpha`` times as large
        (``alpha < 0`` attenuates it).
    low, high : float
        Temporal pass band in Hz.
    fps : float, optional
        The rate the frames were *filmed* at (default: the video's own).
    taps : int, optional
        Length of the zero-phase FIR band-pass (default from the band, see
        :func:`daskmag.temporal.default_taps`); the temporal halo is ``taps // 2``.
        With ``filter="window"``: the window, in frames (default 30).
    pyramid : PyramidSpec, optional
        Default: octave bandwidth, 4 orientations, as many levels as fit.
    time_chunk : int, optional
        Frames per block (default: from ``block_bytes``).
    min_blocks : int
        Split short videos into at least this many blocks (for parallelism).
    tile : int, optional
        Process frames larger than ``tile`` pixels (either side) in square
        spatial tiles of this size, each with a ``tile_margin`` pixel halo
        taken periodically across the frame's edges as the whole-frame FFT
        does, so 4K and 8K footage runs in bounded worker memory.  The
        pyramid has as many levels as a tile with its margins allows (at most
        the whole frame's).  Tiled and whole-frame results agree to one grey
        level (tested).
    tile_margin : int
        Spatial halo of each tile, in pixels.
    filter : {"fir", "ideal", "butter", "diff-iir", "window"}
        Temporal filter (:func:`daskmag.temporal.make_filter`).  The time
        blocks' halos come from it; ``ideal`` puts the whole clip in one
        block (at most :data:`IDEAL_MAX_FRAME_PIXELS` frames x pixels).
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
        the band's low edge (:func:`daskmag.temporal.reference_highpass`).

    Returns
    -------
    dask.array.Array
        (T, H, W, 3) uint8, same frames as the input; nothing is computed yet.

    Notes
    -----
    At the clip's ends the phase is continued by linear prediction
    (:func:`daskmag.temporal.extend_by_prediction`), so the first and last
    frames are magnified like the others and every input frame is output.
    """
    frames, fps = _as_frames(video, fps)
    fps = float(fps)
    check_band(alpha, low, high, fps, taps)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise UserError(f"expected (frames, height, width, 3) RGB video, got shape {frames.shape}")
    if frames.dtype != np.uint8:
        raise UserError(f"expected uint8 frames, got {frames.dtype}")
    spec = pyramid or PyramidSpec()
    n_frames, height, width, _ = frames.shape
    if min(height, width) < 16:
        raise UserError(f"frames of {width}x{height} are too small for a pyramid (need 16x16)")
    check_controls(filter, order, causal, sigma, taps)
    temporal = make_filter(filter, low, high, fps, taps=taps, order=order, causal=causal)
    reference = reference_highpass(low, fps) if attenuate_other else None
    filters = [temporal] + ([reference] if reference is not None else [])
    before = max(f.halo_before for f in filters)
    after = max(f.halo_after for f in filters)
    rows, cols, margin, spec = _tiling(spec, height, width, tile, tile_margin)
    tile_pixels = (max(rows) + 2 * margin) * (max(cols) + 2 * margin)
    if temporal.whole_clip:
        if n_frames * tile_pixels > IDEAL_MAX_FRAME_PIXELS:
            raise UserError(f"--filter ideal needs the whole clip in memory: {n_frames} frames of "
                            f"{tile_pixels} pixels is too long; use --max-frames, --tile or another --filter")
        chunks = (n_frames,)
    else:
        chunks = plan_time_chunks(n_frames, tile_pixels, max(before, after), time_chunk=time_chunk,
                                  min_blocks=min_blocks, block_bytes=block_bytes)
    frames = frames.rechunk((chunks, rows, cols, 3))
    single = len(chunks) == 1
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
    return extended.map_blocks(
        _magnify_chunk,
        temporal=temporal,
        alpha=float(alpha),
        spec=spec,
        halos=(before, after),
        margins=(depth[1], depth[2]),
        sigma=float(sigma),
        reference=reference,
        chunks=frames.chunks,
        dtype=np.uint8,
        meta=np.empty((0, 0, 0, 0), dtype=np.uint8),
        token="magnify-motion",
    )


def _magnify_chunk(block, temporal, alpha, spec, halos, margins=(0, 0), sigma=0.0, reference=None,
                   block_info=None):
    index = block_info[None]["chunk-location"][0]
    count = block_info[None]["num-chunks"][0]
    first, last = index == 0, index == count - 1
    before, after = halos
    start = 0 if first else before
    stop = block.shape[0] - (0 if last else after)
    out = magnify_block(
        block, temporal, alpha, spec, start, stop,
        pad_before=before if first else 0, pad_after=after if last else 0,
        sigma=sigma, reference=reference,
    )
    dy, dx = margins
    return out[:, dy : out.shape[1] - dy, dx : out.shape[2] - dx]


def auto_tile(height: int, width: int, tile: int | None = None) -> int | None:
    """The tile size to use: ``tile`` if given (0 means whole frames), else
    :data:`AUTO_TILE` for frames larger than :data:`AUTO_TILE_PIXELS`."""
    if tile is not None:
        return int(tile) or None
    return AUTO_TILE if height * width > AUTO_TILE_PIXELS else None


def _spatial_chunks(size: int, tile: int | None, margin: int) -> tuple[int, ...]:
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
        (:func:`daskmag.pyramid.sampling_step`; ``2**level`` in the octave
        pyramid, as pyrtools), chunked like the video along time and by tiles
        in space.  Nothing is computed until asked.
    """
    frames = video.frames if isinstance(video, Video) else da.asarray(video)
    height, width = frames.shape[1:3]
    rows, cols, margin, spec = _tiling(pyramid or PyramidSpec(), height, width, tile, tile_margin)
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


def _tiling(spec: PyramidSpec, height: int, width: int, tile: int | None, margin: int):
    """Tile sizes along each axis, the margin in use, and the pyramid a tile can hold."""
    rows, cols = _spatial_chunks(height, tile, margin), _spatial_chunks(width, tile, margin)
    if len(rows) == 1 and len(cols) == 1:
        return rows, cols, 0, spec
    # a tile holds as many levels as its extended size allows (at most the frame's)
    extended_tile = (min(rows) + 2 * margin, min(cols) + 2 * margin)
    spec = replace(spec, levels=min(spec.n_levels((height, width)), spec.n_levels(extended_tile)))
    return rows, cols, margin, spec
