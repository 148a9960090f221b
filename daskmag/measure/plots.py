"""Figures of a measurement: displacement against time, amplitude spectrum with its peaks.

matplotlib's object-oriented API with its Agg canvas (``Figure.savefig``), never
pyplot: nothing changes the backend or the state of a notebook that calls it.
"""

from __future__ import annotations

import numpy as np

#: At most this many regions are drawn (one panel each); the CSV files hold all.
MAX_PANELS = 16


def _figure(n_panels: int, height: float = 2.2):
    """A figure drawn by the Agg canvas directly: no pyplot, so the caller's backend is left alone."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 0.8 + height * n_panels))
    axes = fig.subplots(n_panels, 1, squeeze=False, sharex=True)
    return fig, axes[:, 0]


def plot_displacement(result, path):
    """``dx`` and ``dy`` (pixels) against time (s), one panel per region."""
    regions = result.regions[:MAX_PANELS]
    fig, axes = _figure(len(regions))
    for r, (ax, region) in enumerate(zip(axes, regions)):
        ax.plot(result.times, result.displacement[:, r, 0], lw=0.8, label="dx (+ right)")
        ax.plot(result.times, result.displacement[:, r, 1], lw=0.8, label="dy (+ down)")
        ax.set_ylabel("pixels")
        ax.set_title(f"{region.name} ({region.as_roi()})", fontsize=9, loc="left")
        ax.grid(alpha=0.3)
    axes[0].legend(loc="upper right", fontsize=8)
    axes[-1].set_xlabel(f"time (s at {result.fps:g} fps)")
    _note_more(fig, result)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def plot_spectrum(result, path):
    """Amplitude spectra of ``dx`` and ``dy`` (log scale), peaks marked, one panel per region."""
    from .spectrum import noise_floor

    regions = result.regions[:MAX_PANELS]
    fig, axes = _figure(len(regions))
    f = result.frequencies
    for r, (ax, region) in enumerate(zip(axes, regions)):
        for k, (direction, colour) in enumerate((("x", "C0"), ("y", "C1"))):
            amplitude = result.amplitude[:, r, k]
            ax.semilogy(f[1:], np.maximum(amplitude[1:], 1e-12), lw=0.8, color=colour,
                        label=f"amplitude {direction}")
            ax.semilogy(f[1:], np.maximum(noise_floor(amplitude)[1:], 1e-12), lw=0.6, ls=":",
                        color=colour)
            for peak in result.peaks:
                if peak.region == region.name and peak.direction == direction:
                    ax.plot(peak.frequency_hz, peak.amplitude_px, "v", color=colour, ms=6)
                    ax.annotate(f"{peak.frequency_hz:.4g} Hz\n{peak.amplitude_px:.3g} px",
                                (peak.frequency_hz, peak.amplitude_px), textcoords="offset points",
                                xytext=(4, 4), fontsize=7, color=colour)
        if result.band is not None:
            ax.axvspan(*result.band, color="0.85", zorder=0)
        ax.set_ylabel("pixels")
        ax.set_title(f"{region.name} ({region.as_roi()})", fontsize=9, loc="left")
        ax.grid(alpha=0.3, which="both")
    axes[0].legend(loc="upper right", fontsize=8)
    band = "" if result.band is None else f"; shaded: suggested band {result.band[0]:g}-{result.band[1]:g} Hz"
    axes[-1].set_xlabel(f"frequency (Hz at {result.fps:g} fps); dotted: noise floor{band}")
    _note_more(fig, result)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _note_more(fig, result):
    if len(result.regions) > MAX_PANELS:
        fig.suptitle(f"first {MAX_PANELS} of {len(result.regions)} regions (all are in the CSV files)",
                     fontsize=9)
