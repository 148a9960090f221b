"""``daskmag measure``: its sub-parser and what it runs."""

from __future__ import annotations

import argparse


def _number(text):
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def _whole(text):
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def add_parser(sub):
    """Add the ``measure`` sub-command to ``sub`` (an argparse sub-parsers object)."""
    from ..kernels.pyramid import PYRAMID_KINDS

    p = sub.add_parser(
        "measure",
        help="measure the motion: displacement, spectrum, peaks and a band to magnify",
        description=(
            "Measure each region's motion from the local phase of the complex steerable pyramid: "
            "displacement from the first frame (pixels, +x right, +y down), its amplitude spectrum, "
            "the peaks above the noise floor, and a band for 'daskmag magnify'. Writes DIR/"
            "displacement.csv, spectrum.csv, peaks.csv, displacement.png, spectrum.png, measure.json."
        ),
    )
    p.add_argument("input", help="video file or ingested .zarr store")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder (created)")
    p.add_argument("-f", "--fps", type=_number, default=None, metavar="HZ",
                   help="rate the footage was filmed at (default: the file's rate); frequencies and times "
                        "are in this rate")
    p.add_argument("--roi", action="append", default=[], metavar="X,Y,W,H",
                   help="measure this region (pixels: x, y of the top-left corner, width, height); "
                        "repeat for more (roi1, roi2, ...). Default: the whole frame ('frame')")
    p.add_argument("--grid", metavar="ROWSxCOLS", help="also measure each cell of a grid (r1c1, r1c2, ...)")
    p.add_argument("--mm-per-px", dest="mm_per_px", type=_number, default=None, metavar="S",
                   help="scene scale, millimetres per pixel: adds columns in mm")
    p.add_argument("--start", metavar="T", help="first frame: a frame number or seconds (2.5s) of the file")
    p.add_argument("--end", metavar="T", help="stop before this frame, as --start")
    p.add_argument("--segment", type=_whole, default=None, metavar="FRAMES",
                   help="Welch segment length: resolution fps/FRAMES (default 1024, at most the clip)")
    p.add_argument("--pyramid", choices=[kind for kind in PYRAMID_KINDS if kind != "riesz"], default="octave",
                   help="spatial bands (default octave)")
    p.add_argument("--orientations", type=_whole, default=None, metavar="N",
                   help="orientations per scale (default: the pyramid's own)")
    p.add_argument("--workers", "-t", dest="workers", type=_whole, help="local workers (default: one per core)")
    p.add_argument("--scheduler", help="address of a running Dask scheduler (tcp://host:8786)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    p.add_argument("--no-progress", action="store_true", help="do not show a progress bar")
    return p


def run(args) -> int:
    """Run ``daskmag measure`` from parsed arguments; a :class:`UserError` for bad input or options."""
    from ..errors import UserError
    from ..kernels.pyramid import PyramidSpec
    from .run import measure_file, say_result

    if args.orientations is not None and args.orientations < 1:
        raise UserError(f"--orientations must be at least 1, got {args.orientations}")
    result = measure_file(
        args.input, args.output, fps=args.fps, rois=args.roi, grid=args.grid, mm_per_px=args.mm_per_px,
        start=args.start, end=args.end, segment=args.segment,
        pyramid=PyramidSpec(args.pyramid, args.orientations), workers=args.workers,
        scheduler=args.scheduler, overwrite=args.overwrite, progress=not args.no_progress,
    )
    say_result(result, args.input)
    return 0
