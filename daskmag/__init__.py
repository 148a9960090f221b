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

from .errors import UserError
from .graph.colour import magnify_colour
from .graph.motion import magnify_motion, pyramid_bands
from .io import Reader, Video, VideoInfo, ingest, open_video, probe, write_video
from .kernels.pyramid import PyramidSpec
from .run import Job, magnify_file, run_job
from .settings import Band, ColourSettings, Execution, MotionSettings, OutputSettings, Selection

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
