"""Colour-space kernels: RGB <-> YIQ (NTSC), as MIT's rgb2ntsc / ntsc2rgb."""

from __future__ import annotations

import numpy as np

from .backend import array_module

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


def luma(rgb):
    """Luminance Y in [0, 1] (float32) of uint8 RGB frames (..., 3)."""
    xp = array_module(rgb)
    weights = xp.asarray((RGB_TO_YIQ[0] / 255.0).astype(np.float32))
    return rgb.astype(xp.float32) @ weights


def rgb_to_yiq(rgb):
    """YIQ (float32, Y in [0, 1]) of uint8 RGB frames (..., 3)."""
    xp = array_module(rgb)
    matrix = xp.asarray((RGB_TO_YIQ / 255.0).astype(np.float32))
    return rgb.astype(xp.float32) @ matrix.T


def yiq_to_rgb(yiq):
    """uint8 RGB (clipped, rounded) of float YIQ frames (..., 3)."""
    xp = array_module(yiq)
    matrix = xp.asarray((YIQ_TO_RGB * 255.0).astype(np.float32))
    return to_uint8(yiq @ matrix.T)


def add_luma(rgb, delta_y):
    """Add a luminance change ``delta_y`` (Y units, [0, 1]) to uint8 RGB frames.

    Equivalent to RGB -> YIQ, ``Y += delta_y``, YIQ -> RGB, with I and Q (the
    colour) untouched, but without the round trip.
    """
    xp = array_module(rgb)
    out = rgb.astype(xp.float32)
    out += (delta_y * 255.0)[..., None]
    return to_uint8(out)


def to_uint8(values):
    """Clip to [0, 255] and round to uint8."""
    xp = array_module(values)
    values = xp.rint(values)
    xp.clip(values, 0, 255, out=values)
    return values.astype(xp.uint8)
