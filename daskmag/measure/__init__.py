"""Measure motion: what ``daskmag measure`` runs, and the registration helpers the tests use.

* :func:`measure_file` / :func:`measure_video`: each region's displacement,
  its amplitude spectrum, the peaks and a band to magnify, from the local
  phase of the complex steerable pyramid (:mod:`daskmag.measure.estimator`),
  lazily over time blocks (:mod:`daskmag.measure.graph`).
* :func:`global_shifts`, :func:`motion_gain`, ... (:mod:`daskmag.measure.registration`):
  whole-frame sub-pixel registration and sinusoid fits.
"""

from .._lazy import lazy_attributes

#: Where each public name lives: loaded on first use (PEP 562), so that the
#: CLI's parser (which adds ``measure``'s sub-parser) does not import SciPy's
#: signal package and Dask for ``daskmag magnify``: about 1 s of start-up.
_LAZY = {
    **dict.fromkeys(("colour_gains", "global_shifts", "mean_colour", "motion_gain", "pairwise_shifts",
                     "sinusoid_amplitudes"), "registration"),
    **dict.fromkeys(("Region", "band_centre_frequency", "band_wavelength", "measure_block",
                     "usable_levels"), "estimator"),
    **dict.fromkeys(("Peak", "amplitude_spectrum", "noise_floor", "spectral_peaks", "suggest_band"),
                    "spectrum"),
    **dict.fromkeys(("displacement", "region_steps"), "graph"),
    **dict.fromkeys(("Measurement", "make_regions", "measure_file", "measure_video", "write_outputs"), "run"),
}


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY)


__all__ = [
    "Measurement", "Peak", "Region", "amplitude_spectrum", "band_centre_frequency", "band_wavelength",
    "colour_gains", "displacement", "global_shifts", "make_regions", "mean_colour", "measure_block",
    "measure_file", "measure_video", "motion_gain", "noise_floor", "pairwise_shifts", "region_steps",
    "sinusoid_amplitudes", "spectral_peaks", "suggest_band", "usable_levels", "write_outputs",
]
