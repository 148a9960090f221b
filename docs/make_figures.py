"""Make the pictures of docs/guide.md from guitar.mp4 (run from the project root).

    python docs/make_figures.py [path/to/guitar.mp4]

Writes PNG space-time slices: one vertical line of pixels across the strings,
every frame side by side, so a vibration shows as a wave along time.
"""

import sys
from pathlib import Path

import numpy as np

import daskmag
from daskmag.kernels.pyramid import PyramidSpec

GUITAR = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "shared/data/guitar.mp4")
OUT = Path(__file__).resolve().parent / "figures"
COLUMN, ROWS, FRAMES = 250, slice(40, 160), slice(0, 150)


def save_png(image, path):
    import av

    with av.open(str(path), "w", format="image2") as container:
        stream = container.add_stream("png")
        stream.height, stream.width, stream.pix_fmt = image.shape[0], image.shape[1], "rgb24"
        for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def slice_xt(frames):
    """(rows, frames, 3): the pixels of COLUMN over time, each frame one column, stretched x2."""
    strip = np.asarray(frames[FRAMES, ROWS, COLUMN]).transpose(1, 0, 2)
    return np.repeat(np.repeat(strip, 2, axis=0), 2, axis=1)


def panel(images, gap=6):
    height = max(im.shape[0] for im in images)
    parts = []
    for im in images:
        parts += [im, np.full((height, gap, 3), 255, np.uint8)]
    return np.concatenate(parts[:-1], axis=1)


def main():
    OUT.mkdir(exist_ok=True)
    video = daskmag.open_video(GUITAR)
    source = video.frames.compute()
    runs = {
        "alpha 0 (input)": dict(alpha=0),
        "alpha 20": dict(alpha=20),
        "alpha 50": dict(alpha=50),
        "alpha 50, sigma 3": dict(alpha=50, sigma=3),
        "alpha -1 (motion removed)": dict(alpha=-1),
        "alpha 20, half-octave": dict(alpha=20, pyramid=PyramidSpec("half-octave")),
    }
    slices = {}
    for name, options in runs.items():
        out = daskmag.magnify_motion(source, low=72, high=92, fps=600, **options).compute(scheduler="threads")
        slices[name] = slice_xt(out)
        print(name, "done", file=sys.stderr)
    save_png(panel([slices["alpha 0 (input)"], slices["alpha 20"]]), OUT / "guitar-xt-alpha20.png")
    save_png(panel([slices["alpha 20"], slices["alpha 50"], slices["alpha 50, sigma 3"]]), OUT / "guitar-xt-alpha-sigma.png")
    save_png(panel([slices["alpha 0 (input)"], slices["alpha -1 (motion removed)"]]), OUT / "guitar-xt-attenuate.png")
    save_png(panel([slices["alpha 20"], slices["alpha 20, half-octave"]]), OUT / "guitar-xt-pyramids.png")
    frame = source[0].copy()
    frame[ROWS, COLUMN - 1 : COLUMN + 2] = [255, 0, 0]
    save_png(frame, OUT / "guitar-frame.png")


if __name__ == "__main__":
    main()
