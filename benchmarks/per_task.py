"""Time and peak memory of ONE task of the magnify graph, for the scaling plan.

    python benchmarks/per_task.py [--size 1920x1080] [--fps 60 --low 3 --high 7]

Builds the task exactly as `daskmag magnify` plans it (time block and spatial
tile from daskmag.magnify's planning), runs the fused kernel on random-texture
frames of that shape in this process, and prints the task's wall time, its
output frames and pixels, and this process's peak RSS (a fresh process, so the
peak is the task's). docs/scaling.md projects whole runs from these figures.
"""

import argparse
import json
import resource
import time

import numpy as np

from daskmag.magnify import TILE_MARGIN, _tiling, auto_tile, plan_time_chunks
from daskmag.phase import magnify_block
from daskmag.pyramid import PyramidSpec
from daskmag.synthetic import texture
from daskmag.temporal import design_bandpass


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--fps", type=float, default=60.0)
    parser.add_argument("--low", type=float, default=3.0)
    parser.add_argument("--high", type=float, default=7.0)
    args = parser.parse_args()
    width, height = map(int, args.size.split("x"))

    from daskmag.cluster import keep_freed_memory

    keep_freed_memory()  # as a daskmag worker runs
    taps = design_bandpass(args.low, args.high, args.fps).astype(np.float32)
    halo = len(taps) // 2
    rows, cols, margin, spec = _tiling(PyramidSpec(), height, width, auto_tile(height, width), TILE_MARGIN)
    tile_h, tile_w = rows[0] + 2 * margin, cols[0] + 2 * margin
    core = plan_time_chunks(10**6, tile_h * tile_w, halo)[0]
    rgb = (texture(tile_h, tile_w, seed=1) * 255).astype(np.uint8)
    block = np.broadcast_to(rgb, (core + 2 * halo,) + rgb.shape).copy()
    start = time.perf_counter()
    out = magnify_block(block, taps, 10.0, spec, halo, halo + core)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    record = {
        "frame": f"{width}x{height}", "tiles": [len(rows), len(cols)], "tile_with_margin": f"{tile_w}x{tile_h}",
        "levels": spec.n_levels((tile_h, tile_w)), "taps": len(taps), "block_frames": core,
        "frames_with_halo": int(block.shape[0]), "task_seconds": round(seconds, 2),
        "output_pixels_per_second": round(out.shape[0] * rows[0] * cols[0] / seconds),
        "peak_rss_gib": round(peak / 2**30, 2), "input_gib": round(block.nbytes / 2**30, 2),
    }
    print(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
