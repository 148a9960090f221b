"""x264 settings side by side: encoder CPU, Y PSNR and size on real clips.

    python benchmarks/x264_options.py CLIP [CLIP ...] [--frames 120]

Each clip's first frames are encoded with PyAV as daskmag encodes (one codec
thread, no B-frames, 4:2:0) under each setting below, the first being the
reference; the table gives each setting's Y, Cb and Cr PSNR against the
encoder's own input (the frames converted to 4:2:0), its CPU time and its
size, relative to the reference's.  What ``daskmag.io.encode.X264_OPTIONS`` and
``daskmag.settings.DEFAULT_CRF`` were chosen from (docs/benchmarks.md,
"H.264 output").
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

import av
import numpy as np

SETTINGS = {
    "crf 16, subme 6 (before)": {"preset": "fast", "bf": "0", "x264-params": "trellis=0", "crf": "16"},
    "crf 16, subme 4": {"preset": "fast", "bf": "0", "x264-params": "trellis=0:subme=4", "crf": "16"},
    "crf 15.8, subme 4 (now)": {"preset": "fast", "bf": "0", "x264-params": "trellis=0:subme=4", "crf": "15.8"},
    "crf 15.5, subme 4": {"preset": "fast", "bf": "0", "x264-params": "trellis=0:subme=4", "crf": "15.5"},
    # below subme 6 x264 turns psy-rd off, and with it the chroma QP offset
    # of -2 that psy-rd brings: this restores the offset
    "crf 15.8, subme 4, chroma-qp-offset -2": {"preset": "fast", "bf": "0",
                                               "x264-params": "trellis=0:subme=4:chroma-qp-offset=-2", "crf": "15.8"},
}


def load(path: Path, n: int) -> np.ndarray:
    frames = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))
            if len(frames) == n:
                break
    clip = np.stack(frames)
    return clip[:, : clip.shape[1] // 2 * 2, : clip.shape[2] // 2 * 2]  # 4:2:0 needs even sizes


def planes_420(frames: np.ndarray) -> np.ndarray:
    """(T, H * 3 / 2, W) float64: PyAV's yuv420p array, Y then Cb then Cr (each chroma plane packed into H / 4 rows)."""
    return np.stack([av.VideoFrame.from_ndarray(f, format="rgb24").reformat(format="yuv420p").to_ndarray()
                     for f in frames]).astype(np.float64)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255.0**2 / np.mean((a - b) ** 2)))


def plane_psnrs(decoded: np.ndarray, reference: np.ndarray, height: int) -> list[float]:
    quarter = height // 4
    cuts = [slice(0, height), slice(height, height + quarter), slice(height + quarter, height + 2 * quarter)]
    return [psnr(decoded[:, cut], reference[:, cut]) for cut in cuts]


def encode(frames: np.ndarray, options: dict, path: Path) -> tuple[float, int, np.ndarray]:
    started = time.process_time()
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.options = dict(options)
        stream.codec_context.thread_count = 1
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    cpu = time.process_time() - started
    with av.open(str(path)) as container:
        decoded = np.stack([f.to_ndarray(format="yuv420p") for f in container.decode(video=0)])
    return cpu, os.path.getsize(path), decoded.astype(np.float64)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clips", nargs="+", type=Path)
    parser.add_argument("--frames", type=int, default=120)
    args = parser.parse_args()
    print("| clip | setting | Y PSNR dB | vs reference | Cb / Cr PSNR dB | CPU / reference | size / reference |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as folder:
        for clip in args.clips:
            frames = load(clip, args.frames)
            reference, first = planes_420(frames), None
            for name, options in SETTINGS.items():
                cpu, size, decoded = encode(frames, options, Path(folder) / "out.mp4")
                y, cb, cr = plane_psnrs(decoded, reference, frames.shape[1])
                first = first or (cpu, size, y)
                print(f"| {clip.name} | {name} | {y:.2f} | {y - first[2]:+.2f} | {cb:.2f} / {cr:.2f} "
                      f"| {cpu / first[0]:.2f} | {size / first[1]:.2f} |", flush=True)

if __name__ == "__main__":
    main()
