"""Video files through FFmpeg (PyAV): probe, timing rules, lazy, parallel, frame-accurate decode.

:class:`FFmpegReader` reads anything FFmpeg reads.  Each time chunk is one
task that seeks to the key frame before its first frame and decodes forward,
placing each frame by a rule decided once, by :func:`probe`, before any work
(the *timing* of the stream, shown by ``daskmag info``):

==============  ==========================================================  ==============
timing          what it is                                                  frames placed
==============  ==========================================================  ==============
``constant``    evenly spaced timestamps                                    by timestamp on the rate's grid: each stored frame once
``variable``    uneven timestamps (phone slow motion, dropped frames)       each stored frame once, in timestamp order
                                                                            (``timing="resample"``: on a constant grid by timestamp)
``coarse``      a clock coarser than the frames (Matroska above 1000 fps)   in packet order at the declared rate
``restart``     timestamps that restart or jump back (joined recordings)    in file order (decode order), with a warning
``none``        no timestamps (raw H.264/HEVC elementary streams)           in decode order at ``fps`` or the declared rate
==============  ==========================================================  ==============

Edit lists are applied (a frame the container does not present is not
counted), the stream's own time base is used, and every rule gives the same
frames however decoding is split into tasks.  Display rotation is applied, so
frames come out as a player shows them; data that uses only the low bits of
16-bit grey words (12-bit cameras) is scaled by its real range.

A stream without timestamps cannot be seeked by time.  A raw H.264/H.265
stream's task seeks by byte position to the IDR picture before its first
frame (recorded by the probe) and counts frames on from the IDR's packet
number, so hours of raw footage are read in time linear in their length; a
stream with no IDR but its first (open groups of pictures) is decoded from
its start by every task.
"""

from __future__ import annotations

import copy
import math
import re
from collections import deque
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import UserError, warn
from ..settings import ON_CORRUPT
from .base import Reader, VideoInfo, file_stamp, reason as _reason, register_reader

#: Threads of each decoder, encoder and colour conversion.  Dask runs one
#: task per core, so codec threads would only compete with the other tasks:
#: one thread spends the least CPU per frame (guitar.mp4 decode: 0.43
#: against 1.12 ms with FFmpeg's automatic threads; x264: 2.9 against 3.3).
CODEC_THREADS = 1

#: Timing rules (``--timing``): keep every stored frame once, or resample a
#: variable-rate stream onto a constant grid by timestamp.
TIMING_CHOICES = ("keep", "resample")
#: Kinds of stream timing that :func:`probe` tells apart.
TIMING_KINDS = ("constant", "variable", "coarse", "restart", "none")

#: The probe decodes a key frame (to find a change of frame size before any
#: work) when this many packets passed since the last one it decoded, and
#: the stream's last key frame.  Decoding every group's first frame cost a
#: twelfth of FFV1's decode time (its groups are 12 frames), serially: about
#: 40 minutes for an hour of 1080p60.  A size that changes stays changed, so
#: a later check still finds it, and the frames passed over are then searched
#: for the exact one; a size that changes and changes back within one
#: interval is refused by the read task that meets it.
SIZE_CHECK_EVERY = 120


def media_name(path) -> str:
    """The name to hand FFmpeg for a local file: absolute, so that no part of it reads as a protocol.

    FFmpeg takes ``NAME:`` at the start of a name for a protocol (``2023-05-01T12:30:05.mp4``
    would be protocol ``2023-05-01T12``); an absolute path starts with ``/``.
    """
    return str(Path(path).absolute())


def _open_container(path: Path):
    import av

    path = Path(path)
    if not path.exists():
        raise UserError(f"input not found: {path}")
    if path.is_dir():
        raise UserError(f"input is a folder, not a video or a .zarr store: {path}")
    try:
        container = av.open(media_name(path))
    except av.error.EOFError:
        raise UserError(f"{path} has no frames (it ends before its first frame)") from None
    except Exception as exc:  # av.error.InvalidDataError and friends
        raise UserError(f"cannot read {path} as a video ({_reason(exc)})") from None
    if not container.streams.video:
        container.close()
        raise UserError(f"{path} has no video stream")
    return container


def _video_stream(container, path, stream: int | None):
    videos = container.streams.video
    index = 0 if stream is None else int(stream)
    if not 0 <= index < len(videos):
        raise UserError(f"--stream {index}: {path} has {len(videos)} video stream"
                        f"{'s' if len(videos) != 1 else ''} (0 to {len(videos) - 1})")
    return videos[index]


def _stream_rate(stream) -> Fraction:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate:
            return Fraction(rate)
    return Fraction(0)


def _describe_stream(number: int, stream) -> str:
    codec = stream.codec_context
    rate = _stream_rate(stream)
    title = stream.metadata.get("handler_name") or stream.metadata.get("title") or ""
    return (f"{number}: {codec.name} {codec.width}x{codec.height} {float(rate):.6g} fps"
            + (f" ({title})" if title else ""))


def _snap(rate: Fraction) -> Fraction:
    """A rate read from rounded numbers (Matroska's ns durations) as the exact rate it stands for."""
    for den in (1, 1001):
        exact = Fraction(round(rate * den), den)
        if exact and abs(exact - rate) <= rate * Fraction(1, 10**6):
            return exact
    return rate


#: Grey formats whose 16-bit words may carry fewer significant bits (12-bit cameras).
_GREY16 = ("gray16le", "gray16be")


def _bits_of(frame) -> int:
    return max(component.bits for component in frame.format.components)


class _Table:
    """The presented packets of one stream, in file (decode) order: timestamps, positions, key flags."""

    def __init__(self, codec: str = ""):
        self.pts, self.dts, self.pos, self.key, self.duration = [], [], [], [], []
        self.codec = codec
        self.entry = []  # packet numbers where decoding can start cleanly (:func:`_clean_entry`)

    def add(self, packet):
        if packet.is_keyframe and _clean_entry(self.codec, packet):
            self.entry.append(len(self.pts))
        self.pts.append(packet.pts)
        self.dts.append(packet.dts)
        self.pos.append(packet.pos if packet.pos is not None else -1)
        self.key.append(bool(packet.is_keyframe))
        self.duration.append(packet.duration or 0)

    def __len__(self):
        return len(self.pts)


#: NAL unit types of an instantaneous decoding refresh (IDR) picture: after
#: one, no picture refers to an earlier one, and none that follows it in the
#: stream is shown before it (H.264 7.4.1.2.4; H.265 IDR_W_RADL, IDR_N_LP).
_IDR_TYPES = {"h264": ({5}, lambda byte: byte & 0x1F), "hevc": ({19, 20}, lambda byte: (byte >> 1) & 0x3F)}


def _clean_entry(codec: str, packet) -> bool:
    """Whether a key packet of an Annex B stream (raw ``.h264``/``.h265``) is an IDR picture.

    Decoding from an IDR gives its frame and every later one exactly, in
    presentation order: the frame numbers count on from the IDR's packet
    number.  A key frame that is not an IDR (an open group's I-frame, a
    recovery point) may be followed by frames shown before it.  Other
    codecs: none (only the IDR rule is implemented).
    """
    rule = _IDR_TYPES.get(codec)
    if rule is None:
        return False
    types, nal_type = rule
    data = bytes(packet)
    at = data.find(b"\x00\x00\x01")
    while 0 <= at < len(data) - 3:
        if nal_type(data[at + 3]) in types:
            return True
        at = data.find(b"\x00\x00\x01", at + 3)
    return False


def _classify(table: _Table, time_base: Fraction, rate: Fraction):
    """(kind, note, frame numbers where timestamps jump back) of a stream's timestamps."""
    n = len(table)
    if n and all(p is None for p in table.pts):
        return "none", "no timestamps: frames in decode order", []
    if any(p is None for p in table.pts):
        return "restart", "some frames have no timestamp: frames in file order", []
    clock = [d if d is not None else p for p, d in zip(table.pts, table.dts)]
    back = [i for i in range(1, n) if clock[i] < clock[i - 1]]
    if back:
        numbers = ", ".join(str(i) for i in back[:5]) + (", ..." if len(back) > 5 else "")
        return "restart", f"timestamps restart or jump back at frame {numbers}: every frame kept in file order", back
    if n < 2:
        return "constant", "", []
    ordered = np.sort(np.asarray(table.pts, dtype=np.int64))
    steps = np.diff(ordered).astype(np.float64) * float(time_base)
    tick = float(time_base)
    if rate and (np.any(steps == 0) or tick * float(rate) > 1):
        return ("coarse", f"timestamp clock ({tick * 1e3:.3g} ms) coarser than the frames: "
                          f"packet order at the declared {float(rate):.6g} fps", [])
    if rate:
        period = 1 / float(rate)
        # a clock near the frame period rounds each timestamp by up to one tick
        # (Matroska at 600 fps: steps of 1 and 2 ms): that is still a constant rate
        if np.any(np.abs(steps - period) > max(tick, period / 4)):
            low, high = steps.min() * 1e3, steps.max() * 1e3
            return ("variable", f"variable frame rate: frame intervals {low:.4g} to {high:.4g} ms "
                                f"(constant would be {1e3 * period:.4g} ms)", [])
    return "constant", "", []


def probe(path, stream: int | None = None, timing: str = "keep", fps=None) -> VideoInfo:
    """Frames, size, frame rate, timing, streams and display metadata of a video file (see :func:`_probe`)."""
    return _probe(path, stream, timing, fps)[0]


def _probe(path, stream: int | None = None, timing: str = "keep", fps=None):
    """:func:`probe`, and the packet table and time base its reading plan is made from.

    Frames, size, frame rate, timing, streams and display metadata of a video file.

    Every packet of the chosen stream is read (no decoding, except the first
    frame and the key frames that may change the frame size): the frame
    count is exact, edit lists are applied (packets the container does not
    present are not counted), and the timing of the stream is classified
    (see the module's table).

    Parameters
    ----------
    path : str or Path
    stream : int, optional
        Which video stream (0 = the first); default the first, with a
        warning by :func:`daskmag.io.base.warn_input` if there are others.
    timing : {"keep", "resample"}
        A variable-rate stream: keep every stored frame once, in timestamp
        order (default), or resample it by timestamp onto a grid at its
        average rate (``n_frames`` is then the grid's length).
    fps : float or Fraction, optional
        The rate the footage was filmed at (``--fps``): the playback rate of a
        stream that has no timestamps.

    Raises
    ------
    UserError
        Missing, unreadable or empty input; a stream that does not exist; no
        timestamps and no rate; a frame size that changes within the stream.
    """
    if timing not in TIMING_CHOICES:
        raise UserError(f"--timing must be one of {', '.join(TIMING_CHOICES)}, got {timing!r}")
    path = Path(path)
    container = _open_container(path)
    try:
        videos = container.streams.video
        chosen = _video_stream(container, path, stream)
        number = list(videos).index(chosen)
        described = tuple(_describe_stream(i, s) for i, s in enumerate(videos))
        rate = _stream_rate(chosen)
        time_base = Fraction(chosen.time_base) if chosen.time_base else Fraction(0)
        codec = chosen.codec_context
        codec.thread_count = CODEC_THREADS
        table, first, size_change = _scan(container, chosen, path)
        kind, note, _ = _classify(table, time_base, rate)
        declared = Fraction(codec.framerate) if codec.framerate else Fraction(0)
        codec_name = codec.name
        sar = chosen.sample_aspect_ratio
    finally:
        container.close()
    n_frames = len(table)
    if n_frames == 0 or first is None:
        raise UserError(f"{path} has no frames")
    if size_change is not None:
        (w0, h0), (w1, h1), at = size_change
        raise UserError(f"{path}: the frame size changes from {w0}x{h0} to {w1}x{h1} at frame {at}; "
                        f"daskmag needs one size: split the file there first "
                        f"(ffmpeg -i IN -frames:v {at} -c copy FIRST)")
    stored = n_frames
    if kind == "none":
        if fps:
            rate = Fraction(fps).limit_denominator(1_000_000)
        elif declared:
            rate = declared
        else:
            raise UserError(f"{path} has no timestamps and declares no frame rate: give the rate with --fps")
        note = f"no timestamps: frames in decode order at {float(rate):.6g} fps"
    elif kind == "coarse":
        rate = _snap(rate)
    if not rate or rate <= 0:
        raise UserError(f"{path} does not record a frame rate (give it with --fps)")
    if kind == "variable" and timing == "resample":
        grid_rate = rate
        end = max(p for p in table.pts) + (table.duration[int(np.argmax(table.pts))] or 0)
        first_pts = min(table.pts) if first.get("start_time") is None else first["start_time"]
        ticks_per_frame = 1 / (time_base * grid_rate)
        if not table.duration[int(np.argmax(table.pts))]:
            end += int(ticks_per_frame)
        n_frames = int(((end - first_pts) * time_base * grid_rate * 2 + 1) // 2)
        note += f"; resampled by timestamp to a constant {float(rate):.6g} fps"
    elif kind == "variable":
        note += "; every stored frame kept once, in order, at the average rate"
    height, width = first["height"], first["width"]
    rotation = first["rotation"]
    if rotation in (90, 270):
        height, width = width, height
    _, dtype, channels, _ = sample_format(first["format"])  # grey and deep grey stay mono at their depth
    info = VideoInfo(str(path), n_frames, height, width, rate, codec_name, "file",
                     kind == "variable", stored if stored != n_frames else None, dtype=dtype, channels=channels,
                     bits=first["bits"], timing=kind, timing_note=note, timing_rule=timing, stream=number,
                     streams=described, rotation=rotation,
                     # frames are turned upright: a quarter turn turns the pixels' shape too
                     sample_aspect_ratio=(None if not sar or Fraction(sar) in (0, 1) else
                                          1 / Fraction(sar) if rotation in (90, 270) else Fraction(sar)),
                     pixel_format=first["format"], significant_bits=first["significant"])
    return info, table, time_base, (first["width"], first["height"])


def _rotation(frame) -> int:
    """The clockwise turn, in degrees (0, 90, 180, 270), that shows ``frame`` upright."""
    try:
        angle = frame.rotation  # FFmpeg's display matrix: counter-clockwise degrees
    except Exception:
        return 0
    if not angle:
        return 0
    return int(round(-float(angle) / 90.0)) % 4 * 90


def _first_frame_facts(frame) -> dict:
    bits = _bits_of(frame)
    significant = bits
    if frame.format.name in _GREY16:
        peak = int(frame.to_ndarray().max())
        significant = max(8, peak.bit_length())
    return {"width": frame.width, "height": frame.height, "rotation": _rotation(frame), "bits": bits,
            "format": frame.format.name, "significant": significant, "start_time": None}


def _scan(container, stream, path):
    """Read every packet of ``stream``: the table, the first frame's facts, a size change (or None).

    Decodes the first frame, a key frame at least every
    :data:`SIZE_CHECK_EVERY` packets and the last key frame, to find a
    change of frame size before any work (:func:`_first_resized` then
    names the frame where it happened).
    """
    import av

    codec = stream.codec_context
    table = _Table(codec.name if container.format.name in _ANNEX_B_FORMATS else "")
    first = None
    size_change = None
    last_checked = -SIZE_CHECK_EVERY
    checked = []  # the key frames decoded, in order
    last_key = None  # (index, packet) of the last presented key frame not decoded
    fed = deque()  # the frame numbers of the key frames sent to the decoder, oldest first

    def check(packet, index):
        nonlocal first, size_change
        if index is not None:
            fed.append(index)
            checked.append(index)
        try:
            frames = codec.decode(packet)
        except av.error.FFmpegError:
            return
        for frame in frames:
            first, size_change = _check_size(frame, first, size_change, fed)

    try:
        for packet in container.demux(stream):
            if not packet.size:
                continue
            index = len(table)
            if packet.is_discard:  # not presented (an edit list trims it), but may be a reference
                if first is None:
                    check(packet, None)
                continue
            table.add(packet)
            if first is None or (packet.is_keyframe and size_change is None
                                 and index - last_checked >= SIZE_CHECK_EVERY):
                last_checked = index
                check(packet, index)
                last_key = None
            elif packet.is_keyframe:
                last_key = (index, packet)
        if last_key is not None and size_change is None:
            check(last_key[1], last_key[0])
        try:  # frames the decoder still holds (a one-frame clip; B-frame delay)
            for frame in codec.decode(None):
                first, size_change = _check_size(frame, first, size_change, fed)
        except av.error.FFmpegError:
            pass
    except av.error.FFmpegError as exc:
        raise UserError(f"{path} is corrupt ({_reason(exc)})") from None
    if size_change is not None:
        old, new, at = size_change
        before = max((k for k in checked if k < at), default=0)
        passed = [k for k in range(before + 1, at) if table.key[k]]
        if passed:
            at = _first_resized(path, stream.index, passed, old) or at
        size_change = (old, new, at)
    if first is not None:
        start = stream.start_time
        first["start_time"] = start
    return table, first, size_change


def _first_resized(path, stream_index: int, candidates: list[int], size) -> int | None:
    """The first of the key frames ``candidates`` (presented frame numbers, sorted) whose size is not ``size``."""
    import av

    wanted = set(candidates)
    fed = deque()
    with av.open(media_name(path)) as container:
        stream = container.streams[stream_index]
        codec = stream.codec_context
        codec.thread_count = CODEC_THREADS
        index = -1

        def resized(frames):
            for frame in frames:
                at = fed.popleft() if fed else None
                if (frame.width, frame.height) != tuple(size):
                    return at
            return None

        try:
            for packet in container.demux(stream):
                if not packet.size or packet.is_discard:
                    continue
                index += 1
                if index in wanted:
                    fed.append(index)
                    found = resized(codec.decode(packet))
                    if found is not None:
                        return found
                if index >= candidates[-1]:
                    break
            return resized(codec.decode(None))
        except av.error.FFmpegError:
            return None


#: Raw elementary-stream demuxers (Annex B start codes in every packet), whose
#: packets carry no timestamps: reads start at an IDR found by byte position.
_ANNEX_B_FORMATS = ("h264", "hevc")


class _Grid:
    """Frame numbers on the constant-rate grid of a stream.

    A frame with timestamp ``t`` (from the first presented frame) lands on
    grid slot ``floor(t * fps + 1/2)``: the nearest slot, ties to the later
    one.  Exact integer arithmetic, so every task agrees on every frame's slot.
    """

    by_count = False

    def __init__(self, first: int, time_base: Fraction, fps: Fraction, target: int | None = None):
        self.first, self.target = first, target
        # slot = floor((pts - first) * time_base * fps + 1/2) = ((pts - first) * num + den / 2) // den
        self._num = 2 * time_base.numerator * fps.numerator
        self._den = 2 * time_base.denominator * fps.denominator

    def slot(self, pts: int) -> int:
        return ((pts - self.first) * self._num + self._den // 2) // self._den

    def lowest(self, slot: int) -> int:
        """The smallest timestamp that lands on ``slot`` (or later)."""
        return self.first - ((self._den // 2 - slot * self._den) // self._num)

    def ticks(self, frames: int) -> int:
        """``frames`` periods in time-base units (rounded down)."""
        return frames * self._den // self._num

    def seek_target(self, slot: int) -> int:
        """A timestamp no later than the first frame on ``slot`` or after: the probe's
        (that frame's own, so a key frame there is where decoding starts), else
        one tick before ``slot``'s time."""
        return self.target if self.target is not None else self.first + self.ticks(slot) - 1


class _Ranks:
    """Frame numbers of a variable-rate stream kept frame for frame: the rank of a timestamp.

    ``window`` holds the sorted timestamps of frames ``base`` to ``base +
    len(window) - 1`` (one past the task's last frame where there is one);
    a timestamp before the window is "before", one at or after its end is
    past the task.  Every task gets the same ranks from the probe's table.
    """

    by_count = False

    def __init__(self, first: int, base: int, window, period_ticks: int):
        self.first, self.base = first, base
        self.window = np.asarray(window, dtype=np.int64)
        self.period = max(1, int(period_ticks))

    def slot(self, pts: int) -> int:
        return self.base + int(np.searchsorted(self.window, pts, side="right")) - 1

    def ticks(self, frames: int) -> int:
        return frames * self.period

    def seek_target(self, slot: int) -> int:
        # the frame's own timestamp: a key frame there is where decoding starts
        return int(self.window[slot - self.base]) if 0 <= slot - self.base < len(self.window) else self.first


class _Unanchored(Exception):
    """A seek landed on a packet that the task's window of positions does not hold."""


class _Count:
    """Frames numbered in output order from the stream's start (no usable timestamps): never seeks.

    With ``base`` and ``position`` (a raw stream's IDR, :func:`_clean_entry`):
    from that packet's byte position, numbered on from ``base``.
    """

    by_count = True
    by_packet = False
    first = 0

    def __init__(self, base: int = 0, position: int | None = None):
        self.base, self.position = base, position

    def slot(self, pts):  # pragma: no cover - not used: frames are counted
        raise AssertionError

    def ticks(self, frames: int) -> int:
        return frames


class _Plan:
    """How frames are found in one stream, decided by the probe; :meth:`task` is what one task needs."""

    def __init__(self, stream: int, kind: str, timing: str, rate: Fraction, time_base: Fraction,
                 table: _Table, n_frames: int, rotation: int, pix_fmt: str, size: tuple[int, int]):
        self.stream, self.kind, self.timing, self.rate = stream, kind, timing, rate
        self.time_base, self.n_frames, self.rotation, self.pix_fmt = time_base, n_frames, rotation, pix_fmt
        self.size = size  # (width, height) as coded
        self.first, self.sorted, self.keys = 0, None, None
        if kind in ("constant", "variable"):
            self.first = int(min(table.pts))
            self.sorted = np.sort(np.asarray(table.pts, dtype=np.int64))
        if kind == "constant" or (kind == "variable" and timing == "resample"):
            self.placement = "grid"
        elif kind == "variable":
            self.placement = "rank"
        if kind in ("constant", "variable"):  # seeks land on a key frame's own timestamp (see task)
            self.keys = np.asarray([p for p, key in zip(table.pts, table.key) if key], dtype=np.int64)
        elif (kind == "none" and any(k > 0 for k in table.entry)
              and all(b > a >= 0 for a, b in zip(table.pos, table.pos[1:]))):
            # a raw stream: a task starts at the IDR before its first frame, by byte position
            self.placement = "entry"
            self.entry = np.asarray(table.entry, dtype=np.int64)
            self.pos = np.asarray(table.pos, dtype=np.int64)
        elif kind == "coarse" and self._anchored(table):
            # file order is presentation order, and each packet has its own byte position:
            # a task finds where a seek landed by position, and counts on from there
            self.placement = "anchor"
            self.first = int(table.pts[0])
            self.pts = np.asarray(table.pts, dtype=np.int64)
            self.pos = np.asarray(table.pos, dtype=np.int64)
            self.key = np.asarray(table.key, dtype=bool)
        else:
            self.placement = "count"

    @staticmethod
    def _anchored(table: _Table) -> bool:
        pts, pos = table.pts, table.pos
        return (all(p is not None for p in pts) and all(b >= a for a, b in zip(pts, pts[1:]))
                and all(p >= 0 for p in pos) and all(b > a for a, b in zip(pos, pos[1:])))

    def key_frames(self) -> list[int] | None:
        """Frame numbers that a seek lands on exactly (key frames), sorted; None when reads never seek."""
        if self.placement == "entry":
            return self.entry.tolist()
        if self.keys is None:
            return None
        if self.placement == "grid":
            grid = _Grid(self.first, self.time_base, self.rate)
            slots = {grid.slot(int(p)) for p in self.keys}
        else:
            slots = set(np.searchsorted(self.sorted, self.keys, side="left").tolist())
        return sorted(k for k in slots if 0 <= k < self.n_frames)

    def task(self, start: int, stop: int) -> dict:
        """The picklable facts a task reading frames ``[start, stop)`` needs (small, whatever the file's length)."""
        spec = {"stream": self.stream, "placement": self.placement, "rate": self.rate,
                "rotation": self.rotation, "pix_fmt": self.pix_fmt, "size": self.size,
                "first": self.first, "time_base": self.time_base}
        if self.placement == "grid" and 0 < start < self.n_frames:
            # seek to the first frame that lands on ``start`` or later, not a tick
            # before it: a key frame there saves decoding the whole group before it
            lowest = _Grid(self.first, self.time_base, self.rate).lowest(start)
            index = int(np.searchsorted(self.sorted, lowest, side="left"))
            if index < len(self.sorted):
                spec["target"] = int(self.sorted[index])
        if self.placement == "rank":
            spec["base"] = start
            spec["window"] = self.sorted[start:stop + 1].tolist()
            span = int(self.sorted[-1] - self.sorted[0]) if len(self.sorted) > 1 else 1
            spec["period"] = max(1, span // max(1, len(self.sorted) - 1))
        elif self.placement == "entry":
            k = int(np.searchsorted(self.entry, start, side="right")) - 1
            base = int(self.entry[k]) if k >= 0 else 0
            spec["base"], spec["position"] = base, int(self.pos[base])
        elif self.placement == "anchor":
            # from the key frame before the last packet stamped earlier than frame ``start``
            earlier = int(np.searchsorted(self.pts, self.pts[start], side="left")) - 1
            keys = np.flatnonzero(self.key[:max(earlier, 0) + 1])
            base = int(keys[-1]) if len(keys) and earlier >= 0 else 0
            spec["base"] = base
            spec["pos"] = self.pos[base:stop + 1].tolist()
            spec["target"] = int(self.pts[start]) - 1 if earlier >= 0 else self.first
            span = int(self.pts[-1] - self.pts[0]) if len(self.pts) > 1 else 1
            spec["period"] = max(1, span // max(1, len(self.pts) - 1))
        return spec


class _Anchor:
    """Frame numbers in packet order, anchored by the byte position of a packet the seek reached.

    For a stream whose clock is too coarse to tell frames apart (Matroska
    above 1000 fps) but whose file order is its presentation order.
    """

    by_count = False
    by_packet = True

    def __init__(self, first: int, base: int, positions, target: int, period_ticks: int):
        self.first, self.base, self.target = first, base, target
        self.index = {pos: base + k for k, pos in enumerate(positions)}
        self.lowest = positions[0] if positions else 0
        self.period = max(1, int(period_ticks))

    def ticks(self, frames: int) -> int:
        return frames * self.period

    def seek_target(self, slot: int) -> int:
        return self.target


def _placer(spec: dict):
    if spec["placement"] == "grid":
        return _Grid(spec["first"], spec["time_base"], spec["rate"], spec.get("target"))
    if spec["placement"] == "rank":
        return _Ranks(spec["first"], spec["base"], spec["window"], spec["period"])
    if spec["placement"] == "anchor":
        return _Anchor(spec["first"], spec["base"], spec["pos"], spec["target"], spec["period"])
    if spec["placement"] == "entry" and spec["base"] > 0:
        return _Count(spec["base"], spec["position"])
    return _Count()


def make_plan(info: VideoInfo, timing: str = "keep", table: _Table | None = None,
              time_base: Fraction | None = None, size=None) -> _Plan:
    """The reading plan of a probed file, from the probe's packet table (re-read when not given)."""
    if table is None:
        info, table, time_base, size = _probe(info.path, info.stream, timing, info.fps if info.timing == "none"
                                              else None)
    return _Plan(info.stream, info.timing, timing, Fraction(info.fps), time_base or Fraction(1, 1), table,
                 info.n_frames, info.rotation, info.pixel_format, size)


def _check_size(frame, first, size_change, fed):
    """The first frame's facts, and the first change of size (from, to, frame number)."""
    at = fed.popleft() if fed else -1
    if first is None:
        return _first_frame_facts(frame), size_change
    if size_change is None and (frame.width, frame.height) != (first["width"], first["height"]):
        size_change = ((first["width"], first["height"]), (frame.width, frame.height), at)
    return first, size_change


#: Decoded sample layouts kept at full depth: FFmpeg pixel format prefix ->
#: (format to convert to, dtype, channels).  Anything else decodes to 8-bit RGB.
_DEEP_FORMATS = (
    (("gray16",), ("gray16le", "uint16", 1)),
    (("gray",), ("gray", "uint8", 1)),
    (("rgb48", "bgr48", "gbrp9", "gbrp10", "gbrp12", "gbrp14", "gbrp16", "rgba64", "bgra64", "gbrap1"),
     ("rgb48le", "uint16", 3)),
)


def sample_format(pix_fmt: str | None, bits: int | None = None) -> tuple[str, str, int, int]:
    """How frames of pixel format ``pix_fmt`` are decoded: (PyAV format, dtype, channels, bits).

    Grey stays grey (one channel) and 9 to 16-bit grey or RGB stays 16-bit:
    high-speed cameras' depth is kept.  ``gray10le``/``gray12le``... keep their
    own values (0..4095 for 12 bits, no scaling); ``gray16le`` holding 12-bit
    data keeps its 12-bit values.  Other formats decode to 8-bit RGB.
    """
    name = pix_fmt or ""
    match = re.match(r"gray(9|10|12|14)(le|be)\Z", name)
    if match:
        return name, "uint16", 1, int(match.group(1))
    for prefixes, (target, dtype, channels) in _DEEP_FORMATS:
        if name.startswith(prefixes):
            return target, dtype, channels, 8 if dtype == "uint8" else 16
    return "rgb24", "uint8", 3, 8




def check_on_corrupt(on_corrupt: str):
    """Validate an ``on_corrupt`` choice (:data:`ON_CORRUPT`) before any work."""
    if on_corrupt not in ON_CORRUPT:
        raise UserError(f"on_corrupt must be one of {', '.join(ON_CORRUPT)}, got {on_corrupt!r}")


def read_frames(path, start: int, stop: int, stamp: tuple[int, int] | None = None,
                on_corrupt: str = "stop", *, stream: int | None = None, timing: str = "keep",
                fps=None, spec: dict | None = None) -> np.ndarray:
    """Decode frames ``[start, stop)`` of a video file as (n, H, W, 3) uint8 RGB, upright.

    Seeks to the key frame before ``start`` and decodes forward, placing each
    frame by the stream's timing rule (see the module's table), so that the
    result is identical to the same frames of a sequential decode (B-frames
    included), however the reading is split.

    **Constant rate** (and ``timing="resample"``): frame ``i`` is the frame
    shown at time ``i / fps`` from the first presented frame: the last good
    frame whose timestamp is before ``(i + 1/2) / fps``.  A frame thus lands on
    the nearest grid slot (ties to the later); a slot that no frame lands on
    repeats the one before (a gap in a variable-rate file), and of two frames
    on one slot the later is kept.  For a constant-rate file every frame has
    its own slot.  **Variable rate, kept**: frame ``i`` is the stored frame
    with the ``i``-th timestamp.  **Coarse clock, restarting or no
    timestamps**: frame ``i`` is the ``i``-th frame the decoder gives from the
    stream's start (these tasks decode from the start; a raw H.264/H.265
    stream's from the IDR picture before ``start``, found by byte position).

    **Corrupt frames** are those the decoder rejects, drops (a packet whose
    timestamp never comes out of the decoder) or flags corrupt; errors are
    caught packet by packet, so one bad packet loses one frame only.  Damage
    that the decoder conceals without a sign (e.g. an FFV1 slice CRC
    mismatch, which FFmpeg only logs) cannot be seen, nor can a lost frame in
    a stream read in decode order.

    Parameters
    ----------
    path : str or Path
        A video file.
    start, stop : int
        Frames to decode.
    stamp : tuple of int, optional
        From :func:`file_stamp`: a file changed since then is an error.
    on_corrupt : {"stop", "repeat"}
        ``"stop"``: a corrupt frame in ``[start, stop)`` raises a
        :class:`~daskmag.errors.UserError` with its number.  ``"repeat"``:
        it shows the previous good frame instead (the next good one before
        the clip's first good frame), and a warning with its number is
        printed on stderr.
    stream, timing, fps
        As :func:`probe` (used when ``spec`` is not given).
    spec : dict, optional
        What the probe decided for this task (``_Plan.task``); default: probe now.

    Returns
    -------
    numpy.ndarray
        (stop - start, H, W, 3) uint8, upright (display rotation applied).
    """
    check_on_corrupt(on_corrupt)
    if stamp is not None and file_stamp(path) != tuple(stamp):
        raise UserError(f"{path} changed while it was being read")
    if spec is None:
        info, table, time_base, size = _probe(path, stream, timing, fps)
        spec = make_plan(info, timing, table, time_base, size).task(start, stop)
    import av

    container = av.open(media_name(path))
    try:
        stream = container.streams.video[spec["stream"]]
        stream.codec_context.thread_count = CODEC_THREADS
        grid = _placer(spec)
        back = 0
        if grid.by_count and grid.position is not None:
            segment = _Segment(path, start, stop, spec)
            container.seek(grid.position, unsupported_byte_offset=True)
            try:
                segment.decode(container, stream, grid, counting=True)
                return segment.result(on_corrupt)
            except _Unanchored:  # not at the IDR's packet: count from the stream's start
                container.seek(0, unsupported_byte_offset=True)
                grid = _Count()
        while True:
            from_start = grid.by_count or start == 0
            if not from_start:
                target = grid.seek_target(start) - back
                from_start = target <= grid.first
                container.seek(max(target, grid.first), stream=stream, backward=True)
            segment = _Segment(path, start, stop, spec)
            try:
                segment.decode(container, stream, grid, counting=from_start)
            except _Unanchored:  # the seek landed on a packet the plan does not know: count from the start
                grid, back = _Count(), 0
                container.seek(grid.first, stream=stream, backward=True)
                segment = _Segment(path, start, stop, spec)
                segment.decode(container, stream, grid, counting=True)
            # Frame ``start`` shows the last good frame at or before it: when
            # the seek did not reach one (the key frame landed late, or it and
            # what follows up to ``start`` are corrupt), look further back.
            if segment.has_first or from_start:
                break
            back = max(4 * back, grid.ticks(math.ceil(spec["rate"])), 1)  # 1 s, 4 s, 16 s, ...
        return segment.result(on_corrupt)
    finally:
        container.close()


class _Segment:
    """One decoding pass of :func:`read_frames`: good frames by number, and the corrupt ones."""

    def __init__(self, path, start: int, stop: int, spec: dict):
        self.path, self.start, self.stop = path, start, stop
        width, height = spec["size"]
        self.size = (width, height)
        self.turns = spec["rotation"] // 90
        if self.turns % 2:
            width, height = height, width
        self.format, dtype, channels, _ = sample_format(spec.get("pix_fmt"))
        self.out = np.empty((stop - start, height, width, channels), dtype=dtype)
        self.own = np.zeros(stop - start, dtype=bool)  # slots with a good frame of their own
        self.before = None  # the last good frame before ``start``
        self.after = None  # the first good frame from ``stop`` on, when none came earlier
        self.corrupt = set()
        from av.video.reformatter import VideoReformatter

        self.reformatter = VideoReformatter()

    def rgb(self, frame) -> np.ndarray:
        """A decoded frame as (H, W, C) samples (:func:`sample_format`), upright, converted on this thread.

        PyAV's default (``threads=0``) starts and stops a pool of scaler
        threads for every frame; see :data:`CODEC_THREADS`.  16-bit grey
        holding fewer significant bits is scaled by its real range.
        """
        if frame.format.name == self.format:
            image = frame.to_ndarray()
        elif self.format == "rgb24":
            # the frame's own matrix and range (full-range phone video stays full range)
            image = self.reformatter.reformat(frame, format="rgb24", threads=CODEC_THREADS,
                                              src_color_range=frame.color_range or None).to_ndarray()
        else:
            image = self.reformatter.reformat(frame, format=self.format, threads=CODEC_THREADS).to_ndarray()
        image = image.reshape(image.shape[:2] + (self.out.shape[-1],))
        if self.turns:
            image = np.rot90(image, k=-self.turns)  # clockwise quarter turns
        return image

    @property
    def has_first(self) -> bool:
        """Whether slot ``start`` has a good frame to show (its own, or an earlier one)."""
        return self.before is not None or bool(self.own[0])

    def decode(self, container, stream, grid, counting: bool):
        """Decode from where ``container`` stands until the segment is complete.

        ``counting``: the container stands at the stream's start, so frames
        without a timestamp can be counted from 0.
        """
        sent, seen = [], set()
        end = self._place(container.demux(stream), stream.codec_context, grid, sent, seen, counting)
        if grid.by_count or getattr(grid, "by_packet", False):
            return
        # A packet whose timestamp never came out of the decoder lost its
        # frame.  This finds the bad frame even when frame threading raises
        # the error some packets later, or the decoder drops it silently.
        for pts in sent:
            if pts not in seen and (end is None or pts < end):
                slot = grid.slot(pts)
                if self.start <= slot < self.stop:
                    self.corrupt.add(slot)

    def _frames(self, packets, codec):
        import av

        for packet in packets:
            yield packet, None
            try:
                frames = codec.decode(packet)
            except av.error.FFmpegError:
                continue  # its lost frame is found by the missing timestamp
            for frame in frames:
                yield None, frame

    def _place(self, packets, codec, grid, sent: list, seen: set, counting: bool):
        """Put decoded frames on their slots.

        Returns the timestamp of the frame that ended the segment, or None at
        the end of the stream.
        """
        import av

        start, stop, out, own = self.start, self.stop, self.out, self.own
        slot = getattr(grid, "base", 0) - 1 if counting else None
        position = getattr(grid, "position", None)  # a byte seek's packet: the first one must be it
        anchor = getattr(grid, "by_packet", False)
        pending = deque()  # anchor: (frame number or None before the window, pts) of packets sent
        last = None
        try:
            for packet, frame in self._frames(packets, codec):
                if packet is not None:
                    if not (packet.size and not packet.is_discard):
                        continue
                    if position is not None:
                        if packet.pos != position:
                            raise _Unanchored()
                        position = None
                    if anchor:
                        if packet.pos in grid.index:
                            last = grid.index[packet.pos]
                        elif last is not None:
                            last += 1
                        elif packet.pos is None or packet.pos > grid.lowest:
                            raise _Unanchored()
                        pending.append((last, packet.pts))
                    elif packet.pts is not None:
                        sent.append(packet.pts)
                    continue
                if anchor:
                    number = None
                    while pending:
                        number, pts = pending.popleft()
                        if pts == frame.pts:
                            break
                        if number is not None and start <= number < stop:
                            self.corrupt.add(number)  # its frame never came out of the decoder
                    slot = start - 1 if number is None else number
                elif grid.by_count:
                    slot += 1
                elif frame.pts is not None:
                    seen.add(frame.pts)
                    slot = grid.slot(frame.pts)
                elif slot is None:
                    raise UserError(f"{self.path}: frame has no timestamp after a seek")
                else:
                    slot += 1
                if (frame.width, frame.height) != self.size:
                    raise UserError(f"{self.path}: the frame size changes from {self.size[0]}x{self.size[1]} "
                                    f"to {frame.width}x{frame.height} at frame {slot}")
                if frame.is_corrupt:
                    if start <= slot < stop:
                        self.corrupt.add(slot)
                elif slot < start:
                    self.before = frame  # converted only if it is shown
                elif slot < stop:
                    out[slot - start] = self.rgb(frame)
                    own[slot - start] = True
                else:
                    if self.before is None and not own.any():
                        self.after = frame
                    return frame.pts
            for number, _ in pending:  # sent, never decoded
                if number is not None and start <= number < stop:
                    self.corrupt.add(number)
        except av.error.FFmpegError as exc:  # from the demuxer: the container is damaged
            last = start if slot is None or slot < start else slot
            raise UserError(f"cannot read {self.path} past frame {last} ({_reason(exc)})") from None
        return None

    def result(self, on_corrupt: str) -> np.ndarray:
        """The frames: slots without a good frame of their own show the one before."""
        bad = sorted(self.corrupt)
        if bad and on_corrupt == "stop":
            raise UserError(f"{self.path}: frame {bad[0]} is corrupt "
                            f"(use --on-corrupt repeat to repeat the previous frame)")
        out, own = self.out, self.own
        leading = np.zeros(len(own), dtype=bool)
        if not own.all():
            # each slot shows the last slot at or before it with a frame of its own
            source = np.where(own, np.arange(len(own)), -1)
            np.maximum.accumulate(source, out=source)
            leading = source < 0
            if leading.any():
                out[leading] = self._leading_frame()
            rest = ~own & ~leading
            out[rest] = out[source[rest]]
        for slot in bad:
            if leading[slot - self.start] and self.before is None:
                warn(f"{self.path}: frame {slot} is corrupt; showing the next good frame")
            else:
                warn(f"{self.path}: frame {slot} is corrupt; repeating the previous frame")
        return out

    def _leading_frame(self) -> np.ndarray:
        """What the slots before the segment's first good frame show."""
        if self.before is not None:
            return self.rgb(self.before)
        # no good frame since the stream's start: the clip's first frames
        # are corrupt and show the next good one
        if self.own.any():
            return self.out[np.argmax(self.own)]
        if self.after is not None:
            return self.rgb(self.after)
        raise UserError(f"{self.path}: no frame could be decoded")


class FFmpegReader(Reader):
    """Any file FFmpeg reads (through PyAV): the fallback reader.

    Frames come out upright (:func:`read_frames`): (n, H, W, 3) uint8 RGB, except
    grey and 9-16-bit grey video, kept mono at its depth (:func:`sample_format`).

    Parameters
    ----------
    path, on_corrupt
        As :class:`~daskmag.io.base.Reader`.
    stream : int, optional
        Which video stream (``--stream``; default the first).
    timing : {"keep", "resample"}
        The rule for a variable-rate stream (``--timing``).
    fps : float, optional
        The recording rate (``--fps``): the rate of a stream without timestamps.
    """

    kind = "file"
    options = ("stream", "timing", "fps")

    def __init__(self, path: Path, on_corrupt: str = "stop", stream: int | None = None, timing: str = "keep",
                 fps=None):
        super().__init__(path, on_corrupt)
        if timing not in TIMING_CHOICES:
            raise UserError(f"--timing must be one of {', '.join(TIMING_CHOICES)}, got {timing!r}")
        self.stream, self.timing = stream, timing
        self.fps = None if fps is None or float(fps) <= 0 else fps
        # a file changed after it was opened is an error, not other frames
        self.stamp = file_stamp(self.path) if self.path.exists() else None
        self._plan = None
        self._task = None  # (start, stop, spec) of the one range a task's copy reads (see part)

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_plan"] = None  # the client's; tasks get their own small part of it
        return state

    @classmethod
    def accepts(cls, path: Path) -> bool:
        return not path.is_dir()

    def probe(self) -> VideoInfo:
        info, table, time_base, size = _probe(self.path, self.stream, self.timing, self.fps)
        self._plan = make_plan(info, self.timing, table, time_base, size)
        return info

    def token(self) -> tuple:
        return super().token() + (self.stream, self.timing, None if self.fps is None else float(self.fps))

    def key_frames(self) -> list[int] | None:
        if self._plan is None:
            self.probe()
        return self._plan.key_frames()

    def _spec(self, start: int, stop: int) -> dict:
        if self._plan is None:
            self.probe()
        return self._plan.task(start, stop)

    def part(self, start: int, stop: int) -> FFmpegReader:
        """This reader with only the probe's plan for frames ``[start, stop)`` (small, whatever the file's length)."""
        part = copy.copy(self)
        part._plan, part._task = None, (start, stop, self._spec(start, stop))
        return part

    def read(self, start: int, stop: int, spec: dict | None = None) -> np.ndarray:
        if spec is None:
            task = self._task
            spec = task[2] if task is not None and task[:2] == (start, stop) else self._spec(start, stop)
        return read_frames(self.path, start, stop, self.stamp, self.on_corrupt, spec=spec)


register_reader(FFmpegReader, first=False)
