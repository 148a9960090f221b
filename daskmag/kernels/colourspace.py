"""Colour-space kernels: RGB <-> YIQ (NTSC), as MIT's rgb2ntsc / ntsc2rgb.

:func:`luma` and :func:`add_luma` take frames of any depth the readers give:
uint8 or uint16, mono ``(..., 1)`` or RGB ``(..., 3)``.  Luminance is float32
in [0, 1] of the dtype's full range, and the frames come back in their own
dtype, so 16-bit footage is processed and written at its full precision
(float32 holds every uint16 value exactly).
"""

from __future__ import annotations

import numpy as np

from .backend import is_numpy, namespace

#: RGB -> YIQ.  The I and Q rows sum to zero, so a change ``dY`` of luminance
#: alone maps back to RGB as ``(dY, dY, dY)``: see :func:`add_luma`.
RGB_TO_YIQ = np.array(
    [
        [0.299, 0.587, 0.114],
        [0.596, -0.274, -0.322],
        [0.211, -0.523, 0.312],
    ],
    dtype=np.float64,
)
YIQ_TO_RGB = np.linalg.inv(RGB_TO_YIQ)


def full_scale(dtype, xp=np) -> int:
    """The largest sample value of an unsigned integer dtype (255, 65535).

    ``xp``: the namespace ``dtype`` belongs to (:func:`~daskmag.kernels.backend.namespace`).
    """
    if xp is np:
        dtype = np.dtype(dtype)
    if not xp.isdtype(dtype, "unsigned integer"):
        raise TypeError(f"frames must be unsigned integers (uint8, uint16), got {dtype}")
    return int(xp.iinfo(dtype).max)


def luma(frames):
    """Luminance Y in [0, 1] (float32) of frames (..., C).

    Parameters
    ----------
    frames : uint8 or uint16 array (..., 1) or (..., 3)
        Mono (Y is the sample) or RGB (Y is YIQ's, NTSC weights).

    Returns
    -------
    float32 array (...)
        Y divided by the dtype's full scale (:func:`full_scale`).
    """
    xp = namespace(frames)
    scale = 1.0 / full_scale(frames.dtype, xp)
    if frames.shape[-1] == 1:
        out = xp.astype(frames[..., 0], xp.float32)
        out *= scale  # a Python float keeps float32
        return out
    weights = xp.asarray((RGB_TO_YIQ[0] * scale).astype(np.float32))
    return xp.astype(frames, xp.float32) @ weights


def rgb_to_yiq(rgb):
    """YIQ (float32, Y in [0, 1]) of uint8 RGB frames (..., 3)."""
    xp = namespace(rgb)
    matrix = xp.asarray((RGB_TO_YIQ / 255.0).astype(np.float32))
    return xp.astype(rgb, xp.float32) @ matrix.T


def yiq_to_rgb(yiq):
    """uint8 RGB (clipped, rounded) of float YIQ frames (..., 3)."""
    xp = namespace(yiq)
    matrix = xp.asarray((YIQ_TO_RGB * 255.0).astype(np.float32))
    return to_uint8(yiq @ matrix.T)


def add_luma(frames, delta_y):
    """Add a luminance change ``delta_y`` (Y units, [0, 1]) to frames (..., C).

    For RGB, equivalent to RGB -> YIQ, ``Y += delta_y``, YIQ -> RGB, with I
    and Q (the colour) untouched, but without the round trip; for mono, the
    sample itself changes.

    Parameters
    ----------
    frames : uint8 or uint16 array (..., C), C 1 or 3
    delta_y : float array (...)

    Returns
    -------
    array like ``frames``
        Rounded and clipped to the dtype's range; ``delta_y = 0`` returns
        ``frames`` exactly.
    """
    xp = namespace(frames)
    if is_numpy(xp) and frames.ndim > 3 and getattr(delta_y, "shape", None) == frames.shape[:-1]:
        # a frame at a time, in place: its six passes stay in the core's cache
        # instead of streaming the batch from memory for each (0.45x the time)
        out = xp.empty_like(frames)
        for t in range(frames.shape[0]):
            out[t] = add_luma(frames[t], delta_y[t])
        return out
    out = xp.astype(frames, xp.float32)
    if is_numpy(xp):  # in place: the change scaled, added, rounded and clipped without new arrays
        out += (delta_y * np.float32(full_scale(frames.dtype, xp)))[..., None]
        return to_dtype(out, frames.dtype, overwrite=True)
    out += (delta_y * float(full_scale(frames.dtype, xp)))[..., None]
    return to_dtype(out, frames.dtype)


def to_dtype(values, dtype, overwrite: bool = False):
    """Round and clip float samples to an unsigned integer dtype's range.

    ``overwrite``: ``values`` (a NumPy array) may be rounded and clipped in place.
    """
    xp = namespace(values)
    if overwrite and is_numpy(xp):
        np.round(values, out=values)
        np.clip(values, 0.0, float(full_scale(dtype, xp)), out=values)
        return values.astype(dtype)
    values = xp.clip(xp.round(values), 0.0, float(full_scale(dtype, xp)))
    return xp.astype(values, dtype)


def to_uint8(values):
    """Clip to [0, 255] and round to uint8."""
    xp = namespace(values)
    values = xp.clip(xp.round(values), 0.0, 255.0)
    return xp.astype(values, xp.uint8)
