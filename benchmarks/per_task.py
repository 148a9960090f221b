"""Time and peak memory of ONE task of the magnify graph, for the scaling plan.

    python benchmarks/per_task.py [--size 1920x1080] [--fps 60 --low 3 --high 7]

Builds the task exactly as `daskmag magnify` plans it (time block and spatial
tile from daskmag.plan), runs the fused kernel on random-texture
frames of that shape in this process, and prints the task's wall time, its
output frames and pixels, and this process's peak RSS (a fresh process, so the
peak is the task's). docs/scaling.md projects whole runs from these figures.
"""

import argparse
import json
import resource
import time

import numpy as np

from daskmag.plan import auto_tile, plan_motion
from daskmag.kernels.phase import magnify_block
from daskmag.synthetic import texture
from daskmag.kernels.temporal import make_filter


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
    temporal = make_filter("fir", args.low, args.high, args.fps)
    taps, halo = temporal.taps, temporal.halo_before
    # the plan daskmag makes for an hour-long clip of this size: its first (full) block and tile
    plan = plan_motion(10**6, height, width, temporal, tile=auto_tile(height, width))
    rows, cols, margin, spec = plan.rows, plan.cols, plan.margin, plan.pyramid
    tile_h, tile_w = rows[0] + 2 * margin, cols[0] + 2 * margin
    core = plan.time_chunks[0]
    rgb = (texture(tile_h, tile_w, seed=1) * 255).astype(np.uint8)
    block = np.broadcast_to(rgb, (core + 2 * halo,) + rgb.shape).copy()
    start = time.perf_counter()
    out = magnify_block(block, temporal, 10.0, spec, halo, halo + core)
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
