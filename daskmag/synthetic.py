"""Synthetic test clips with a known sub-pixel motion (no download needed).

A periodic colour texture (or grating) is translated by an exact sub-pixel
amount each frame, by a phase ramp in the Fourier domain, so the true motion
of every frame is known: ``shift(t) = sum_i amp_i * sin(2 pi f_i t / fps)``.
"""

from __future__ import annotations

import numpy as np


def texture(height: int, width: int, seed: int = 0, slope: float = 1.0) -> np.ndarray:
    """A periodic, broadband colour texture (H, W, 3) in [0, 1].

    Noise with a ``1/f**slope`` amplitude spectrum per channel (natural-image
    like), different in each channel so that colour is present everywhere.
    """
    rng = np.random.default_rng(seed)
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.fftfreq(width)[None, :]
    radius = np.sqrt(fx**2 + fy**2)
    radius[0, 0] = 1.0
    envelope = 1.0 / radius**slope
    envelope[0, 0] = 0.0
    channels = []
    for _ in range(3):
        noise = np.fft.fft2(rng.standard_normal((height, width)))
        img = np.fft.ifft2(noise * envelope).real
        img = (img - img.mean()) / (img.std() + 1e-12)
        channels.append(img)
    tex = np.stack(channels, axis=-1)
    # a mild colour mix keeps the channels correlated like real scenes
    mix = np.array([[0.8, 0.2, 0.0], [0.1, 0.7, 0.2], [0.0, 0.3, 0.7]])
    tex = tex @ mix.T
    return np.clip(0.5 + 0.12 * tex + np.array([0.05, 0.0, -0.05]), 0.0, 1.0)


def grating(height: int, width: int, period: float = 16.0) -> np.ndarray:
    """A vertical sinusoidal colour grating (H, W, 3) in [0, 1], periodic in x.

    ``period`` is rounded so that a whole number of cycles spans the width.
    """
    cycles = max(1, round(width / period))
    x = np.arange(width) / width
    wave = np.sin(2 * np.pi * cycles * x)[None, :, None]
    colour = np.array([0.30, 0.22, 0.15])
    base = np.array([0.55, 0.45, 0.40])
    return np.broadcast_to(base + colour * wave, (height, width, 3)).copy()


def motion(n_frames: int, fps: float, components) -> np.ndarray:
    """The shift in pixels of each frame: ``sum(amp * sin(2 pi f t))``."""
    t = np.arange(n_frames) / fps
    shift = np.zeros(n_frames)
    for amplitude, frequency in components:
        shift += amplitude * np.sin(2 * np.pi * frequency * t)
    return shift


def translate(image: np.ndarray, dx: float, dy: float = 0.0) -> np.ndarray:
    """Shift a periodic image (H, W, C) by (dy, dx) pixels, exactly, via the FFT."""
    height, width = image.shape[:2]
    fy = np.fft.fftfreq(height)[:, None, None]
    fx = np.fft.fftfreq(width)[None, :, None]
    ramp = np.exp(-2j * np.pi * (fx * dx + fy * dy))
    return np.fft.ifft2(np.fft.fft2(image, axes=(0, 1)) * ramp, axes=(0, 1)).real


def translating_clip(n_frames: int = 120, height: int = 128, width: int = 128, fps: float = 60.0,
                     components=((0.1, 5.0), (0.1, 15.0)), pattern: str = "texture",
                     seed: int = 0, noise: float = 0.0) -> np.ndarray:
    """A clip (T, H, W, 3) uint8 of a pattern moving horizontally by :func:`motion`.

    Parameters
    ----------
    components : sequence of (amplitude_px, frequency_hz)
    pattern : "texture" or "grating"
    noise : float
        Standard deviation of added sensor noise, in grey levels.
    """
    image = texture(height, width, seed) if pattern == "texture" else grating(height, width)
    shifts = motion(n_frames, fps, components)
    rng = np.random.default_rng(seed + 1)
    frames = np.empty((n_frames, height, width, 3), dtype=np.uint8)
    for i, dx in enumerate(shifts):
        frame = translate(image, dx) * 255.0
        if noise:
            frame = frame + rng.normal(0.0, noise, frame.shape)
        frames[i] = np.clip(np.rint(frame), 0, 255).astype(np.uint8)
    return frames


#: RGB (grey levels) of the skin patch of :func:`pulsing_clip`.
SKIN = (200.0, 150.0, 130.0)
#: RGB direction of :func:`pulsing_clip`'s colour change (green largest, as
#: blood absorbs green most); Y, I and Q all change along it.
PULSE_DIRECTION = (-0.5, 1.0, 0.2)


def pulsing_clip(n_frames: int = 240, height: int = 160, width: int = 160, fps: float = 30.0,
                 components=((0.5, 1.4),), patch: int | None = 96, seed: int = 0) -> np.ndarray:
    """A static clip (T, H, W, 3) uint8 whose colour changes by a known, tiny amount.

    Parameters
    ----------
    components : sequence of (amplitude, frequency_hz)
        The colour moves along :data:`PULSE_DIRECTION` by
        ``sum(amplitude * sin(2 pi f t))`` grey levels of green (the largest
        component); a pulse of 84 bpm is 1.4 Hz.
    patch : int or None
        Side of a centred square of :data:`SKIN` colour, with a faint texture
        of a few grey levels, on a :func:`texture` background; only the patch
        changes colour.  None: no patch, the whole textured frame changes.
        The texture also dithers the rounding to uint8, so a region's mean
        colour follows the sub-grey-level change linearly.

    Returns
    -------
    uint8 array (n_frames, height, width, 3)
    """
    image = texture(height, width, seed) * 255.0
    mask = np.ones((height, width, 1))
    if patch is not None:
        top, left = (height - patch) // 2, (width - patch) // 2
        mask[:] = 0.0
        mask[top : top + patch, left : left + patch] = 1.0
        # the texture has a standard deviation of about 0.12: 4 grey levels here
        skin = np.asarray(SKIN) + 4.0 * (texture(height, width, seed + 7) - 0.5) / 0.12
        image = image * (1.0 - mask) + skin * mask
    change = motion(n_frames, fps, components)[:, None, None, None] * np.asarray(PULSE_DIRECTION)
    frames = image[None] + mask[None] * change
    return np.clip(np.rint(frames), 0, 255).astype(np.uint8)
