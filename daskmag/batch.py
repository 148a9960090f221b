"""Many files on one cluster: what ``daskmag batch`` runs.

A batch is a list of magnifications (:class:`daskmag.run.Job`), one per
input file, into one output folder.  Every file is checked before any work
(:func:`daskmag.run.preflight`); a file that fails its check, or later (a
corrupt frame, an error in a task), is recorded with a one-line reason and
the others go on.  The time blocks of all the files go through one bounded
window of blocks in flight (:func:`daskmag.io.output.run_blocks`): the next
file's first blocks fill the workers while one file's last blocks finish,
and memory stays that of one window however many files there are.

A finished output is skipped; an interrupted one resumes from its finished
blocks (as ``magnify`` does), so running the same command again after a kill
or a time limit finishes the job.  ``OUTDIR/batch-report.json`` (and the same
as ``batch-report.csv``) is rewritten as files change state (and at most
once a second as blocks finish): one record per input
with ``input``, ``output``, ``status`` (``pending``, ``running``, ``done``,
``skipped`` or ``failed``), ``error`` (one line or null), ``frames``,
``seconds`` and ``settings``.
"""

from __future__ import annotations

import csv
import glob
import io
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .errors import UserError

#: Report files written in the output folder.
REPORT_JSON = "batch-report.json"
REPORT_CSV = "batch-report.csv"
#: Output formats of ``--format`` (the output's suffix).
FORMATS = ("mp4", "mov", "mkv", "avi", "zarr")
#: Files a folder given as INPUT contributes (by suffix, case-insensitive): containers, raw
#: H.264/H.265 streams, Phantom ``.cine`` and Photron recordings (one entry each, by its header);
#: also its ``.zarr`` stores and its subfolders of TIFF or PNG images (a high-speed camera's frames).
VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".mts", ".m2ts", ".ts",
                  ".mxf", ".wmv", ".flv", ".nut", ".y4m", ".h264", ".264", ".h265", ".265", ".hevc",
                  ".cine", ".cihx", ".cih", ".mraw", ".zarr")
#: Report columns, in order (``settings`` is JSON in the CSV).
COLUMNS = ("input", "output", "status", "error", "frames", "seconds", "settings")
#: Least seconds between two rewrites of the report for blocks alone (a file's change of state rewrites it at once).
REPORT_INTERVAL = 1.0
#: Final states of a file.
FINAL = ("done", "skipped", "failed")


@dataclass
class Entry:
    """One input of a batch, as found on the command line or in a manifest.

    Attributes
    ----------
    source : Path
    output : Path or None
        The manifest's ``output`` (relative to OUTDIR), else the default name.
    options : dict
        The manifest row's other cells: option long name (``alpha``,
        ``time-chunk``) to text; empty cells are left out.
    """

    source: Path
    output: Path | None = None
    options: dict = field(default_factory=dict)


def _is_glob(text: str) -> bool:
    return any(char in text for char in "*?[")


def _folder_inputs(folder: Path) -> list[Path]:
    from .io.images import ImageSequenceReader

    paths = [path for path in sorted(folder.iterdir()) if not path.name.startswith(".")]
    names = {path.name.lower() for path in paths}
    found = []
    for path in paths:
        suffix = path.suffix.lower()
        stem = path.name[: len(path.name) - len(suffix)].lower()
        if path.is_dir():
            if suffix == ".zarr" or ImageSequenceReader.accepts(path):
                found.append(path)
            continue
        if suffix not in VIDEO_SUFFIXES or not path.is_file():
            continue
        # a Photron recording once, by its header (.cihx before .cih); an .mraw
        # without one stays, so that its report names what is missing
        if suffix == ".cih" and f"{stem}.cihx" in names:
            continue
        if suffix == ".mraw" and (f"{stem}.cihx" in names or f"{stem}.cih" in names):
            continue
        found.append(path)
    return found


def read_manifest(path) -> list[Entry]:
    """The rows of a ``.csv`` manifest: a column ``input``, optionally ``output``, and options.

    Relative inputs are relative to the manifest's folder; a relative
    ``output`` is relative to the batch's output folder.  Other columns are
    ``magnify`` options by their long name (``alpha``, ``low``, ``time-chunk``
    or ``time_chunk``); an empty cell takes the command line's value.

    Raises
    ------
    UserError
        An unreadable manifest, or one without an ``input`` column.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read the manifest {path}: {exc}") from None
    reader = csv.DictReader(io.StringIO(text))
    columns = [name.strip() for name in (reader.fieldnames or [])]
    if "input" not in columns:
        raise UserError(f"the manifest {path} needs a column 'input' (found: {', '.join(columns) or 'none'})")
    entries = []
    for line, row in enumerate(reader, start=2):
        extra = [cell for cell in row.get(None, []) if cell.strip()]
        if extra:  # csv puts the cells past the header's under None
            raise UserError(f"the manifest {path}, line {line}, has {len(columns) + len(row[None])} cells for "
                            f"{len(columns)} columns: quote a cell holding commas, e.g. \"100,80,640,200\" for roi")
        row = {(key or "").strip(): (value or "").strip() for key, value in row.items() if key is not None}
        if not row.get("input"):
            if any(row.values()):
                raise UserError(f"the manifest {path}, line {line}, has no input")
            continue
        source = Path(row.pop("input"))
        if not source.is_absolute():
            source = path.parent / source
        output = row.pop("output", "") or None
        entries.append(Entry(source, Path(output) if output else None,
                             {key: value for key, value in row.items() if value != ""}))
    return entries


def collect_inputs(inputs) -> list[Entry]:
    """The entries of INPUT...: files, folders (their video files), globs and ``.csv`` manifests.

    A named file is kept even if it does not exist (its check then fails and
    is reported with the others); a folder or a glob that finds nothing is a
    usage error.

    Raises
    ------
    UserError
        Nothing to do, a folder or pattern with no video, a bad manifest.
    """
    entries: list[Entry] = []
    for text in inputs:
        text = str(text)
        path = Path(text)
        if path.suffix.lower() == ".csv" and path.is_file():
            entries.extend(read_manifest(path))
        elif path.is_dir() and path.suffix.lower() != ".zarr":
            found = _folder_inputs(path)
            if not found:
                raise UserError(f"no video files in the folder {path} (looked for {', '.join(VIDEO_SUFFIXES)}"
                                f" and folders of images)")
            entries.extend(Entry(p) for p in found)
        elif _is_glob(text) and not path.exists():
            found = [Path(p) for p in sorted(glob.glob(text)) if not Path(p).name.startswith(".")]
            if not found:
                raise UserError(f"no file matches {text}")
            entries.extend(Entry(p) for p in found)
        else:
            entries.append(Entry(path))
    if not entries:
        raise UserError("no input given (daskmag batch INPUT... -o OUTDIR)")
    return entries


def _column_key(name: str) -> str:
    return name.strip().lstrip("-").replace("_", "-").lower()


def check_columns(entries, options: dict):
    """Every manifest column must name a per-file option (a usage error, before any work).

    Raises
    ------
    UserError
        A column that is not a ``magnify`` option, or one that is the same for a whole batch.
    """
    for entry in entries:
        for name in entry.options:
            if _column_key(name) not in options:
                raise UserError(f"the manifest column {name!r} is not a per-file magnify option "
                                f"(e.g. alpha, low, high, fps, time-chunk)")


_TRUE, _FALSE = ("1", "true", "yes", "y", "on"), ("0", "false", "no", "n", "off")


def apply_options(args, options: dict, actions: dict):
    """A copy of the parsed command line with a manifest row's options put in.

    Parameters
    ----------
    args : argparse.Namespace
    options : dict
        Option long name (as a manifest column) to text.
    actions : dict
        Option long name to its ``argparse`` action (``magnify``'s).

    Raises
    ------
    UserError
        An unknown option or a value its option does not accept.
    """
    import argparse
    import copy

    check_columns([Entry(Path("."), None, options)], actions)
    args = copy.copy(args)
    for name, text in options.items():
        action = actions[_column_key(name)]
        if action.nargs == 0:  # a flag: a yes/no cell
            if text.lower() not in _TRUE + _FALSE:
                raise UserError(f"{name} must be true or false, got {text!r}")
            value = action.const if text.lower() in _TRUE else action.default
        else:
            try:
                value = action.type(text) if action.type else text
            except (argparse.ArgumentTypeError, TypeError, ValueError) as exc:
                raise UserError(f"{name}: {exc}") from None
            if action.choices is not None and value not in action.choices:
                raise UserError(f"{name} must be one of {', '.join(map(str, action.choices))}, got {text!r}")
        setattr(args, action.dest, value)
    return args


def default_output(outdir: Path, source: Path, format: str = "mp4") -> Path:
    """``OUTDIR/<input name without its extension>.<format>``."""
    return Path(outdir) / f"{Path(source).stem}.{format}"


@dataclass
class Record:
    """One input's line of the report."""

    input: str
    output: str
    status: str = "pending"
    error: str | None = None
    frames: int | None = None
    seconds: float | None = None
    settings: dict | None = None
    frames_done: int = 0
    job: object = field(default=None, repr=False)
    started: float | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        return {"input": self.input, "output": self.output, "status": self.status, "error": self.error,
                "frames": self.frames, "seconds": self.seconds, "settings": self.settings,
                "frames_done": self.frames_done}


def one_line(exc: BaseException) -> str:
    """An error as one line: a :class:`UserError`'s message, else ``Type: message``."""
    text = str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"
    text = " ".join(text.split())
    return text or type(exc).__name__


class Report:
    """The batch's report, rewritten (atomically) as files change state.

    Parameters
    ----------
    outdir : Path
    records : list of Record
    """

    def __init__(self, outdir: Path, records: list[Record]):
        self.outdir = Path(outdir)
        self.records = records
        self.started = time.time()
        self.written = 0.0

    def totals(self) -> dict:
        counts = {state: 0 for state in ("pending", "running", "done", "skipped", "failed")}
        for record in self.records:
            counts[record.status] = counts.get(record.status, 0) + 1
        frames_total = sum(r.frames or 0 for r in self.records if r.status != "failed")
        frames_done = sum(r.frames_done for r in self.records if r.status != "failed")
        return {"files_total": len(self.records), **{f"files_{k}": v for k, v in counts.items()},
                "frames_total": frames_total, "frames_done": frames_done}

    def to_dict(self) -> dict:
        return {"outdir": str(self.outdir.absolute()), "started": self.started, "updated": time.time(),
                "finished": all(r.status in FINAL for r in self.records), "totals": self.totals(),
                "files": [r.to_dict() for r in self.records]}

    def write(self):
        """Rewrite ``batch-report.json`` and ``batch-report.csv`` (each replaced in one step)."""
        _replace_text(self.outdir / REPORT_JSON, json.dumps(self.to_dict(), indent=1) + "\n")
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(COLUMNS)
        for r in self.records:
            writer.writerow([r.input, r.output, r.status, r.error or "", "" if r.frames is None else r.frames,
                             "" if r.seconds is None else f"{r.seconds:.3f}",
                             json.dumps(r.settings, sort_keys=True) if r.settings else ""])
        _replace_text(self.outdir / REPORT_CSV, buffer.getvalue())
        self.written = time.time()


def _replace_text(path: Path, text: str):
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def read_report(outdir) -> dict:
    """The report of the batch in ``outdir``.

    Raises
    ------
    UserError
        No report there, or an unreadable one.
    """
    path = Path(outdir) / REPORT_JSON
    if Path(outdir).is_file() and Path(outdir).name == REPORT_JSON:
        path = Path(outdir)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"no batch report in {outdir} (looked for {REPORT_JSON})") from None
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read the batch report {path}: {exc}") from None


def describe_report(report: dict) -> str:
    """``daskmag status``: one line per file and the totals."""
    lines = []
    for record in report["files"]:
        status = record["status"]
        detail = ""
        if status == "failed":
            detail = f": {record['error']}"
        elif status == "running" and record.get("frames"):
            detail = f": {record.get('frames_done', 0)} of {record['frames']} frames"
        elif status in ("done", "skipped") and record.get("frames") is not None:
            detail = f": {record['frames']} frames" + (f" in {record['seconds']:.1f} s" if record.get("seconds")
                                                        else "")
        lines.append(f"{status:8s} {record['input']} -> {record['output']}{detail}")
    t = report["totals"]
    percent = 100.0 * t["frames_done"] / t["frames_total"] if t["frames_total"] else 100.0
    state = "finished" if report.get("finished") else "running or interrupted"
    lines.append(f"{t['files_total']} files: {t['files_done']} done, {t['files_skipped']} skipped, "
                 f"{t['files_failed']} failed, {t['files_running']} running, {t['files_pending']} pending; "
                 f"{t['frames_done']} of {t['frames_total']} frames ({percent:.0f}%); {state}")
    return "\n".join(lines)


def check_outputs(outputs: list[Path]):
    """Two inputs must not write the same output.

    Raises
    ------
    UserError
        The first output named twice.
    """
    seen = {}
    for index, path in enumerate(outputs):
        key = str(Path(path).absolute())
        if key in seen:
            raise UserError(f"two inputs would write the same output {path} (inputs {seen[key] + 1} and "
                            f"{index + 1}); give an 'output' column in a manifest")
        seen[key] = index


@dataclass
class BatchResult:
    """What :func:`run_batch` did: the records and the exit status (0 all done or skipped, 1 any failed)."""

    records: list[Record]
    report: Path

    @property
    def exit_status(self) -> int:
        return 1 if any(r.status == "failed" for r in self.records) else 0


def _say(text: str):
    from tqdm import tqdm

    tqdm.write(text, file=sys.stderr)


def run_batch(jobs, outdir, *, client, progress: bool = True, window: int | None = None,
              metrics: bool = True, say=None) -> BatchResult:
    """Run a batch of jobs on ``client``'s cluster, all blocks under one window.

    Parameters
    ----------
    jobs : list of (str, Path, Job or UserError)
        For each input, as given: its text, its output, and its
        :class:`~daskmag.run.Job` (or the one-line error that made one
        impossible, e.g. a bad value in a manifest cell: recorded as failed).
    outdir : Path
        The output folder, where the report is written.
    client : distributed.Client
    progress : bool
        Show one bar of frames for the whole batch (on a terminal).
    window : int, optional
        Blocks in flight at once (default: two per worker thread, at least 4).
    metrics : bool
        Publish the counts on the scheduler's ``/metrics`` (:mod:`daskmag.metrics`).
    say : callable, optional
        Prints a line per file as it finishes, fails or is skipped (default: stderr).

    Returns
    -------
    BatchResult
    """
    from .cluster import worker_threads
    from .io import output as out
    from .io import probe
    from .run import job_frames, output_rates, preflight, progress_bar, warn_variable_rate

    say = say or _say
    outdir = Path(outdir)
    records, checked = [], []
    for text, output, job in jobs:
        record = Record(str(text), str(output))
        records.append(record)
        if isinstance(job, BaseException):
            record.status, record.error = "failed", one_line(job)
            continue
        record.job, record.settings = job, job.to_dict()
        if Path(output).exists() and not job.write.overwrite:
            record.status = "skipped"
            try:
                record.frames = probe(output).n_frames
            except Exception:  # noqa: BLE001 - an output of another kind: skipped all the same
                record.frames = None
            continue
        try:
            reader, info, plan, output_path = preflight(job)
            rates = output_rates(job, reader, info, plan, output_path)
        except UserError as exc:
            record.status, record.error = "failed", one_line(exc)
            continue
        record.frames = plan.n_frames
        checked.append((record, reader, info, rates))
    report = Report(outdir, records)
    report.write()
    for record in records:
        if record.status == "failed":
            say(f"failed  {record.input}: {record.error}")
        elif record.status == "skipped":
            say(f"skipped {record.input}: {record.output} exists")

    batch_name = str(outdir.absolute())
    publishing = metrics and _install_metrics(client)

    def publish():
        if publishing:
            from .metrics import publish as send

            send(client, batch_name, report.totals())

    publish()
    threads = worker_threads(client)
    owners = {}  # PreparedOutput -> Record
    remaining = {}
    bar = progress_bar(sum(r.frames or 0 for r, *_ in checked), progress)

    def fail(record, exc, prepared=None):
        if record.status in ("pending", "running"):  # counted in the bar: it will not be written
            bar.total -= record.frames or 0
            bar.update(-record.frames_done)
            bar.refresh()
        record.status, record.error = "failed", one_line(exc)
        record.seconds = time.time() - record.started if record.started else None
        if prepared is not None and isinstance(exc, UserError):
            prepared.discard()  # can never finish (a corrupt frame): its blocks are useless
        say(f"failed  {record.input}: {record.error}")
        report.write()
        publish()

    def finish(prepared, record):
        try:
            prepared.finish()
        except Exception as exc:  # noqa: BLE001 - recorded; the others go on
            fail(record, exc)
            return
        record.status = "done"
        record.seconds = time.time() - record.started
        record.frames_done = record.frames = prepared.n_frames
        say(f"done    {record.input} -> {record.output}: {prepared.n_frames} frames in {record.seconds:.1f} s")
        report.write()
        publish()

    def blocks():
        for record, reader, info, (playback, _, attrs) in checked:
            record.started = time.time()
            try:
                warn_variable_rate(info)
                frames = job_frames(record.job, reader, info, threads, client=client)
                prepared = out.prepare_output(
                    frames, record.output, playback, crf=record.job.write.crf,
                    overwrite=record.job.write.overwrite, restart=record.job.write.restart,
                    settings=record.settings, label=Path(record.input).name, attrs=attrs)
            except Exception as exc:  # noqa: BLE001 - one file's problem; the others go on
                fail(record, exc)
                continue
            record.status = "running"
            record.frames = prepared.n_frames
            record.frames_done = prepared.frames_done
            bar.update(prepared.frames_done)
            if prepared.resuming_blocks:
                say(f"resume  {record.input}: {prepared.resuming_blocks} of {len(prepared.chunks)} blocks "
                    f"already done")
            report.write()
            if not prepared.tasks:
                finish(prepared, record)
                continue
            owners[prepared] = record
            remaining[prepared] = len(prepared.tasks)
            for index, task in prepared.tasks.items():
                yield prepared, index, task

    def on_done(item, _result):
        prepared, index = item
        record = owners[prepared]
        frames = prepared.chunks[index]
        record.frames_done += frames
        bar.update(frames)
        remaining[prepared] -= 1
        if remaining[prepared] == 0:
            finish(prepared, record)
        else:
            if time.time() - report.written >= REPORT_INTERVAL:  # frames done, for watchers
                report.write()
            publish()

    def on_error(prepared, exc):
        fail(owners[prepared], exc, prepared)

    with bar:
        try:
            out.run_blocks(blocks(), client, on_done=on_done, on_error=on_error, window=window)
        finally:
            report.write()
            publish()
    return BatchResult(records, outdir / REPORT_JSON)


def _install_metrics(client) -> bool:
    from .metrics import install

    return install(client)
