"""Labels and side-by-side frames (pure NumPy; text drawn with Pillow)."""

from __future__ import annotations

import functools

import numpy as np

#: Height of the label strip above each picture, in pixels.
LABEL_HEIGHT = 18
#: White columns between the two pictures.
GAP = 8


@functools.lru_cache(maxsize=16)
def label_strip(text: str, width: int, height: int = LABEL_HEIGHT) -> np.ndarray:
    """A (height, width, 3) uint8 strip: ``text`` in white on black, clipped to the width.

    Drawn with Pillow's built-in bitmap font, so no font file is needed.
    """
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", (int(width), int(height)), (0, 0, 0))
    font = ImageFont.load_default()
    ImageDraw.Draw(image).text((4, max(0, (height - 11) // 2)), text, fill=(255, 255, 255), font=font)
    strip = np.asarray(image, dtype=np.uint8)
    strip.setflags(write=False)
    return strip


def side_by_side(before, after, left: str, right: str, gap: int = GAP) -> np.ndarray:
    """Frames ``before`` and ``after`` next to each other, each under its label.

    Parameters
    ----------
    before, after : uint8 array (T, H, W, 3)
        The same frames before and after processing.
    left, right : str
        Their labels.
    gap : int
        White columns between them.

    Returns
    -------
    uint8 array (T, H + LABEL_HEIGHT, 2 W + gap, 3)
    """
    n, height, width, channels = before.shape
    out = np.full((n, height + LABEL_HEIGHT, 2 * width + gap, channels), 255, dtype=np.uint8)
    out[:, :LABEL_HEIGHT, :width] = label_strip(left, width)
    out[:, :LABEL_HEIGHT, width + gap :] = label_strip(right, width)
    out[:, LABEL_HEIGHT:, :width] = before
    out[:, LABEL_HEIGHT:, width + gap :] = after
    return out
