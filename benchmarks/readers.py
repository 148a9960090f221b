"""Read speed of each kind of high-speed source, and the cost of 16-bit mono processing.

Writes the same 16-bit mono clip (a moving texture, 12-bit data) in every
format the readers take, then reads each whole through
``open_video(...).frames.compute()`` on one thread (``scheduler="sync"``) and
on a local thread pool, A B A B, and prints frames/s (median of ``--repeat``).
It also times motion magnification of the same frames as 8-bit RGB and as
16-bit mono, side by side.

    python benchmarks/readers.py --frames 400 --size 512x512 --repeat 3

Not a test: pytest never collects it.  Writes to ``benchmarks/results/``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS_DIR, parse_size  # noqa: E402


def clip(n, height, width):
    from daskmag.synthetic import texture

    base = texture(height, width)[..., 1]
    out = np.empty((n, height, width), np.uint16)
    for k in range(n):
        out[k] = np.clip(np.rint(np.roll(base, k % 7, axis=1) * 4095), 0, 4095)
    return out


def pack12(frames) -> bytes:
    flat = frames.astype(np.uint16).ravel()
    a, b = flat[0::2], flat[1::2]
    return np.stack([a >> 4, ((a & 15) << 4) | (b >> 8), b & 255], axis=1).astype(np.uint8).tobytes()


def write_all(folder: Path, frames) -> dict:
    import tifffile

    from daskmag.io import write_array

    n, height, width = frames.shape
    sources = {}
    seq = folder / "tiff-seq"
    seq.mkdir()
    for k, frame in enumerate(frames):
        tifffile.imwrite(seq / f"f{k:06d}.tif", frame, photometric="minisblack")
    sources["TIFF sequence"] = seq
    tifffile.imwrite(folder / "stack.tif", frames, photometric="minisblack", bigtiff=True)
    sources["TIFF stack (BigTIFF)"] = folder / "stack.tif"
    png = folder / "png-seq"
    png.mkdir()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "io"))
    from test_images import png_bytes
    from test_phantom import write_cine

    for k, frame in enumerate(frames):
        (png / f"f{k:06d}.png").write_bytes(png_bytes(frame[..., None]))
    sources["PNG sequence"] = png
    (folder / "m16.mraw").write_bytes(frames.astype("<u2").tobytes())
    (folder / "m12.mraw").write_bytes(pack12(frames))
    for bits, name in ((16, "m16"), (12, "m12")):
        (folder / f"{name}.cih").write_text("\n".join([
            "#Camera Information Header", "Record Rate(fps) : 20000", f"Total Frame : {n}",
            f"Original Total Frame : {n}", f"Image Width : {width}", f"Image Height : {height}",
            "Color Type : Mono", f"Color Bit : {bits}", "File Format : MRaw", "EffectiveBit Depth : 12",
            "EffectiveBit Side : Lower", "", ""]))
    sources["Photron .mraw 16-bit"] = folder / "m16.cih"
    sources["Photron .mraw 12-bit packed"] = folder / "m12.cih"
    write_cine(folder / "c16.cine", frames, 20000, 12)
    write_cine(folder / "c12.cine", frames, 20000, 12, packed=True)
    sources["Phantom .cine 16-bit"] = folder / "c16.cine"
    sources["Phantom .cine 12-bit packed"] = folder / "c12.cine"
    write_array(frames[..., None], folder / "ffv1.mkv", 30)
    sources["FFV1 gray16le .mkv"] = folder / "ffv1.mkv"
    return sources


def read_rate(source, scheduler, expected) -> float:
    from daskmag.io import open_video

    start = time.perf_counter()
    frames = open_video(source, chunk_frames=32).frames.compute(scheduler=scheduler)
    elapsed = time.perf_counter() - start
    assert frames.shape[0] == len(expected) and np.array_equal(frames[..., 0], expected)
    return len(expected) / elapsed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--size", type=parse_size, default=(512, 512), help="WxH (default 512x512)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    width, height = args.size
    folder = RESULTS_DIR / "cache" / "readers"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    frames = clip(args.frames, height, width)
    sources = write_all(folder, frames)
    rows = []
    for name, source in sources.items():
        read_rate(source, "sync", frames)  # warm: page cache, numba's compiled unpacker
        rates = {"sync": [], "threads": []}
        for _ in range(args.repeat):
            for scheduler in rates:  # A B A B
                rates[scheduler].append(read_rate(source, scheduler, frames))
        rows.append((name, statistics.median(rates["sync"]), statistics.median(rates["threads"])))
    lines = [f"Read speed, {args.frames} frames of {width}x{height} 16-bit mono (12-bit data), "
             f"median of {args.repeat}:", "",
             "| source | frames/s, 1 thread | frames/s, thread pool |", "| --- | ---: | ---: |"]
    lines += [f"| {name} | {one:.0f} | {pool:.0f} |" for name, one, pool in rows]
    lines += ["", *processing_cost(frames[: min(len(frames), 120)], args.repeat)]
    text = "\n".join(lines)
    print(text)
    (RESULTS_DIR / f"readers-{time.strftime('%Y%m%dT%H%M%S')}.json").write_text(
        json.dumps({"table": text, "args": vars(args) | {"size": list(args.size)}}, indent=1))


def processing_cost(frames, repeat):
    """Motion magnification of the same frames as 8-bit RGB and as 16-bit mono, one thread, A B A B."""
    import dask.array as da

    from daskmag.graph.motion import magnify_motion

    mono16 = frames[..., None]
    rgb8 = np.repeat(np.rint(frames[..., None] * (255 / 4095)).astype(np.uint8), 3, axis=3)
    times = {"8-bit RGB": [], "16-bit mono": []}
    for _ in range(repeat):
        for name, clip_ in (("8-bit RGB", rgb8), ("16-bit mono", mono16)):
            start = time.perf_counter()
            magnify_motion(da.from_array(clip_), 10, 3, 7, 60).compute(scheduler="sync")
            times[name].append(time.perf_counter() - start)
    n, height, width = frames.shape
    return [f"Motion magnification of {n} frames of {width}x{height}, one thread, median of {repeat}:", ""] + \
        [f"- {name}: {statistics.median(t):.2f} s ({n / statistics.median(t):.1f} frames/s)"
         for name, t in times.items()]


if __name__ == "__main__":
    main()
