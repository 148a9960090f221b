"""What a job is asked to do: small frozen, validated value objects.

Every setting of ``daskmag magnify`` lives in one of these, with its default
in one place.  Each object checks itself on construction and raises a
:class:`~daskmag.errors.UserError` with a one-line reason, so a mistake is
reported before any work starts, whether it came from the command line or
from Python.  Checks that need the frame size or the frame count (a region
inside the frame, a pyramid that fits, a band below Nyquist at the file's
rate) are made by :func:`daskmag.plan.plan_job`, which also returns the block
plan the graph builders use.

Objects serialise to plain JSON (:meth:`to_dict`); the parts folder of an
interrupted run records them, so a resumed run can check it is the same job,
and reports can list them.

========================  ====================================================
object                    settings
========================  ====================================================
:class:`Band`             temporal pass band and the recording rate
:class:`MotionSettings`   phase-based motion magnification (Wadhwa et al. 2013)
:class:`ColourSettings`   linear colour magnification (Wu et al. 2012)
:class:`Selection`        which frames and pixels: range, scale, region
:class:`OutputSettings`   container options, overwrite, restart
:class:`Execution`        where and in what blocks it runs
========================  ====================================================
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from fractions import Fraction

from .errors import UserError
from .kernels.pyramid import PYRAMID_KINDS, PyramidSpec
from .kernels.temporal import (DEFAULT_WINDOW, FILTER_KINDS, FIRFilter, TemporalFilter, make_filter,
                               reference_highpass)

#: Rules for a variable-rate input (``--timing``): keep every frame, or resample by timestamp.
TIMING_RULES = ("keep", "resample")
#: What :func:`daskmag.io.ffmpeg.read_frames` does with a frame that cannot be decoded.
ON_CORRUPT = ("stop", "repeat")
#: Magnification modes.
MODES = ("motion", "colour")
#: Devices kernels can run on.
DEVICES = ("cpu", "cuda")
#: x264's constant-rate-factor range (8-bit).
CRF_RANGE = (0, 51)
#: Default H.264 constant-rate factor (x264 takes fractions): with the
#: cheaper analysis of ``daskmag.io.encode.X264_OPTIONS`` (no trellis, sub-pixel
#: refinement 4), 15.8 matches or beats the PSNR that 16 gave with the
#: preset's own, on every clip measured (docs/benchmarks.md, "H.264 output").
DEFAULT_CRF = 15.8


def _finite(value, name: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise UserError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise UserError(f"{name} must be a finite number, got {value!r}")
    return number


def _whole(value, name: str, minimum: int | None = None, maximum: int | None = None,
           allow_none: bool = True) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise UserError(f"{name} must be a whole number, got {value!r}")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise UserError(f"{name} must be a whole number, got {value!r}") from None
    if minimum is not None and number < minimum:
        if maximum is not None:
            raise UserError(f"{name} must be from {minimum} to {maximum}, got {number}")
        raise UserError(f"{name} must be at least {minimum}, got {number}")
    if maximum is not None and number > maximum:
        raise UserError(f"{name} must be from {minimum} to {maximum}, got {number}")
    return number


def _crf(value) -> int | float:
    """x264's constant-rate factor: a number in :data:`CRF_RANGE` (fractions allowed)."""
    if isinstance(value, bool):
        raise UserError(f"--crf must be a number, got {value!r}")
    number = _finite(value, "--crf")
    if not CRF_RANGE[0] <= number <= CRF_RANGE[1]:
        raise UserError(f"--crf must be from {CRF_RANGE[0]} to {CRF_RANGE[1]}, got {value}")
    return int(number) if float(number).is_integer() else float(number)


def _set(obj, name, value):
    object.__setattr__(obj, name, value)  # frozen: normalised once, in __post_init__


class _Settings:
    """JSON round trip shared by the settings objects."""

    def to_dict(self) -> dict:
        """Plain JSON-able values (fractions as ``"num/den"``, pyramids as dicts)."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Fraction):
                value = f"{value.numerator}/{value.denominator}"
            elif isinstance(value, PyramidSpec):
                value = dataclasses.asdict(value)
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict):
        kwargs = dict(data)
        if "pyramid" in kwargs and isinstance(kwargs["pyramid"], dict):
            kwargs["pyramid"] = PyramidSpec(**kwargs["pyramid"])
        return cls(**kwargs)


# --------------------------------------------------------------------------- band


@dataclass(frozen=True)
class Band(_Settings):
    """The temporal pass band, in Hz of the recording rate.

    Parameters
    ----------
    low, high : float
        Band edges in Hz, ``0 < low < high``.
    fps : float, optional
        The rate the footage was *recorded* (filmed) at, frames per second;
        ``None`` (or ``-1``, the predecessor's convention) means the file's own
        stored rate, resolved by :meth:`at_rate` once the file is probed.

    Raises
    ------
    UserError
        A non-finite or inverted band, or a rate that is not positive.  The
        band is checked against the rate's Nyquist frequency by :meth:`at_rate`.
    """

    low: float
    high: float
    fps: float | None = None

    def __post_init__(self):
        if self.low is None or self.high is None:
            raise UserError("give the temporal band with --low and --high (Hz)")
        low, high = _finite(self.low, "the low band edge"), _finite(self.high, "the high band edge")
        if low <= 0:
            raise UserError(f"the low frequency must be above 0 Hz, got {low:g}")
        if low >= high:
            raise UserError(f"the low frequency ({low:g} Hz) must be below the high one ({high:g} Hz)")
        _set(self, "low", low)
        _set(self, "high", high)
        fps = self.fps
        if fps is not None:
            fps = _finite(fps, "--fps")
            if fps == -1:
                fps = None
            elif fps <= 0:
                raise UserError(f"the frame rate must be positive, got {fps:g}")
        _set(self, "fps", fps)

    def at_rate(self, stored_fps) -> Band:
        """This band with its recording rate resolved (``stored_fps`` if none was given).

        Raises
        ------
        UserError
            The band reaches the rate's Nyquist frequency.
        """
        fps = self.fps if self.fps is not None else float(stored_fps or 0)
        if not fps or fps <= 0 or not math.isfinite(fps):
            raise UserError(f"the frame rate must be positive, got {fps}")
        nyquist = fps / 2.0
        if self.high >= nyquist:
            hint = (f"choose a band below {nyquist:g} Hz" if self.fps is not None else
                    "if the footage was filmed faster than it is stored, give the real rate with --fps "
                    "(e.g. --fps 600)")
            raise UserError(f"the band {self.low:g}-{self.high:g} Hz reaches the Nyquist frequency "
                            f"({nyquist:g} Hz) of {fps:g} fps; {hint}")
        return dataclasses.replace(self, fps=fps)

    def check_duration(self, n_frames: int) -> None:
        """Refuse a clip shorter than one period of the band's upper edge.

        No oscillation in the band completes within such a clip, so its
        filtered phase would come from the clip-end prediction alone; and a
        time-domain filter for a band that low reaches far past the clip
        (1-2 Hz at 20,000 fps: 36,254 frames each side), so every
        coefficient's series would be padded to tens of thousands of samples.

        Parameters
        ----------
        n_frames : int
            Frames to process, at this band's recording rate (:meth:`at_rate`).

        Raises
        ------
        UserError
            One line with the clip's and the period's durations.
        """
        if self.fps is None:
            return
        if n_frames * self.high < self.fps:  # n_frames < fps / high, exactly
            raise UserError(f"{n_frames} frames at {self.fps:g} fps ({_duration(n_frames / self.fps)}) are shorter "
                            f"than one period of the band's upper edge ({self.high:g} Hz: "
                            f"{_duration(1.0 / self.high)}): no motion in the band can show; use more frames "
                            f"or a higher band")


def _duration(seconds: float) -> str:
    """``4.8 ms``, ``1.5 s``: three significant digits."""
    return f"{seconds * 1e3:.3g} ms" if seconds < 1 else f"{seconds:.3g} s"


# --------------------------------------------------------------------------- modes


@dataclass(frozen=True)
class MotionSettings(_Settings):
    """Phase-based motion magnification (Wadhwa, Rubinstein, Durand & Freeman, SIGGRAPH 2013).

    Parameters
    ----------
    alpha : float
        In-band motion becomes ``1 + alpha`` times as large (MIT's
        convention); negative attenuates, ``-1`` removes it.
    filter : {"fir", "ideal", "butter", "diff-iir", "window"}
        Temporal band-pass of the phase (:func:`daskmag.kernels.temporal.make_filter`).
    taps : int, optional
        Length of ``fir`` (default from the band) or the window of ``window``
        (default 30), in frames; at least 3.
    order : int
        Order of ``butter``, 1 to 10.
    causal : bool
        ``butter`` forwards only (response ``H``, delayed) instead of
        forward-backward (``|H|**2``, zero-phase).
    pyramid : PyramidSpec
        Spatial decomposition (default: octave, 4 orientations).
    sigma : float
        Amplitude-weighted Gaussian smoothing of the phase, in pixels (MIT's sigma), >= 0.
    attenuate_other : bool
        Remove motion outside the band (MIT's attenuateOtherFreq).
    decimate : int or "auto", optional
        Magnify every ``decimate``-th frame's worth of the clip, low-passed in
        time, and interpolate the change back to every frame
        (:func:`daskmag.graph.highrate.magnify_motion_decimated`): for narrow
        bands at very high recording rates, whose full-rate filter would need
        thousands of taps.  ``"auto"``: the largest factor that keeps 8
        samples per period of the band's high edge; None or 1: off.

    Raises
    ------
    UserError
        A setting out of range, or one that the chosen filter does not use.
    """

    alpha: float = 10.0
    filter: str = "fir"
    taps: int | None = None
    order: int = 2
    causal: bool = False
    pyramid: PyramidSpec = field(default_factory=PyramidSpec)
    sigma: float = 0.0
    attenuate_other: bool = False
    decimate: int | str | None = None

    mode = "motion"

    def __post_init__(self):
        _set(self, "alpha", _finite(self.alpha, "alpha"))
        if self.filter not in FILTER_KINDS:
            raise UserError(f"unknown temporal filter {self.filter!r}: use one of {', '.join(FILTER_KINDS)}")
        _set(self, "taps", _whole(self.taps, "--taps"))
        if self.taps is not None and self.taps < 3:
            raise UserError(f"the temporal filter needs at least 3 taps, got {self.taps}")
        _set(self, "order", _whole(self.order, "--order", allow_none=False))
        sigma = _finite(self.sigma, "sigma")
        if sigma < 0:
            raise UserError(f"sigma must be a number of pixels >= 0, got {sigma:g}")
        _set(self, "sigma", sigma)
        if self.filter == "butter" and not 1 <= self.order <= 10:
            raise UserError(f"the Butterworth order must be 1 to 10, got {self.order}")
        if self.causal and self.filter != "butter":
            raise UserError("--causal applies to --filter butter (diff-iir is always causal, "
                            "fir/ideal/window are zero-phase)")
        if self.taps is not None and self.filter in ("ideal", "butter", "diff-iir"):
            raise UserError(f"--taps/-ws sets the length of --filter fir or window, not {self.filter}")
        pyramid = self.pyramid
        if isinstance(pyramid, str):
            pyramid = PyramidSpec(pyramid)
        if not isinstance(pyramid, PyramidSpec):
            raise UserError(f"pyramid must be a PyramidSpec or one of {', '.join(PYRAMID_KINDS)}")
        _set(self, "pyramid", pyramid)
        _set(self, "causal", bool(self.causal))
        _set(self, "attenuate_other", bool(self.attenuate_other))
        if self.decimate is not None and self.decimate != "auto":
            _set(self, "decimate", _whole(self.decimate, "--decimate", 1))
            if self.decimate == 1:
                _set(self, "decimate", None)

    def temporal_filters(self, band: Band) -> tuple[TemporalFilter, TemporalFilter | None]:
        """The band-pass and, with ``attenuate_other``, the reference high-pass, at ``band``'s rate."""
        if band.fps is None:
            raise ValueError("resolve the band's rate first (Band.at_rate)")
        temporal = make_filter(self.filter, band.low, band.high, band.fps, taps=self.taps,
                               order=self.order, causal=self.causal)
        reference = reference_highpass(band.low, band.fps) if self.attenuate_other else None
        return temporal, reference


@dataclass(frozen=True)
class ColourSettings(_Settings):
    """Linear colour magnification (Wu, Rubinstein, Shih, Guttag, Durand & Freeman, SIGGRAPH 2012).

    Parameters
    ----------
    alpha : float
        A colour change in the band becomes ``1 + alpha`` times as large.
    level : int
        Gaussian-pyramid level the colour is averaged to (each halves the size), >= 0.
    chroma_attenuation : float
        Factor on the I/Q (chroma) amplification, >= 0 (0: luminance only).
    taps : int, optional
        Length of the zero-phase FIR band-pass (default from the band), >= 3.

    Raises
    ------
    UserError
        A setting out of range.
    """

    alpha: float = 10.0
    level: int = 4
    chroma_attenuation: float = 1.0
    taps: int | None = None

    mode = "colour"

    def __post_init__(self):
        _set(self, "alpha", _finite(self.alpha, "alpha"))
        _set(self, "level", _whole(self.level, "the pyramid level (--level)", 0, allow_none=False))
        chroma = _finite(self.chroma_attenuation, "chroma attenuation")
        if chroma < 0:
            raise UserError(f"chroma attenuation must be a number from 0 (usually up to 1), got {chroma:g}")
        _set(self, "chroma_attenuation", chroma)
        _set(self, "taps", _whole(self.taps, "--taps"))
        if self.taps is not None and self.taps < 3:
            raise UserError(f"the temporal filter needs at least 3 taps, got {self.taps}")

    def temporal_filter(self, band: Band) -> TemporalFilter:
        """The zero-phase FIR band-pass at ``band``'s rate, its clip ends predicted from one filter length."""
        if band.fps is None:
            raise ValueError("resolve the band's rate first (Band.at_rate)")
        return FIRFilter(make_filter("fir", band.low, band.high, band.fps, taps=self.taps).taps,
                         prediction_cap=None)


# --------------------------------------------------------------------------- selection


def frame_index(value, fps, name: str = "--start") -> int:
    """A frame index from frames (``120``, ``"120"``) or seconds (``"2.5s"``).

    Seconds are on the stored file's time line, first frame at 0 s, at the
    stored rate ``fps``; they give the first frame shown at or after that
    time (as ``ffmpeg -ss``), so ``start="2s", end="3s"`` is one second of
    frames whatever the rate.

    Raises
    ------
    UserError
        Neither a whole number nor a number of seconds.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        return int(value)
    if hasattr(value, "__index__") and not isinstance(value, (bool, str)):
        return int(value)
    text = value.strip() if isinstance(value, str) else None
    try:
        if text and text.endswith("s"):
            return math.ceil(Fraction(text[:-1]) * Fraction(fps))
        return int(text)
    except (TypeError, ValueError, ZeroDivisionError):
        raise UserError(f"{name} must be frames (e.g. 120) or seconds (e.g. 2.5s), got {value!r}") from None


def frame_range(n_frames: int, fps, start=None, end=None, max_frames: int | None = None) -> tuple[int, int]:
    """Frames ``[first, stop)`` to process, checked against the video's length.

    Parameters
    ----------
    n_frames : int
        Frames in the video.
    fps : Fraction
        Its stored frame rate (for times in seconds, see :func:`frame_index`).
    start, end : int or str, optional
        First frame and the frame after the last (default: the whole video).
    max_frames : int, optional
        At most this many frames, counted from ``start``.

    Raises
    ------
    UserError
        A malformed value, a range outside the video, or ``start >= end``.
    """
    first = 0 if start is None else frame_index(start, fps, "--start")
    stop = n_frames if end is None else frame_index(end, fps, "--end")
    length = f"the video has {n_frames} frames ({float(n_frames / fps):.3f} s)" if fps else \
        f"the video has {n_frames} frames"
    if not 0 <= first < n_frames:
        raise UserError(f"--start {start} is frame {first}, outside the video: {length}")
    if not 0 < stop <= n_frames:
        raise UserError(f"--end {end} is frame {stop}, outside the video: {length}")
    if first >= stop:
        raise UserError(f"--start (frame {first}) must come before --end (frame {stop})")
    if max_frames is not None:
        max_frames = _whole(max_frames, "--max-frames", 1)
        stop = min(stop, first + int(max_frames))
    return first, stop


def parse_roi(text) -> tuple[int, int, int, int]:
    """``"x,y,w,h"`` (or a sequence of four) as four integers, with ``w, h >= 1`` and ``x, y >= 0``.

    Raises
    ------
    UserError
        Not four whole numbers, or a region with no pixels.
    """
    parts = text.split(",") if isinstance(text, str) else list(text)
    try:
        if len(parts) != 4:
            raise ValueError
        x, y, w, h = (int(str(p).strip()) for p in parts)
    except (TypeError, ValueError):
        raise UserError(f"--roi must be x,y,w,h in pixels (e.g. 100,50,320,240), got {text!r}") from None
    if w < 1 or h < 1:
        raise UserError(f"--roi {x},{y},{w},{h} has no pixels (width and height must be at least 1)")
    if x < 0 or y < 0:
        raise UserError(f"--roi {x},{y},{w},{h} starts outside the frame (x and y must be at least 0)")
    return x, y, w, h


def check_roi(roi, height: int, width: int) -> tuple[int, int, int, int]:
    """The region ``(x, y, w, h)``, checked to lie inside a ``width`` x ``height`` frame."""
    x, y, w, h = parse_roi(roi)
    if x + w > width or y + h > height:
        raise UserError(f"--roi {x},{y},{w},{h} reaches outside the {width}x{height} frame")
    return x, y, w, h


def scaled_size(size: int, factor: float) -> int:
    """``round(factor * size)``, halves rounded up (MIT's ``scaleVideo``)."""
    return math.floor(factor * size + 0.5)


def check_scale(factor: float, height: int, width: int) -> tuple[int, int]:
    """The (height, width) after scaling by ``factor``; a :class:`UserError` if unusable."""
    if factor is None or not math.isfinite(factor) or not 0 < factor <= 1:
        raise UserError(f"--scale must be above 0 and at most 1, got {factor}")
    size = scaled_size(height, factor), scaled_size(width, factor)
    if min(size) < 1:
        raise UserError(f"--scale {factor:g} leaves no pixels of a {width}x{height} frame")
    return size


def scale_roi(roi, factor: float) -> tuple[int, int, int, int]:
    """A region of the input frame in pixels of the frame scaled by ``factor``."""
    x, y, w, h = roi
    left, top = scaled_size(x, factor), scaled_size(y, factor)
    right, bottom = scaled_size(x + w, factor), scaled_size(y + h, factor)
    return left, top, max(right - left, 1), max(bottom - top, 1)


@dataclass(frozen=True)
class Selection(_Settings):
    """Which frames and pixels to process: a time range, a scale, a region.

    Parameters
    ----------
    start, end : int or str, optional
        Frames ``[start, end)``: frame numbers or seconds (``"2.5s"``) of the
        stored time line (:func:`frame_index`).
    max_frames : int, optional
        At most this many frames from ``start``, >= 1.
    scale : float
        Resize factor, ``0 < scale <= 1`` (MIT's scaleVideo).
    roi : (x, y, w, h), optional
        Region to magnify, in pixels of the input frame (a string
        ``"x,y,w,h"`` is parsed).
    on_corrupt : {"stop", "repeat"}
        A frame that cannot be decoded stops the run, or shows the previous one.
    stream : int, optional
        Which video stream of the input (0 = the first, the default).
    timing : {"keep", "resample"}
        A variable-rate input: keep every stored frame once, in order
        (default), or resample it by timestamp onto a constant grid.

    Raises
    ------
    UserError
        A malformed or out-of-range value (the range and the region are
        checked against the video by :meth:`frames` and :func:`daskmag.plan.plan_job`).
    """

    start: int | str | None = None
    end: int | str | None = None
    max_frames: int | None = None
    scale: float = 1.0
    roi: tuple[int, int, int, int] | None = None
    on_corrupt: str = "stop"
    stream: int | None = None
    timing: str = "keep"

    def __post_init__(self):
        _set(self, "stream", _whole(self.stream, "--stream", 0))
        if self.timing not in TIMING_RULES:
            raise UserError(f"--timing must be one of {', '.join(TIMING_RULES)}, got {self.timing!r}")
        for name in ("start", "end"):
            value = getattr(self, name)
            if value is not None:
                frame_index(value, 1, f"--{name}")  # well-formed; range checked against the video later
        _set(self, "max_frames", _whole(self.max_frames, "--max-frames", 1))
        scale = _finite(self.scale, "--scale")
        if not 0 < scale <= 1:
            raise UserError(f"--scale must be above 0 and at most 1, got {scale:g}")
        _set(self, "scale", scale)
        if self.roi is not None:
            _set(self, "roi", parse_roi(self.roi))
        if self.on_corrupt not in ON_CORRUPT:
            raise UserError(f"on_corrupt must be one of {', '.join(ON_CORRUPT)}, got {self.on_corrupt!r}")

    def frames(self, n_frames: int, fps) -> tuple[int, int]:
        """Frames ``[first, stop)`` of a video of ``n_frames`` at stored rate ``fps``."""
        return frame_range(n_frames, fps, self.start, self.end, self.max_frames)


# --------------------------------------------------------------------------- output and execution


@dataclass(frozen=True)
class OutputSettings(_Settings):
    """How the output is written.

    Parameters
    ----------
    crf : float
        H.264 constant-rate factor for ``.mp4``/``.mov``, 0 (lossless) to 51,
        fractions allowed; the default, :data:`DEFAULT_CRF` (15.8), is
        visually lossless.
    overwrite : bool
        Replace an existing output.
    restart : bool
        Discard the finished blocks of an interrupted run instead of resuming it.
    side_by_side : bool
        Write the input and the result next to each other, each labelled.
    playback_fps : float, optional
        Frame rate the output plays at, frames per second (default: the
        input's stored rate; 30 for raw camera files and image sequences).
        Separate from the recording rate (``Band.fps``) the filters use.

    Raises
    ------
    UserError
        ``crf`` out of range, or a playback rate that is not positive.
    """

    crf: float = DEFAULT_CRF
    overwrite: bool = False
    restart: bool = False
    side_by_side: bool = False
    playback_fps: float | None = None

    def __post_init__(self):
        _set(self, "crf", _crf(self.crf))
        if self.playback_fps is not None:
            rate = _finite(self.playback_fps, "--playback-fps")
            if rate <= 0:
                raise UserError(f"--playback-fps must be positive, got {rate:g}")
            _set(self, "playback_fps", rate)
        _set(self, "overwrite", bool(self.overwrite))
        _set(self, "restart", bool(self.restart))
        _set(self, "side_by_side", bool(self.side_by_side))


@dataclass(frozen=True)
class Execution(_Settings):
    """Where the work runs and in what blocks.

    Parameters
    ----------
    workers : int, optional
        Local workers (default: one per core), >= 1.
    scheduler : str, optional
        Address of a running Dask scheduler (then no local cluster).
    processes : bool
        Local workers as processes instead of threads.
    device : {"cpu", "cuda"}
        Where the kernels run.
    time_chunk : int, optional
        Frames per time block (default: planned from memory), >= 1.
    tile : int, optional
        Spatial tile size in pixels, >= 16, or 0 for whole frames (default:
        512 above 1024x1024 pixels; whole frames on a GPU).
    gpus : int or tuple of int, optional
        With ``device="cuda"`` and no ``scheduler``: how many GPUs (the first
        N) or which ones (device numbers, ``"0,2"`` is parsed); default all
        (:mod:`daskmag.gpu`).

    Raises
    ------
    UserError
        A value out of range.
    """

    workers: int | None = None
    scheduler: str | None = None
    processes: bool = False
    device: str = "cpu"
    time_chunk: int | None = None
    tile: int | None = None
    gpus: int | tuple[int, ...] | None = None

    def __post_init__(self):
        _set(self, "workers", _whole(self.workers, "--workers", 1))
        _set(self, "gpus", parse_gpus(self.gpus))
        if self.gpus is not None and self.device != "cuda":
            raise UserError("--gpus applies to --accel cuda")
        if self.gpus is not None and self.scheduler is not None:
            raise UserError("--gpus applies to a local cluster; with --scheduler the GPU workers "
                            "started with `dask cuda worker` decide")
        if self.device == "cuda" and self.workers is not None:
            raise UserError("--workers applies to --accel cpu; with --accel cuda there is one worker "
                            "per GPU (choose them with --gpus)")
        _set(self, "time_chunk", _whole(self.time_chunk, "--time-chunk", 1))
        tile = _whole(self.tile, "--tile", 0)
        if tile is not None and 0 < tile < 16:
            raise UserError(f"--tile must be 0 (whole frames) or at least 16 pixels, got {tile}")
        _set(self, "tile", tile)
        if self.device not in DEVICES:
            raise UserError(f"unknown device {self.device!r}: use one of {', '.join(DEVICES)}")
        if self.scheduler is not None and not str(self.scheduler).strip():
            raise UserError("--scheduler needs an address (tcp://host:8786)")
        _set(self, "processes", bool(self.processes))


def parse_gpus(value) -> int | tuple[int, ...] | None:
    """``--gpus``: a count (``2``: the first two GPUs) or device numbers (``"0,2"``, ``[0, 2]``).

    Raises
    ------
    UserError
        Not a positive count nor a list of distinct device numbers >= 0.
    """
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if "," not in text:
            try:
                value = int(text)
            except ValueError:
                raise UserError(f"--gpus must be a number of GPUs (2) or device numbers (0,2), "
                                f"got {text!r}") from None
        else:
            try:
                value = [int(part) for part in text.split(",")]
            except ValueError:
                raise UserError(f"--gpus must be a number of GPUs (2) or device numbers (0,2), "
                                f"got {text!r}") from None
    if isinstance(value, (list, tuple)):
        devices = tuple(_whole(v, "a --gpus device number", 0, allow_none=False) for v in value)
        if not devices or len(set(devices)) != len(devices):
            raise UserError(f"--gpus device numbers must be distinct, got {','.join(map(str, devices))}")
        return devices
    return _whole(value, "--gpus", 1, allow_none=False)


def mode_settings(mode: str = "motion", **given):
    """The :class:`MotionSettings` or :class:`ColourSettings` for ``mode`` from flat keywords.

    Keywords left at ``None`` take the settings' defaults; a keyword that the
    mode does not use is an error (e.g. ``sigma`` in colour mode), never
    silently ignored.

    Raises
    ------
    UserError
        An unknown mode, or a setting of the other mode.
    """
    mode = {"color": "colour"}.get(mode, mode)
    if mode not in MODES:
        raise UserError(f"unknown mode {mode!r}: use motion or colour")
    cls = MotionSettings if mode == "motion" else ColourSettings
    names = {f.name for f in dataclasses.fields(cls)}
    given = {name: value for name, value in given.items() if value is not None}
    # False and 0 are the defaults of the flags below: passing them is not "using" them
    for name in ("causal", "attenuate_other"):
        if given.get(name) is False:
            given.pop(name)
    if given.get("sigma") == 0:
        given.pop("sigma")
    other = sorted(set(given) - names)
    if other:
        flags = ", ".join("--" + name.replace("_", "-") for name in other)
        owner = "color" if mode == "motion" else "motion"
        raise UserError(f"{flags} {'applies' if len(other) == 1 else 'apply'} to --mode {owner} only")
    return cls(**given)


def pyramid_spec(kind: str | None = None, orientations: int | None = None) -> PyramidSpec:
    """A :class:`PyramidSpec` from ``--pyramid`` and ``--orientations``.

    Raises
    ------
    UserError
        An unknown kind or fewer than one orientation.
    """
    kind = kind or "octave"
    if kind not in PYRAMID_KINDS:
        raise UserError(f"unknown pyramid {kind!r}: use one of {', '.join(PYRAMID_KINDS)}")
    _whole(orientations, "--orientations", 1)
    if kind == "riesz" and orientations not in (None, 1):
        raise UserError("--orientations does not apply to --pyramid riesz (its orientation is measured per pixel)")
    return PyramidSpec(kind, orientations)


__all__ = [
    "Band", "ColourSettings", "DEFAULT_WINDOW", "Execution", "MotionSettings", "OutputSettings",
    "Selection", "check_roi", "check_scale", "frame_index", "frame_range", "mode_settings", "parse_gpus",
    "parse_roi",
    "pyramid_spec",
    "scale_roi", "scaled_size",
]
