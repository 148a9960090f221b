"""The whole measurement, file to folder: what ``daskmag measure`` runs.

Every check on the input and the options runs before any work.  The files
are written into a hidden temporary folder beside the output, which is
renamed to the output's name only when everything is written: a run that
fails or is interrupted never leaves a folder that looks complete.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import shlex
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..kernels.pyramid import PyramidSpec
from .estimator import Region
from .spectrum import Peak, amplitude_spectrum, segment_length, spectral_peaks, suggest_band

#: Files a finished measurement folder holds.
OUTPUT_FILES = ("displacement.csv", "spectrum.csv", "peaks.csv", "displacement.png", "spectrum.png",
                "measure.json")
#: Fewest frames a measurement accepts (a spectrum needs a few periods).
MIN_FRAMES = 8
#: Smallest side of a region, in pixels.
MIN_REGION = 8


@dataclass
class Measurement:
    """What :func:`measure_file` (or :func:`measure_video`) found.

    ``displacement`` is (T, R, 2): ``dx, dy`` in pixels from the first
    frame; ``frequencies`` (F,) in Hz and ``amplitude`` (F, R, 2) in pixels.
    """

    regions: list
    fps: float
    displacement: np.ndarray
    frequencies: np.ndarray
    amplitude: np.ndarray
    peaks: list
    band: tuple | None
    output: Path | None = None
    settings: dict = field(default_factory=dict)

    @property
    def times(self) -> np.ndarray:
        """Seconds of the recording since the first measured frame."""
        return np.arange(len(self.displacement)) / self.fps


def parse_grid(text) -> tuple[int, int]:
    """``"ROWSxCOLS"`` (e.g. ``"2x3"``) as ``(rows, cols)``; a :class:`UserError` if malformed."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", str(text))
    if not match or min(int(match[1]), int(match[2])) < 1:
        raise UserError(f"--grid must be ROWSxCOLS with whole numbers of at least 1 (e.g. 2x3), got {text!r}")
    return int(match[1]), int(match[2])


def make_regions(height: int, width: int, rois=(), grid=None) -> list[Region]:
    """The regions to measure: each ``--roi`` (``roi1``, ``roi2``, ...), then the ``--grid`` cells
    (``r1c1``, ``r1c2``, ...), or the whole frame (``frame``) if neither is given."""
    from ..settings import check_roi, parse_roi

    regions = []
    for k, roi in enumerate(rois or (), start=1):
        x, y, w, h = check_roi(parse_roi(roi) if isinstance(roi, str) else tuple(roi), height, width)
        regions.append(Region(f"roi{k}", x, y, w, h))
    if grid is not None:
        rows, cols = parse_grid(grid) if isinstance(grid, str) else tuple(grid)
        if height // rows < MIN_REGION or width // cols < MIN_REGION:
            raise UserError(f"--grid {rows}x{cols} makes cells smaller than {MIN_REGION} pixels on a "
                            f"{width}x{height} frame")
        ys = [round(i * height / rows) for i in range(rows + 1)]
        xs = [round(j * width / cols) for j in range(cols + 1)]
        for i in range(rows):
            for j in range(cols):
                regions.append(Region(f"r{i + 1}c{j + 1}", xs[j], ys[i], xs[j + 1] - xs[j], ys[i + 1] - ys[i]))
    if not regions:
        regions.append(Region("frame", 0, 0, width, height))
    for region in regions:
        if min(region.w, region.h) < MIN_REGION:
            raise UserError(f"region {region.name} ({region.as_roi()}) is smaller than {MIN_REGION} pixels "
                            f"on a side: too small to measure")
    return regions


def check_output_folder(path, overwrite: bool) -> Path:
    """Validate the output folder before any work: not an existing one (without ``overwrite``),
    not a file, its parent a writable folder."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"output exists and is not a folder: {path}")
    if path.exists() and not overwrite:
        raise UserError(f"output exists: {path} (use --overwrite to replace it)")
    parent = path.absolute().parent
    if not parent.is_dir():
        raise UserError(f"output's parent folder does not exist: {parent}")
    try:
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError:
        raise UserError(f"output's parent folder is not writable: {parent}") from None
    return path


def _check_number(name, value, *, minimum=0.0):
    if value is None:
        return None
    if not math.isfinite(value) or value <= minimum:
        raise UserError(f"{name} must be a number above {minimum:g}, got {value:g}")
    return float(value)


def measure_video(video, fps: float, regions, *, pyramid: PyramidSpec | None = None,
                  segment: int | None = None, client=None, time_chunk: int | None = None,
                  min_blocks: int = 1, progress=None, frequency: str = "local") -> Measurement:
    """Measure ``video`` (a :class:`~daskmag.io.Video` or (T, H, W, 3) array) in ``regions``.

    Builds the lazy graph (:func:`daskmag.measure.graph.region_steps`),
    computes it on ``client`` (or the default scheduler), block by block with
    ``progress(frames)`` called as blocks finish, and derives the spectrum,
    the peaks and the suggested band.
    """
    from .graph import region_steps

    steps = region_steps(video, regions, pyramid, time_chunk=time_chunk, min_blocks=min_blocks,
                         frequency=frequency)
    blocks = steps.to_delayed().ravel()
    sizes = steps.chunks[0]
    if client is not None:
        from distributed import as_completed

        futures = client.compute(list(blocks))
        index = {f.key: k for k, f in enumerate(futures)}
        results = [None] * len(futures)
        for future in as_completed(futures):
            k = index[future.key]
            results[k] = future.result()
            if progress:
                progress(sizes[k] + (1 if k == 0 else 0))
            future.release()
    else:
        import dask

        results = list(dask.compute(*blocks))
        if progress:
            progress(sum(sizes) + 1)
    steps_all = np.concatenate([np.zeros((1, len(regions), 2))] + results)
    moved = np.cumsum(steps_all, axis=0)
    frequencies, amplitude = amplitude_spectrum(moved, fps, segment)
    peaks = []
    for r, region in enumerate(regions):
        for k, direction in enumerate("xy"):
            peaks += spectral_peaks(frequencies, amplitude[:, r, k], region=region.name, direction=direction)
    peaks.sort(key=lambda p: -p.amplitude_px)
    resolution = float(frequencies[1] - frequencies[0]) if len(frequencies) > 1 else 0.0
    band = suggest_band(peaks, fps, resolution=resolution)
    return Measurement(list(regions), float(fps), moved, frequencies, amplitude, peaks, band)


def measure_file(source, output, *, fps: float | None = None, rois=(), grid=None,
                 mm_per_px: float | None = None, start=None, end=None, segment: int | None = None,
                 pyramid: PyramidSpec | None = None, workers: int | None = None,
                 scheduler: str | None = None, overwrite: bool = False, progress: bool = True,
                 quiet: bool = False, client=None, time_chunk: int | None = None,
                 plots: bool = True) -> Measurement:
    """Measure the motion in a video file (or ingested store) and write the results to a folder.

    Parameters
    ----------
    source : str or Path
        A video file or an ingested ``.zarr`` store.
    output : str or Path
        Folder to create: ``displacement.csv``, ``spectrum.csv``,
        ``peaks.csv``, ``displacement.png``, ``spectrum.png``,
        ``measure.json`` (see ``docs/measure.md``).
    fps : float, optional
        The rate the footage was filmed at (default: the file's own); all
        frequencies and times are in this rate.
    rois : sequence of "x,y,w,h" or (x, y, w, h)
        Regions ``roi1``, ``roi2``, ... in pixels of the frame.
    grid : "ROWSxCOLS" or (rows, cols), optional
        Also measure each cell of a grid over the frame (``r1c1``, ...).
        Without ``rois`` and ``grid`` the whole frame (``frame``) is measured.
    mm_per_px : float, optional
        Scale of the scene: adds ``dx_mm, dy_mm`` and ``amplitude_mm`` columns.
    start, end : int or str, optional
        Frames ``[start, end)``, as :func:`daskmag.settings.frame_range`.
    segment : int, optional
        Welch segment length in frames (default: 1024, at most the clip).
    pyramid : PyramidSpec, optional
        Default: octave bands, 4 orientations.
    workers, scheduler, client
        Local workers, a running scheduler's address, or a client to use.
    overwrite : bool
        Replace an existing output folder (only once the new one is complete).
    plots : bool
        Write the two PNG figures (needs matplotlib).

    Returns
    -------
    Measurement
    """
    from ..cluster import dask_client, worker_threads
    from ..io import open_video, probe
    from ..settings import frame_range

    info = probe(source)
    first, stop = frame_range(info.n_frames, info.fps, start, end)
    rate = float(info.fps) if fps is None or fps == -1 else _check_number("--fps", fps)
    mm_per_px = _check_number("--mm-per-px", mm_per_px)
    if stop - first < MIN_FRAMES:
        raise UserError(f"measuring needs at least {MIN_FRAMES} frames, the range has {stop - first}")
    if segment is not None and segment < MIN_FRAMES:
        raise UserError(f"--segment must be at least {MIN_FRAMES} frames, got {segment}")
    if workers is not None and workers < 1:
        raise UserError(f"--workers must be at least 1, got {workers}")
    if min(info.height, info.width) < 16:
        raise UserError(f"frames of {info.width}x{info.height} are too small for a pyramid (need 16x16)")
    regions = make_regions(info.height, info.width, rois, grid)
    output = check_output_folder(output, overwrite)
    spec = pyramid or PyramidSpec()
    if plots:
        import matplotlib  # noqa: F401  (fail before the work, not after)

    def run(client):
        from ..run import progress_bar

        video = open_video(source, start=first, end=stop)
        began = time.perf_counter()
        with progress_bar(stop - first, progress) as bar:
            result = measure_video(video, rate, regions, pyramid=spec, segment=segment, client=client,
                                   time_chunk=time_chunk, min_blocks=worker_threads(client),
                                   progress=bar.update)
        seconds = time.perf_counter() - began
        result.settings = {
            "fps": rate, "rois": [r.as_roi() for r in regions if r.name.startswith("roi")],
            "grid": None if grid is None else "x".join(map(str, parse_grid(grid) if isinstance(grid, str)
                                                              else tuple(grid))),
            "mm_per_px": mm_per_px, "start_frame": first, "end_frame": stop,
            "segment_frames": segment_length(stop - first, segment),
            "pyramid": {"kind": spec.kind, "orientations": spec.orientations, "levels": spec.levels},
            "frequency": "local", "window": "flattop", "workers": workers, "scheduler": scheduler,
        }
        result.output = write_outputs(result, output, info=info, source=source, mm_per_px=mm_per_px,
                                      overwrite=overwrite, plots=plots, seconds=seconds)
        return result

    if client is not None:
        return run(client)
    from ..run import default_dashboard

    dashboard = default_dashboard(stop - first, info.height, info.width)  # as magnify's
    with dask_client(workers, scheduler, quiet=quiet, dashboard=dashboard) as new_client:
        return run(new_client)


def magnify_command(result: Measurement, source, alpha: float = 20.0) -> str | None:
    """A ready ``daskmag magnify`` command line for the suggested band (None without one)."""
    if result.band is None:
        return None
    low, high = result.band
    source = Path(source)
    out = Path(f"{source.stem}-x{alpha:g}.mp4")  # in the current folder: never beside a shared input
    words = ["daskmag", "magnify", str(source), "-o", str(out), "--alpha", f"{alpha:g}",
             "--low", f"{low:g}", "--high", f"{high:g}", "--fps", f"{result.fps:g}"]
    strongest = result.peaks[0]
    region = next(r for r in result.regions if r.name == strongest.region)
    if region.name != "frame":
        words += ["--roi", region.as_roi()]
    return shlex.join(words)


def _number(value) -> str:
    return f"{value:.6g}"


def _write_csv(path: Path, header, rows):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def write_outputs(result: Measurement, output, *, info=None, source=None, mm_per_px=None,
                  overwrite: bool = False, plots: bool = True, seconds: float | None = None) -> Path:
    """Write the measurement's files into ``output`` (a folder), atomically (see the module's notes)."""
    output = Path(output)
    parent = output.absolute().parent
    tmp = Path(tempfile.mkdtemp(prefix=f".{output.name}.partial-", dir=parent))
    try:
        _write_files(result, tmp, info=info, source=source, mm_per_px=mm_per_px, plots=plots,
                     seconds=seconds)
        if output.exists():
            if not overwrite:
                raise UserError(f"output exists: {output} (use --overwrite to replace it)")
            old = Path(tempfile.mkdtemp(prefix=f".{output.name}.old-", dir=parent))
            os.replace(output, old / output.name)
            os.replace(tmp, output)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, output)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return output


def _write_files(result: Measurement, folder: Path, *, info, source, mm_per_px, plots, seconds):
    names = [r.name for r in result.regions]
    mm = mm_per_px is not None
    header = ["time_s", "region", "dx_px", "dy_px"] + (["dx_mm", "dy_mm"] if mm else [])
    rows = []
    for t, time_s in enumerate(result.times):
        for r, name in enumerate(names):
            dx, dy = result.displacement[t, r]
            row = [_number(time_s), name, _number(dx), _number(dy)]
            if mm:
                row += [_number(dx * mm_per_px), _number(dy * mm_per_px)]
            rows.append(row)
    _write_csv(folder / "displacement.csv", header, rows)
    rows = [[_number(f), name, _number(result.amplitude[i, r, 0]), _number(result.amplitude[i, r, 1])]
            for i, f in enumerate(result.frequencies) for r, name in enumerate(names)]
    _write_csv(folder / "spectrum.csv", ["frequency_hz", "region", "amplitude_x_px", "amplitude_y_px"], rows)
    header = ["region", "direction", "frequency_hz", "amplitude_px"] + (["amplitude_mm"] if mm else [])
    rows = [[p.region, p.direction, _number(p.frequency_hz), _number(p.amplitude_px)]
            + ([_number(p.amplitude_px * mm_per_px)] if mm else []) for p in result.peaks]
    _write_csv(folder / "peaks.csv", header, rows)
    if plots:
        from .plots import plot_displacement, plot_spectrum

        plot_displacement(result, folder / "displacement.png")
        plot_spectrum(result, folder / "spectrum.png")
    command = magnify_command(result, source) if source is not None else None
    description = None
    if info is not None:
        description = {"path": str(info.path), "frames": info.n_frames, "width": info.width,
                       "height": info.height, "stored_fps": float(info.fps),
                       "codec": getattr(info, "codec", None)}
    resolution = float(result.frequencies[1] - result.frequencies[0]) if len(result.frequencies) > 1 else None
    document = {
        "input": description,
        "settings": result.settings,
        "regions": [asdict(r) for r in result.regions],
        "frames_measured": int(len(result.displacement)),
        "frequency_resolution_hz": resolution,
        "peaks": [asdict(p) | ({"amplitude_mm": p.amplitude_px * mm_per_px} if mm else {})
                  for p in result.peaks],
        "suggested_band_hz": None if result.band is None else list(result.band),
        "magnify_command": command,
        "compute_seconds": seconds,
        "units": {"displacement": "pixels (+x right, +y down) from the first measured frame",
                  "time": "seconds of the recording (at settings.fps) since the first measured frame",
                  "amplitude": "pixels: A for a motion A sin(2 pi f t) (Welch, flat-top window)"},
    }
    with open(folder / "measure.json", "w") as handle:
        json.dump(document, handle, indent=2, default=_json_default)
        handle.write("\n")


def _json_default(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def say_result(result: Measurement, source, file=sys.stdout):
    """Print the peaks and the ready ``magnify`` command (what the CLI shows)."""
    print(f"wrote {result.output}: {len(result.displacement)} frames, {len(result.regions)} region(s)",
          file=sys.stderr)
    if not result.peaks:
        print("no peak stands above the noise floor", file=file)
        return
    for peak in result.peaks[:5]:
        print(f"peak: {peak.region} {peak.direction} {peak.frequency_hz:.4g} Hz, {peak.amplitude_px:.3g} px",
              file=file)
    low, high = result.band
    print(f"suggested band: {low:g}-{high:g} Hz", file=file)
    print(magnify_command(result, source), file=file)
