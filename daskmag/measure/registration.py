"""Measure a clip: sub-pixel global shifts, sinusoid amplitudes, colour change.

Used by the tests to check amplification against a known motion or colour
change, and by users to check what a setting did (e.g. the gain at their
frequency).
"""

from __future__ import annotations

import numpy as np

from ..kernels.colourspace import RGB_TO_YIQ, luma


def global_shifts(frames, reference: int = 0, max_frequency: float = 0.15) -> np.ndarray:
    """Sub-pixel translation (dy, dx) of every frame against ``frames[reference]``.

    The phase of the cross-power spectrum at low spatial frequencies is a
    plane ``-2 pi (fy dy + fx dx)``; a weighted least-squares fit of that
    plane gives the shift to a small fraction of a pixel.

    Parameters
    ----------
    frames : array (T, H, W, 3) uint8 or (T, H, W) float
    max_frequency : float
        Highest spatial frequency used (cycles/pixel); the shift must stay
        below ``0.5 / max_frequency`` pixels.

    Returns
    -------
    ndarray (T, 2)
        ``dy, dx`` in pixels per frame.
    """
    frames = np.asarray(frames)
    images = luma(frames) if frames.ndim == 4 else frames.astype(np.float32)
    height, width = images.shape[1:]
    fy = np.fft.fftfreq(height)[:, None] * np.ones((1, width))
    fx = np.fft.fftfreq(width)[None, :] * np.ones((height, 1))
    keep = (np.abs(fy) <= max_frequency) & (np.abs(fx) <= max_frequency)
    keep[0, 0] = False
    ref = np.fft.fft2(images[reference] - images[reference].mean())
    weight = np.abs(ref[keep]) ** 2
    design = -2 * np.pi * np.stack([fy[keep], fx[keep]], axis=1)
    # pinv: a pattern with no structure along one axis (a grating) gives 0 there
    solver = np.linalg.pinv(design.T @ (design * weight[:, None]))
    shifts = np.empty((len(images), 2))
    for i, image in enumerate(images):
        cross = np.fft.fft2(image - image.mean()) * np.conj(ref)
        phase = np.angle(cross[keep])
        shifts[i] = solver @ (design.T @ (weight * phase))
    return shifts


def sinusoid_amplitudes(signal, frequencies, fps: float) -> np.ndarray:
    """Amplitude of each sinusoid in ``signal`` by least squares (offset and trend removed)."""
    signal = np.asarray(signal, dtype=float)
    t = np.arange(len(signal)) / fps
    columns = [np.ones_like(t), t]
    for frequency in frequencies:
        columns += [np.cos(2 * np.pi * frequency * t), np.sin(2 * np.pi * frequency * t)]
    design = np.stack(columns, axis=1)
    coef, *_ = np.linalg.lstsq(design, signal, rcond=None)
    pairs = coef[2:].reshape(-1, 2)
    return np.hypot(pairs[:, 0], pairs[:, 1])


def motion_gain(before, after, frequencies, fps: float, axis: int = 1, trim: int = 0) -> np.ndarray:
    """Ratio of motion amplitudes at ``frequencies`` between two clips.

    ``axis`` 1 is horizontal motion, 0 vertical; ``trim`` frames are left out
    at both ends.
    """
    sl = slice(trim, -trim if trim else None)
    a = sinusoid_amplitudes(global_shifts(before)[sl, axis], frequencies, fps)
    b = sinusoid_amplitudes(global_shifts(after)[sl, axis], frequencies, fps)
    return b / a


def pairwise_shifts(before, after, max_frequency: float = 0.15) -> np.ndarray:
    """Sub-pixel translation (dy, dx) of ``after[t]`` against ``before[t]``, per frame.

    The motion a magnification *added* to each frame, whatever the motion
    both clips share (a slow drift, a pan).
    """
    before, after = np.asarray(before), np.asarray(after)
    return np.stack([global_shifts(np.stack([b, a]), 0, max_frequency)[1] for b, a in zip(before, after)])


def mean_colour(frames, region=(slice(None), slice(None))) -> np.ndarray:
    """Mean colour of ``region`` (a pair of slices: rows, columns) of every frame.

    Returns
    -------
    ndarray (T, 3)
        Y, I, Q in grey levels (Y in [0, 255]).
    """
    frames = np.asarray(frames)[(slice(None),) + tuple(region)]
    return frames.astype(float).mean(axis=(1, 2)) @ RGB_TO_YIQ.T


def colour_gains(before, after, frequencies, fps: float, region=(slice(None), slice(None)),
                 trim: int = 0) -> np.ndarray:
    """Ratio of the colour oscillations at ``frequencies`` between two clips.

    The mean colour of ``region`` (see :func:`mean_colour`) is fitted with
    sinusoids (:func:`sinusoid_amplitudes`), channel by channel; ``trim``
    frames are left out at both ends.

    Returns
    -------
    ndarray (3, len(frequencies))
        Gains of Y, I and Q (rows) at each frequency (columns).
    """
    sl = slice(trim, -trim if trim else None)
    a, b = mean_colour(before, region)[sl], mean_colour(after, region)[sl]
    return np.stack([sinusoid_amplitudes(b[:, c], frequencies, fps) / sinusoid_amplitudes(a[:, c], frequencies, fps)
                     for c in range(3)])
