"""Linear (Eulerian) colour magnification as a lazy Dask graph.

Wu, Rubinstein, Shih, Guttag, Durand & Freeman, "Eulerian Video Magnification
for Revealing Subtle Changes in the World", SIGGRAPH 2012; the kernels are in
:mod:`daskmag.kernels.linear`.
"""

from __future__ import annotations

import dask.array as da
import numpy as np

from ..kernels.linear import add_expanded, bandpass_change, channel_gains, level_sizes, reduce_to_yiq
from ..plan import BLOCK_BYTES, plan_colour
from ..settings import Band, ColourSettings
from . import as_frames, block_position


def magnify_colour(video, alpha: float = 10.0, low: float | None = None, high: float | None = None, fps=None, *,
                   level: int = 4, chroma_attenuation: float = 1.0, taps: int | None = None,
                   time_chunk: int | None = None, min_blocks: int = 1,
                   block_bytes: int = BLOCK_BYTES, settings: ColourSettings | None = None,
                   device: str = "cpu", resources: dict | None = None) -> da.Array:
    """Linear colour magnification (Eulerian video magnification), lazily.

    Parameters
    ----------
    video : Video or array-like (T, H, W, C) uint8 or uint16
        From :func:`daskmag.open_video`, or any NumPy/Dask array of RGB
        (``C = 3``) or mono (``C = 1``: luminance only) frames.
    alpha : float
        Magnification: a colour change in the band becomes ``1 + alpha``
        times as large (``alpha < 0`` attenuates it).
    low, high : float
        Temporal pass band in Hz (e.g. 0.8-2 Hz for a pulse of 48-120 bpm).
    fps : float, optional
        The rate the frames were *recorded* at (default: the video's own).
    level : int
        Gaussian-pyramid level the colour is averaged to before filtering
        (each level halves the size; MIT use 4 to 6).  Higher levels average
        more pixels (less noise amplified) but localise the change less.
    chroma_attenuation : float
        Extra factor, in [0, 1] usually, on the amplification of I and Q
        (the chrominance); 0 amplifies luminance only.
    taps : int, optional
        Length of the zero-phase FIR band-pass (default from the band, see
        :func:`daskmag.kernels.temporal.default_taps`); the temporal halo is ``taps // 2``.
    time_chunk : int, optional
        Frames per block (default: from ``block_bytes``; at least the halo).
    min_blocks : int
        Split short videos into at least this many blocks (for parallelism).
    block_bytes : int
        Working-memory budget of one block, as :func:`daskmag.magnify_motion`.
    settings : ColourSettings, optional
        All of ``alpha``, ``level``, ``chroma_attenuation`` and ``taps`` at
        once (then those keywords are ignored).
    device : {"cpu", "cuda"}
        Where the full-frame tasks (``colour-reduce``, ``colour-magnify``)
        run: ``"cuda"`` moves their blocks to the worker's GPU and back
        (:class:`daskmag.gpu.DeviceKernel`); the small band-pass stays on the CPU.
    resources : dict, optional
        Dask resources of those tasks (default ``{"GPU": 1}`` with
        ``device="cuda"``, none on the CPU).

    Returns
    -------
    dask.array.Array
        Same shape, dtype and frames as the input; nothing is computed yet.

    Raises
    ------
    UserError
        Unusable settings, a band above Nyquist, frames too small for ``level``.

    Notes
    -----
    Three tasks per time block: reduce the frames (``colour-reduce``),
    band-pass the small YIQ stack with a halo of ``taps // 2`` small frames
    from each neighbour (``colour-bandpass``), expand and add
    (``colour-magnify``).  At the clip's ends the small stack is continued by
    linear prediction, so the first and last frames are magnified like the
    others.  Borders are reflected: a colour change at the frame's edge is
    not carried over to the opposite edge.  The amplified change is smooth,
    so its rounding to uint8 is the same over whole regions: a region's mean
    colour can be off by a few hundredths of a grey level at any frequency.
    """
    frames, fps = as_frames(video, fps)
    if settings is None:
        settings = ColourSettings(alpha=alpha, level=level, chroma_attenuation=chroma_attenuation, taps=taps)
    band = Band(low, high, fps).at_rate(fps)
    band.check_duration(frames.shape[0])
    n_frames, height, width, _ = frames.shape
    temporal = settings.temporal_filter(band)
    plan = plan_colour(n_frames, height, width, temporal, settings.level, time_chunk=time_chunk,
                       min_blocks=min_blocks, block_bytes=block_bytes)
    chunks = plan.time_chunks
    channels = frames.shape[-1]
    frames = frames.rechunk((chunks, height, width, channels))
    small = (level_sizes(height, settings.level)[-1], level_sizes(width, settings.level)[-1], channels)
    float_meta = np.empty((0, 0, 0, 0), dtype=np.float32)
    from ..gpu import KERNEL_RESOURCES, kernel_annotation, on_device

    if resources is None and device == "cuda":
        resources = KERNEL_RESOURCES
    with kernel_annotation(resources):
        yiq = frames.map_blocks(on_device(reduce_to_yiq, device), level=settings.level,
                                chunks=(chunks,) + tuple((s,) for s in small), dtype=np.float32, meta=float_meta,
                                token="colour-reduce")
    depth = {0: plan.halo if plan.n_blocks > 1 else 0, 1: 0, 2: 0, 3: 0}
    change = da.overlap.overlap(yiq, depth=depth, boundary="none").map_blocks(
        _bandpass_chunk,
        temporal=temporal,
        gains=channel_gains(settings.alpha, settings.chroma_attenuation, channels),
        halo=plan.halo,
        chunks=yiq.chunks,
        dtype=np.float32,
        meta=float_meta,
        token="colour-bandpass",
    )
    with kernel_annotation(resources):
        return da.map_blocks(on_device(add_expanded, device), frames, change, level=settings.level,
                             chunks=frames.chunks, dtype=frames.dtype,
                             meta=np.empty((0, 0, 0, 0), dtype=frames.dtype),
                             token="colour-magnify")


def _bandpass_chunk(block, temporal, gains, halo, block_info=None):
    start, stop, pad_before, pad_after = block_position(block_info, halo, halo, block.shape[0])
    return bandpass_change(block, temporal, gains, start, stop, pad_before, pad_after)
