"""Measure motion: what ``daskmag measure`` runs, and the registration helpers the tests use.

* :func:`measure_file` / :func:`measure_video`: each region's displacement,
  its amplitude spectrum, the peaks and a band to magnify, from the local
  phase of the complex steerable pyramid (:mod:`daskmag.measure.estimator`),
  lazily over time blocks (:mod:`daskmag.measure.graph`).
* :func:`global_shifts`, :func:`motion_gain`, ... (:mod:`daskmag.measure.registration`):
  whole-frame sub-pixel registration and sinusoid fits.
"""

from .registration import (colour_gains, global_shifts, mean_colour, motion_gain, pairwise_shifts,
                           sinusoid_amplitudes)
from .estimator import Region, band_centre_frequency, band_wavelength, measure_block, usable_levels
from .spectrum import Peak, amplitude_spectrum, noise_floor, spectral_peaks, suggest_band
from .graph import displacement, region_steps
from .run import Measurement, make_regions, measure_file, measure_video, write_outputs

__all__ = [
    "Measurement", "Peak", "Region", "amplitude_spectrum", "band_centre_frequency", "band_wavelength",
    "colour_gains", "displacement", "global_shifts", "make_regions", "mean_colour", "measure_block",
    "measure_file", "measure_video", "motion_gain", "noise_floor", "pairwise_shifts", "region_steps",
    "sinusoid_amplitudes", "spectral_peaks", "suggest_band", "usable_levels", "write_outputs",
]
