"""daskmag: phase-based video motion magnification on Dask.

Reveal motion too small to see (Wadhwa et al., SIGGRAPH 2013), in footage of
any length, on a laptop or a cluster.  Everything is lazy until written::

    import daskmag
    video = daskmag.open_video("guitar.mp4")
    out = daskmag.magnify_motion(video, alpha=20, low=72, high=92, fps=600)
    daskmag.write_video(out, "guitar-x20.mp4", video.fps)

Layout: :mod:`daskmag.kernels` (pure NumPy/CuPy array kernels),
:mod:`daskmag.graph` (thin Dask graph builders), :mod:`daskmag.io` (readers
and writers behind one interface each), :mod:`daskmag.settings` (validated
settings objects), :mod:`daskmag.plan` (the block plan), :mod:`daskmag.run`
(a whole job), :mod:`daskmag.cluster` (where it runs).
"""

from ._lazy import lazy_attributes
from .errors import UserError

#: Where each public name lives: loaded on first use (PEP 562), so that
#: ``daskmag.cli`` starts without NumPy, SciPy and Dask (``daskmag info``,
#: ``--help`` and one-line errors in a fraction of a second) and can set
#: the BLAS thread count before NumPy loads (:mod:`daskmag._process`).
_LAZY = {
    "magnify_colour": "graph.colour",
    "magnify_motion": "graph.motion",
    "pyramid_bands": "graph.motion",
    "Reader": "io",
    "Video": "io",
    "VideoInfo": "io",
    "ingest": "io",
    "open_video": "io",
    "probe": "io",
    "write_video": "io",
    "PyramidSpec": "kernels.pyramid",
    "Job": "run",
    "magnify_file": "run",
    "run_job": "run",
    "Band": "settings",
    "ColourSettings": "settings",
    "Execution": "settings",
    "MotionSettings": "settings",
    "OutputSettings": "settings",
    "Selection": "settings",
}


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY)


__version__ = "0.1.0"

__all__ = [
    "Band",
    "ColourSettings",
    "Execution",
    "Job",
    "MotionSettings",
    "OutputSettings",
    "PyramidSpec",
    "Reader",
    "Selection",
    "UserError",
    "Video",
    "VideoInfo",
    "ingest",
    "magnify_colour",
    "magnify_file",
    "magnify_motion",
    "open_video",
    "probe",
    "pyramid_bands",
    "run_job",
    "write_video",
    "__version__",
]
