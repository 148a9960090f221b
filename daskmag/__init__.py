"""daskmag: phase-based video motion magnification on Dask.

Reveal motion too small to see (Wadhwa et al., SIGGRAPH 2013), in footage of
any length, on a laptop or a cluster.  Everything is lazy until written::

    import daskmag
    video = daskmag.open_video("guitar.mp4")
    out = daskmag.magnify_motion(video, alpha=20, low=72, high=92, fps=600)
    daskmag.write_video(out, "guitar-x20.mp4", video.fps)
"""

from .errors import UserError
from .io import Video, VideoInfo, open_video, probe
from .write import ingest, write_video
from .colour import magnify_colour
from .magnify import magnify_motion, pyramid_bands
from .pyramid import PyramidSpec
from .run import magnify_file

__version__ = "0.1.0"

__all__ = [
    "PyramidSpec",
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
    "write_video",
    "__version__",
]
