"""Phase-based motion magnification of one time block (pure array kernel).

Wadhwa, Rubinstein, Durand & Freeman, "Phase-Based Video Motion Processing",
SIGGRAPH 2013.  For every complex pyramid band the local phase is followed
through time, band-passed, multiplied by ``alpha`` and added back; in-band
motion then becomes ``1 + alpha`` times as large (MIT's convention).

Phase is tracked by its frame-to-frame increments
``angle(c[t + 1] * conj(c[t]))``, each well inside (-pi, pi] for the small
motions this method is for, and the band-pass is applied to the increments
directly (:func:`daskmag.temporal.filter_increments`).  That is the filter of
the unwrapped phase, so a slow drift of many radians over minutes of footage
never wraps into a spike, and no reference frame is needed: the taps have
exactly zero DC gain, so every time block gives the same filtered phase
whatever the chunking.
"""

from __future__ import annotations

import numpy as np

from ._backend import array_module
from .color import add_luma, luma
from .pyramid import PyramidSpec, analyse, centred_spectrum, pyramid_filters, real_image, synthesise_into
from .temporal import filter_increments, increment_kernel

#: Bytes of one working strip of band coefficients (over all frames of the
#: block); bounds the temporaries of the phase maths.
STRIP_BYTES = 16 * 2**20


def phase_increments(coefficients):
    """Frame-to-frame phase change of complex coefficients along axis 0.

    Parameters
    ----------
    coefficients : complex array (T, ...)

    Returns
    -------
    float32 array (T - 1, ...)
        ``angle(c[t + 1] * conj(c[t]))``, in (-pi, pi].
    """
    xp = array_module(coefficients)
    product = coefficients[1:] * xp.conj(coefficients[:-1])
    return xp.angle(product).astype(xp.float32, copy=False)


def magnify_luma_spectrum(spectrum, taps, alpha: float, spec: PyramidSpec, start: int, stop: int,
                          pad_before: int = 0, pad_after: int = 0):
    """Spectrum of the luminance change that magnifies frames ``[start, stop)``.

    Parameters
    ----------
    spectrum : complex64 array (T, H, W)
        Centred 2-D FFT (:func:`daskmag.pyramid.centred_spectrum`) of every
        frame's luminance in the block (halo included).
    taps : ndarray
        Symmetric temporal FIR taps (odd length, zero DC gain).
    alpha : float
        Magnification: in-band motion becomes ``1 + alpha`` times as large.
    spec : PyramidSpec
    start, stop : int
        Frames of the block to produce; ``len(taps)//2`` frames on each side
        must be present in ``spectrum`` or supplied by ``pad_before`` /
        ``pad_after`` (odd reflection at the clip's ends).

    Returns
    -------
    complex64 array (stop - start, H, W)
        Centred spectrum of the luminance change (see
        :func:`daskmag.pyramid.real_image`).
    """
    xp = array_module(spectrum)
    n_frames, height, width = spectrum.shape
    filters = pyramid_filters((height, width), spec)
    kernel = increment_kernel(taps)
    n_out = stop - start
    change = xp.zeros((n_out, height, width), dtype=xp.complex64)
    for band in filters.bands:
        coefficients = analyse(spectrum, band)
        modulated = _modulate(coefficients, kernel, alpha, start, stop, pad_before, pad_after)
        del coefficients
        synthesise_into(change, modulated, band)
    return change


def _modulate(coefficients, kernel, alpha, start, stop, pad_before, pad_after):
    """``c * (exp(i alpha filtered_phase) - 1)`` for frames [start, stop), strip by strip."""
    xp = array_module(coefficients)
    n_frames, rows, cols = coefficients.shape
    out = xp.empty((stop - start, rows, cols), dtype=xp.complex64)
    strip = max(1, STRIP_BYTES // max(1, n_frames * cols * 8))
    for r0 in range(0, rows, strip):
        part = coefficients[:, r0 : r0 + strip]
        filtered = filter_increments(phase_increments(part), kernel, start, stop, pad_before, pad_after)
        filtered *= alpha
        rotation = xp.empty(filtered.shape, dtype=xp.complex64)
        rotation.real = xp.cos(filtered)
        rotation.real -= 1
        rotation.imag = xp.sin(filtered)
        xp.multiply(part[start:stop], rotation, out=out[:, r0 : r0 + strip])
    return out


def magnify_block(rgb, taps, alpha: float, spec: PyramidSpec = PyramidSpec(), start: int = 0,
                  stop: int | None = None, pad_before: int = 0, pad_after: int = 0):
    """Magnify motion in a block of RGB frames; return frames ``[start, stop)``.

    Parameters
    ----------
    rgb : uint8 array (T, H, W, 3)
        The block's frames, temporal halo included (NumPy or CuPy).
    taps, alpha, spec, start, stop, pad_before, pad_after
        As :func:`magnify_luma_spectrum`.

    Returns
    -------
    uint8 array (stop - start, H, W, 3)
        Only the luminance (YIQ's Y) changes; colour (I, Q) passes through.
    """
    stop = rgb.shape[0] if stop is None else stop
    spectrum = centred_spectrum(luma(rgb))
    change = magnify_luma_spectrum(spectrum, taps, alpha, spec, start, stop, pad_before, pad_after)
    del spectrum
    return add_luma(rgb[start:stop], real_image(change))
