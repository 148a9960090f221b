"""Outputs: parallel, resumable, never half-written; writers behind one interface.

Every time block of the result is written by its own task, on the workers:
an encoded video's block into a *part* file (``.<name>.parts/000042.nut``,
:mod:`daskmag.io.encode`), a Zarr store's block in place with a marker file
(:mod:`daskmag.io.zarr_store`).  A part appears only when complete.  When
every block is done, the writer finishes the output (joins the parts by a
packet copy, or renames the store), which appears under its final name only
then.

So writing runs in parallel, memory stays bounded, and a run that is killed
keeps its finished blocks: the same command run again computes only the
missing ones (``manifest.json`` in the parts folder holds the Dask token of
the computation and the job's settings; a different job is refused unless
``restart``).  A run that fails on a :class:`UserError` (a corrupt input
frame, say) could never finish, and leaves nothing.

A new kind of output subclasses :class:`Writer` (its suffixes, the task that
writes one block, how the output is finished) and registers it with
:func:`register_writer`.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import dask
import dask.array as da

from ..errors import UserError
from ..settings import DEFAULT_CRF


class Writer:
    """One kind of output, chosen by the output's suffix (:func:`writer_for`)."""

    #: Lower-case suffixes this writer handles (``".mp4"``).
    suffixes: tuple[str, ...] = ()
    #: File name (a format string of the block index) marking a finished block in the parts folder.
    part_name = "{:06d}"

    def block_tasks(self, frames: da.Array, path: Path, fps, parts, todo, *, crf: float = DEFAULT_CRF,
                    attrs: dict | None = None) -> dict:
        """``{index: Delayed}``: the task that writes block ``index``, for each index in ``todo``."""
        raise NotImplementedError

    def finish(self, path: Path, parts, n_blocks: int, fps):
        """Make the output from its finished blocks and put it under its final name."""
        raise NotImplementedError

    @classmethod
    def claims(cls, path: str) -> bool:
        """Whether this writer takes ``path`` whatever its suffix (a folder, a pattern)."""
        return False

    def normalise(self, path) -> Path:
        """``path`` as this writer names it (a folder ``out/`` becomes ``out/%06d.tif``)."""
        return Path(path)

    def target(self, path: Path) -> Path:
        """What appears under its final name when the output is complete (``path`` itself,
        or the folder of an image sequence)."""
        return Path(path)


#: Registered writers by suffix.
WRITERS: dict[str, Writer] = {}


def register_writer(cls: type[Writer]) -> type[Writer]:
    """Register an output kind for its suffixes."""
    for suffix in cls.suffixes:
        WRITERS[suffix] = cls()
    return cls


def output_suffixes() -> list[str]:
    """Every output suffix a registered writer handles."""
    _load_writers()
    return sorted(WRITERS)


def writer_for(path) -> Writer:
    """The writer for ``path``'s suffix.

    Raises
    ------
    UserError
        No writer handles it.
    """
    _load_writers()
    for writer in WRITERS.values():
        if writer.claims(str(path)):
            return writer
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in WRITERS:
        raise UserError(f"unknown output extension {suffix or '(none)'!r} for {path}; "
                        f"use one of {', '.join(output_suffixes())}")
    return WRITERS[suffix]


def _load_writers():
    from . import encode, tiff, zarr_store  # noqa: F401  (they register themselves)


def exact_rate(fps) -> Fraction:
    """A frame rate as an exact fraction (29.97 stays 30000/1001)."""
    return Fraction(fps).limit_denominator(1_000_000)


def check_output(path, overwrite: bool) -> Path:
    """Validate an output path before any work: extension, existence, writable folder."""
    writer = writer_for(path)
    target = writer.target(path)
    path = writer.normalise(path)
    if target.exists() and not overwrite:
        raise UserError(f"output exists: {target} (use --overwrite to replace it)")
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise UserError(f"output folder does not exist: {folder}")
    try:  # a real write: permissions, read-only mounts and quotas all show here
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError:
        raise UserError(f"output folder is not writable: {folder}") from None
    return path


def partial_path(path: Path) -> Path:
    """The temporary name an output is written under before the final rename."""
    path = Path(path)
    return path.with_name(f".{path.stem}.partial{path.suffix}")


def parts_folder(path: Path) -> Path:
    """Where the finished blocks of an unfinished output are kept."""
    path = Path(path)
    return path.with_name(f".{path.name}.parts")


def replace_path(tmp: Path, path: Path):
    """Move ``tmp`` to ``path``, replacing what is there."""
    if path.exists():
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    os.replace(tmp, path)


def remove_path(path: Path):
    """Remove a file or a folder, if it is there."""
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        path.unlink()


class _Parts:
    """The parts folder of one output: which blocks are done, for which job and computation."""

    def __init__(self, path: Path, token: str, chunks, restart: bool, settings: dict | None = None):
        self.folder = parts_folder(path)
        self.manifest = self.folder / "manifest.json"
        record = {"token": token, "chunks": list(chunks), "settings": settings or {}}
        self.resuming = False
        if self.folder.exists():
            try:
                previous = json.loads(self.manifest.read_text())
            except (OSError, ValueError):
                previous = None
            if restart or previous is None:
                remove_path(self.folder)
            elif previous != record:
                raise UserError(f"{self.folder} holds an unfinished run with {_difference(previous, record)}; "
                                f"use --restart to discard it")
            else:
                self.resuming = True
        self.folder.mkdir(exist_ok=True)
        self.manifest.write_text(json.dumps(record, indent=1))

    def done(self, index: int, name: str) -> bool:
        return (self.folder / name.format(index)).exists()


def _difference(previous: dict, record: dict) -> str:
    """What differs between two manifests, in a few words."""
    old, new = _flat(previous.get("settings") or {}), _flat(record["settings"])
    changed = [f"{key} {old.get(key)!r} (now {new.get(key)!r})" for key in sorted(set(old) | set(new))
               if old.get(key) != new.get(key)]
    if changed:
        return "other settings: " + ", ".join(changed[:3]) + (", ..." if len(changed) > 3 else "")
    return "another input or block plan"


def _flat(settings: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in settings.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def write_video(frames: da.Array, path, fps, *, crf: float = DEFAULT_CRF, overwrite: bool = False, client=None,
                progress=None, attrs: dict | None = None, restart: bool = False, on_resume=None,
                settings: dict | None = None, label: str | None = None):
    """Compute ``frames`` and write them to ``path`` (video file or ``.zarr`` store).

    Each time block is computed and encoded by its own task (on ``client``'s
    cluster if given, else the current Dask scheduler); the output appears
    under its final name only when complete.  If an earlier run of the same
    computation was interrupted, only its missing blocks are computed.

    The same in steps, for several outputs in one window of blocks (``daskmag
    batch``): :func:`prepare_output`, :func:`run_blocks`, :meth:`PreparedOutput.finish`.

    Parameters
    ----------
    frames : dask.array.Array
        (T, H, W, C) uint8 or uint16, RGB (``C = 3``) or mono (``C = 1``),
        chunked along time (each chunk is one block).
    path : str or Path
        ``.mp4``/``.mov`` (H.264, 8-bit), ``.avi``/``.mkv`` (FFV1, lossless,
        8 or 16-bit), ``.zarr``, or a 16-bit TIFF sequence (``out/%06d.tif``
        or a folder ``out/``, :mod:`daskmag.io.tiff`).
    fps : Fraction or float
        Frame rate written to the output.
    crf : float
        H.264 constant-rate factor.
    overwrite : bool
        Replace an existing output.
    client : distributed.Client, optional
    progress : callable, optional
        Called with the number of frames of each finished block.
    attrs : dict, optional
        Extra attributes for a ``.zarr`` output.
    restart : bool
        Discard the finished blocks of an interrupted run instead of resuming.
    on_resume : callable, optional
        Called with (blocks already done, total blocks) when resuming.
    settings : dict, optional
        The job's settings (JSON-able), recorded with the finished blocks: a
        resumed run must have the same.
    label : str, optional
        Name of the block tasks (``("write <label>", index)``) and of their
        Dask span, so the dashboard shows the work per output (default: the
        output's file name).

    Raises
    ------
    UserError
        A bad output path, an unfinished run of another job for the same
        output, or an error of the input while the blocks are computed.
    """
    job = prepare_output(frames, path, fps, crf=crf, overwrite=overwrite, attrs=attrs, restart=restart,
                         settings=settings, label=label)
    if job.resuming_blocks and on_resume:
        on_resume(job.resuming_blocks, len(job.chunks))
    if progress and job.frames_done:
        progress(job.frames_done)

    def done(item, result):
        if progress:
            progress(job.chunks[item[1]])

    try:
        run_blocks(((job, index, task) for index, task in job.tasks.items()), client, on_done=done,
                   window=None)
    except UserError:
        job.discard()
        raise
    return job.finish()


@dataclass(eq=False)  # one per output: hashed by identity
class PreparedOutput:
    """One output whose block tasks are built but not yet run (:func:`prepare_output`).

    Attributes
    ----------
    path : Path
        The final output (absolute).
    chunks : tuple of int
        Frames of each time block.
    tasks : dict
        ``{block index: Delayed}`` of the blocks still to write, in order.
    window : int
        Blocks of this output to keep in flight at least (:func:`daskmag.graph.blocks_in_flight`).
    early : daskmag.graph.EarlyInputs or None
        Results its blocks compute for later ones, held until those are submitted.
    frames_done : int
        Frames of the blocks an interrupted run already wrote.
    resuming_blocks : int
        How many blocks that is.
    label : str
        The name the tasks carry on the dashboard.
    """

    path: Path
    fps: object
    writer: Writer
    parts: "_Parts"
    chunks: tuple
    tasks: dict
    label: str
    window: int = 0
    early: object = None

    @property
    def resuming_blocks(self) -> int:
        return len(self.chunks) - len(self.tasks)

    @property
    def frames_done(self) -> int:
        return int(sum(n for i, n in enumerate(self.chunks) if i not in self.tasks))

    @property
    def n_frames(self) -> int:
        return int(sum(self.chunks))

    def finish(self) -> Path:
        """Make the output from its finished blocks, under its final name; drop the parts."""
        self.writer.finish(self.path, self.parts, len(self.chunks), self.fps)
        remove_path(self.parts.folder)
        return self.path

    def discard(self):
        """Drop the finished blocks and any partial output: this computation can never finish
        (a corrupt frame, a changed input)."""
        remove_path(self.parts.folder)
        remove_path(partial_path(self.writer.target(self.path)))


def task_label(name: str) -> str:
    """A file name as a task-name prefix that Dask's dashboard keeps whole (no ``-``)."""
    return str(name).replace("-", "_")


def _block_written(result):
    return result


def prepare_output(frames: da.Array, path, fps, *, crf: float = DEFAULT_CRF, overwrite: bool = False,
                   attrs: dict | None = None, restart: bool = False, settings: dict | None = None,
                   label: str | None = None) -> PreparedOutput:
    """Check the output, open its parts folder (resuming or not) and build its block tasks.

    Parameters and errors are those of :func:`write_video`.  Nothing is
    computed: run the tasks (:func:`run_blocks`), then
    :meth:`PreparedOutput.finish`; on a :class:`UserError` from a task,
    :meth:`PreparedOutput.discard`.
    """
    path = check_output(path, overwrite).absolute()  # parts are written by the workers
    if frames.ndim != 4 or frames.shape[-1] not in (1, 3):
        raise UserError("frames must be a (T, H, W, 3) RGB or (T, H, W, 1) mono array")
    frames = frames.rechunk({3: -1})
    chunks = frames.chunks[0]
    writer = writer_for(path)
    target = writer.target(path)
    parts = _Parts(target, frames.name, chunks, restart, settings)
    todo = [i for i in range(len(chunks)) if not parts.done(i, writer.part_name)]
    from ..graph import blocks_in_flight, early_inputs

    early = early_inputs(frames)
    if early is None:
        tasks = writer.block_tasks(frames, path, fps, parts, todo, crf=crf, attrs=attrs)
    else:
        # no low-level fusion: the keys the blocks share keep their names, so
        # that the results held for later blocks are the ones they use
        with dask.config.set({"optimization.fuse.active": False}):
            tasks = writer.block_tasks(frames, path, fps, parts, todo, crf=crf, attrs=attrs)
        early = early.delayed(tasks.values())
        if not early.results:  # nothing found to hold: keep the graph's window instead
            early = None
    label = task_label(label or path.name)
    # one cheap task per block under the output's name: the dashboard's
    # progress bars and task stream then show the work per output
    named = {index: dask.delayed(_block_written, pure=True)(task, dask_key_name=(f"write {label}", index))
             for index, task in tasks.items()}
    return PreparedOutput(path, fps, writer, parts, tuple(chunks), named, label, blocks_in_flight(frames), early)


def default_window(client) -> int:
    """Blocks in flight at once: two per worker thread, at least 4."""
    return max(4, 2 * sum(client.nthreads().values()))


def run_blocks(items, client, *, on_done=None, on_error=None, window: int | None = None):
    """Compute block tasks of one or several outputs, at most ``window`` in flight.

    At most ``window`` blocks (default :func:`default_window`) are submitted
    at once, in the order ``items`` gives them, and the next one as each
    finishes: the scheduler never holds more than a few blocks' inputs and
    results, so memory does not grow with the number of blocks or outputs,
    and the next output's blocks fill the workers while one output's last
    blocks finish.  ``items`` is read lazily, so it may build each output's
    graph only when its first block is due.

    Parameters
    ----------
    items : iterable of (owner, index, Delayed)
        The block tasks; ``owner`` is any hashable (a :class:`PreparedOutput`).
    client : distributed.Client or None
        Without one, the blocks are computed one by one with the current scheduler.
    on_done : callable, optional
        ``on_done((owner, index), result)`` for each finished block.
    on_error : callable, optional
        ``on_error(owner, exception)`` when a block of ``owner`` fails: its
        other blocks are cancelled and skipped and the others go on.  Without
        it, the first error cancels everything and is raised.
    window : int, optional
        Blocks in flight at once.

    Raises
    ------
    Exception
        The first failed block's error, when ``on_error`` is not given.
    """
    items = iter(items)
    failed = set()
    if client is None:
        for owner, index, task in items:
            if owner in failed:
                continue
            try:
                result = task.compute()
            except Exception as exc:
                if on_error is None:
                    raise
                failed.add(owner)
                on_error(owner, exc)
                continue
            if on_done:
                on_done((owner, index), result)
        return
    from distributed import as_completed

    from_span = _span_context()
    if window is None:
        window = default_window(client)
    item_of = {}
    submitted = set()  # (owner, index) of the blocks submitted so far
    holding = {}  # owner -> {item: (futures of its results, the block whose submission ends the hold)}
    inputs_of = {}  # a block's future key -> futures of the results its last task reads

    def compute_holding(owner, index, task):
        """Submit block ``index`` together with the results it shares with blocks not
        yet submitted, and hold those until the last of them is.  One submission:
        on small frames a shared result can finish, and be released, before a
        separate request to hold it arrives.

        Each submission ranks below the ones before it (``priority``): dask
        numbers the tasks of each submitted graph on its own, and the first
        block's graph, which also computes what later blocks share, ranked its
        own synthesis behind the later blocks' encodes, so a staged run ended
        with that block's synthesis and encode on one thread (0.3-0.4 s of
        a 4-5 s guitar.mp4 run).

        The block's own last task (its encode, or its write to a store) is a
        submission of its own, ranked ``window`` submissions lower than the
        rest of the block, whose results it reads (held for it meanwhile):
        the workers run the syntheses of the blocks in flight before their
        encodes, so the last block's synthesis does not wait behind earlier
        blocks' encodes and then encode alone (guitar.mp4: 0.94x the wall
        time, 8 alternating rounds).  An encode ranks with the block
        submitted ``window`` later, so at most a window of blocks wait for
        theirs."""
        priority = -len(submitted)
        inputs = _direct_inputs(task)
        early = getattr(owner, "early", None)
        held, pulls = (holding.setdefault(owner, {}), early.pulls(index)) if early is not None else ({}, ())
        new = {}
        for j in pulls:
            later = [b for b in early.holders[j] if b > index and b in owner.tasks and (owner, b) not in submitted]
            if later and j not in held and j in early.results:
                new[j] = max(later)
        extra = [d for j in new for d in early.results[j]]
        if not inputs:  # nothing to run first: one submission
            future, *futures = client.compute([task, *extra], priority=priority)
        else:
            # the inputs (and the shared results) in one submission, held until
            # the block is done; then the last task, which the scheduler finds
            # waiting on them
            computed = client.compute([*inputs, *extra], priority=priority)
            kept, futures = computed[: len(inputs)], computed[len(inputs):]
            future = client.compute(task, priority=priority - window)
            inputs_of[future.key] = kept
        for j, last in new.items():
            count = len(early.results[j])
            held[j], futures = (futures[:count], last), futures[count:]
        for j in [j for j, (_, last) in held.items() if last <= index]:
            del held[j]  # the last block that uses it is submitted: its graph holds it now
        return future

    def submit(count):
        nonlocal window
        futures = []
        while len(futures) < count:
            item = next(items, None)
            if item is None:
                break
            owner, index, task = item
            if owner in failed:
                continue
            # a staged graph shares work between neighbouring blocks: keep enough
            # of them in flight that shared results are not released and redone,
            # unless what they share is held for them (then any window will do)
            wanted = 0 if getattr(owner, "early", None) is not None else getattr(owner, "window", 0)
            if wanted > window:
                count += wanted - window
                window = wanted
            with from_span(getattr(owner, "label", None)):
                future = compute_holding(owner, index, task)
                submitted.add((owner, index))
            item_of[future.key] = (owner, index)
            futures.append(future)
        return futures

    running = as_completed(submit(window))
    try:
        for future in running:
            item = item_of.pop(future.key, None)
            inputs_of.pop(future.key, None)  # done (or failed): its inputs are released
            if item is None or item[0] in failed:  # cancelled with its failed output
                continue
            owner, index = item
            try:
                result = future.result()  # raises the task's error, if any
            except Exception as exc:
                if on_error is None:
                    raise
                failed.add(owner)
                holding.pop(owner, None)
                for other in list(running.futures):
                    if item_of.get(other.key, (None,))[0] is owner:
                        other.cancel()
                        item_of.pop(other.key, None)
                        for held_input in inputs_of.pop(other.key, ()):
                            held_input.cancel()
                on_error(owner, exc)
                running.update(submit(window - _in_flight(running)))
                continue
            if on_done:
                on_done((owner, index), result)
            running.update(submit(window - _in_flight(running)))
    except BaseException:
        for future in [*running.futures, *(f for kept in inputs_of.values() for f in kept)]:
            future.cancel()
        raise


def _direct_inputs(task) -> list:
    """The results ``task`` (a Delayed) reads, as Delayed objects of its graph."""
    import dask.core
    from dask.delayed import Delayed

    graph = task.__dask_graph__()
    return [Delayed(key, graph) for key in sorted(dask.core.get_dependencies(graph, task.key), key=str)]


def _in_flight(running) -> int:
    return sum(1 for future in running.futures if not future.cancelled())


def _span_context():
    """``distributed.span`` (a Dask span per output, for the dashboard) or a no-op."""
    import contextlib

    try:
        from distributed import span
    except ImportError:  # pragma: no cover (old distributed)
        span = None

    def context(label):
        if span is None or not label:
            return contextlib.nullcontext()
        return span(f"daskmag {label}")

    return context


def ingest(video, store, *, chunk_frames: int | None = None, overwrite: bool = False, client=None,
           progress=None, fps=None, playback_fps=None):
    """Decode a video file into a chunked Zarr v3 store (streaming, in parallel).

    The store keeps the frames as read: their dtype (8 or 16-bit) and
    channels (mono or RGB).

    Parameters
    ----------
    video : str or Path or Video
        The video file (or an already opened :class:`~daskmag.io.Video`).
    store : str or Path
        Output ``.zarr`` path.  Chunks hold whole frames (~64 MiB each); the
        attributes record ``fps`` (the playback rate), ``recording_fps``,
        ``bits``, ``source``, ``frames`` and ``codec``.
    fps : float, optional
        The recording rate, where the source records none (an image sequence).
    playback_fps : float, optional
        The store's playback rate (default: the source's, see
        :attr:`~daskmag.io.VideoInfo.playback_rate`).

    Raises
    ------
    UserError
        A source without a recording rate and no ``fps``, a bad store name.
    """
    from . import Video, open_video

    if not isinstance(video, Video):
        video = open_video(video, chunk_frames=chunk_frames)
    store = Path(store)
    if store.suffix != ".zarr":
        raise UserError(f"an ingested store must end in .zarr: {store}")
    info = video.info
    recording = exact_rate(fps) if fps else Fraction(info.fps)
    if not recording:
        raise UserError(f"{info.path} records no frame rate: give the recording rate with --fps")
    playback = exact_rate(playback_fps) if playback_fps else (info.playback_rate or recording)
    attrs = {"source": str(info.path), "codec": info.codec, "bits": info.bits,
             "recording_fps": f"{recording.numerator}/{recording.denominator}"}
    return write_video(video.frames, store, playback, overwrite=overwrite, client=client, progress=progress,
                       attrs=attrs)
