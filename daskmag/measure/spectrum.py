"""Amplitude spectra of displacements, their peaks, and a band to magnify (pure NumPy/SciPy).

Spectrum: Welch's average of periodograms (:func:`scipy.signal.welch`) with
a flat-top window, linear detrend per segment, half-overlapping segments,
``scaling="spectrum"``, so ``sqrt(2 P(f))`` is the amplitude of a sinusoid at
``f``.  The flat-top window's passband is flat to within 0.01 dB across a
bin, so a sinusoid ``A sin(2 pi f t)`` reads ``A`` at its peak whatever ``f``
falls between bins; the price is a main lobe about ten bins wide, so two
sinusoids must be that far apart to be told apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.ndimage
import scipy.signal

#: Default Welch segment length, in samples (at most the signal's length).
SEGMENT = 1024
#: Half-width of the flat-top window's main lobe, in bins: peaks closer than
#: this are one peak, and the first few bins hold the detrend's leakage.
MAIN_LOBE_BINS = 5
#: A peak must be this many times the local noise floor.
PEAK_FACTOR = 4.0
#: Width of the running median that estimates the noise floor, in main lobes.
FLOOR_LOBES = 6


@dataclass(frozen=True)
class Peak:
    """One spectral peak of one region's motion along one direction."""

    region: str
    direction: str  # "x" or "y"
    frequency_hz: float
    amplitude_px: float
    floor_px: float


def segment_length(n: int, segment: int | None = None) -> int:
    """The Welch segment length for ``n`` samples: ``segment`` (default :data:`SEGMENT`), at most ``n``."""
    return int(max(2, min(n, SEGMENT if segment is None else segment)))


def amplitude_spectrum(signal, fps: float, segment: int | None = None):
    """Amplitude spectrum of ``signal`` (along axis 0) in its own units.

    Parameters
    ----------
    signal : array (T, ...)
        Samples at ``fps`` Hz.
    segment : int, optional
        Welch segment length in samples (default :data:`SEGMENT`, at most T);
        the frequency resolution is ``fps / segment``.

    Returns
    -------
    frequencies : ndarray (F,)
        In Hz, 0 to ``fps / 2``.
    amplitude : ndarray (F, ...)
        ``A`` at ``f`` for a sinusoid ``A sin(2 pi f t)`` (see the module's notes).
    """
    signal = np.asarray(signal, dtype=float)
    nperseg = segment_length(len(signal), segment)
    frequencies, power = scipy.signal.welch(signal, fs=fps, window="flattop", nperseg=nperseg,
                                            noverlap=nperseg // 2, detrend="linear",
                                            scaling="spectrum", axis=0)
    return frequencies, np.sqrt(2.0 * power)


def noise_floor(amplitude) -> np.ndarray:
    """A robust local noise floor of an amplitude spectrum (along axis 0).

    The running median over :data:`FLOOR_LOBES` main lobes (bins), so that
    a few peaks do not raise it; at least the median of the whole spectrum's
    upper half is not required, so a spectrum that falls steeply (a drift)
    keeps a local floor.
    """
    amplitude = np.asarray(amplitude, dtype=float)
    width = int(2 * FLOOR_LOBES * MAIN_LOBE_BINS + 1)
    width = min(width, len(amplitude) if len(amplitude) % 2 else len(amplitude) - 1)
    size = (max(1, width),) + (1,) * (amplitude.ndim - 1)
    return scipy.ndimage.median_filter(amplitude, size=size, mode="nearest")


def spectral_peaks(frequencies, amplitude, *, region: str = "", direction: str = "",
                   factor: float = PEAK_FACTOR, max_peaks: int = 10) -> list[Peak]:
    """Peaks of a 1-D amplitude spectrum above ``factor`` times its noise floor, strongest first.

    :func:`scipy.signal.find_peaks` with a height of ``factor`` times
    :func:`noise_floor` and a distance of a main lobe; the first bins (the
    detrend's leakage near 0 Hz) are left out.  The frequency is refined by
    a parabola through the peak's bin and its neighbours.
    """
    frequencies = np.asarray(frequencies, dtype=float)
    amplitude = np.asarray(amplitude, dtype=float)
    floor = noise_floor(amplitude)
    height = factor * floor
    indices, _ = scipy.signal.find_peaks(amplitude, height=height, distance=MAIN_LOBE_BINS)
    indices = [i for i in indices if i >= MAIN_LOBE_BINS and amplitude[i] > 0]
    peaks = []
    step = frequencies[1] - frequencies[0] if len(frequencies) > 1 else 0.0
    for i in sorted(indices, key=lambda i: -amplitude[i])[:max_peaks]:
        offset = 0.0
        if 0 < i < len(amplitude) - 1:
            a, b, c = amplitude[i - 1], amplitude[i], amplitude[i + 1]
            denominator = a - 2 * b + c
            offset = 0.5 * (a - c) / denominator if denominator < 0 else 0.0
        peaks.append(Peak(region, direction, float(frequencies[i] + offset * step), float(amplitude[i]),
                          float(floor[i])))
    return peaks


def suggest_band(peaks, fps: float, relative: float = 0.12, resolution: float = 0.0) -> tuple[float, float] | None:
    """A temporal band around the strongest peak: ``f (1 -+ relative)``, at least two bins wide.

    The band keeps below Nyquist and above 0 Hz; ``None`` without peaks.
    Round numbers (3 significant digits) so the command line reads well.
    """
    if not peaks:
        return None
    strongest = max(peaks, key=lambda p: p.amplitude_px)
    f = strongest.frequency_hz
    half = max(relative * f, 2 * resolution)
    low = max(f - half, min(f / 2, resolution if resolution > 0 else f / 2))
    high = min(f + half, 0.49 * fps)
    round3 = lambda v: float(f"{v:.3g}")  # noqa: E731
    low, high = round3(low), round3(high)
    if not low < f < high:  # rounding must keep the peak inside
        low, high = f - half, min(f + half, 0.49 * fps)
    return low, high
