"""Batch runner: many files, several at a time, resumable, failures isolated, one summary at the end.

Generic over a per-file function ``fn(job) -> dict | None`` (video, image and audio use the same runner)::

    jobs = batch.discover(["uploads/"], output_dir="marked/")          # or batch.read_manifest("m.jsonl")
    report = batch.run(jobs, fn, workers=4)
    print(report.summary()); report.write_json("report.json")

* Resume: a job whose output already exists is skipped (outputs are written atomically by the per-file
  functions, so an existing output is a finished one); jobs recorded as done in a journal (JSON lines, one per
  finished job, flushed as they finish) are skipped too, which is how detection batches resume. Temporary
  files left by a killed run (``.provmark-<pid>-*`` next to the outputs, from a process that no longer
  exists) are removed before the batch starts.
* Isolation: an exception in one job marks that job failed (with its message) and the batch goes on; with
  ``executor="process"`` even a crashing decoder fails only its own job (the jobs that were running beside
  it run again, each in a process of its own).
* ``register(subparsers)`` adds ``provmark embed`` and ``provmark detect`` over files, folders and manifests.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import csv
import dataclasses
import functools
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

__all__ = [
    "AUDIO_EXTS",
    "IMAGE_EXTS",
    "VIDEO_EXTS",
    "BatchReport",
    "Job",
    "JobResult",
    "discover",
    "modality_of",
    "read_manifest",
    "register",
    "run",
]

VIDEO_EXTS = frozenset(
    {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".ts", ".m2ts", ".mpg", ".mpeg", ".flv", ".3gp"}
)
AUDIO_EXTS = frozenset({".wav", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".m4a", ".aac"})
IMAGE_EXTS = frozenset({".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp", ".gif"})
MEDIA_EXTS = VIDEO_EXTS | AUDIO_EXTS | IMAGE_EXTS

_TMP_PREFIX = ".provmark-"


def modality_of(path: str) -> str:
    """ "video", "audio" or "image" from the file extension; ValueError for anything else."""
    ext = os.path.splitext(path)[1].lower()
    if ext in VIDEO_EXTS:
        return "video"
    if ext in AUDIO_EXTS:
        return "audio"
    if ext in IMAGE_EXTS:
        return "image"
    raise ValueError(f"{path}: unknown media extension {ext!r}")


# ----------------------------------------------------------------------------------------------------------
# Jobs
# ----------------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Job:
    """One file to process: ``input``, an optional ``output`` and ``payload`` (hex), and free-form options."""

    input: str
    output: str | None = None
    payload: str | None = None
    options: dict[str, Any] = dataclasses.field(default_factory=dict, hash=False, compare=False)

    @property
    def key(self) -> str:
        """Identity used by the journal: the input, and the output when there is one."""
        return self.input if self.output is None else f"{self.input}\t{self.output}"


@dataclasses.dataclass
class JobResult:
    job: Job
    status: str  # "done", "skipped", "failed" or "pending" (not run: the batch was interrupted)
    seconds: float = 0.0
    result: dict[str, Any] | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "input": self.job.input,
            "output": self.job.output,
            "payload": self.job.payload,
            "status": self.status,
            "seconds": round(self.seconds, 4),
            "result": self.result,
            "error": self.error,
        }


@dataclasses.dataclass
class BatchReport:
    results: list[JobResult]
    seconds: float
    interrupted: bool = False

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)

    @property
    def failed(self) -> list[JobResult]:
        return [r for r in self.results if r.status == "failed"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "jobs": len(self.results),
            "done": self.count("done"),
            "skipped": self.count("skipped"),
            "failed": self.count("failed"),
            "pending": self.count("pending"),
            "interrupted": self.interrupted,
            "seconds": round(self.seconds, 3),
            "results": [r.to_dict() for r in self.results],
        }

    def summary(self) -> str:
        lines = [
            f"{len(self.results)} files: {self.count('done')} done, {self.count('skipped')} skipped, "
            f"{self.count('failed')} failed"
            + (f", {self.count('pending')} not run (interrupted)" if self.interrupted else "")
            + f" in {self.seconds:.1f} s"
        ]
        for r in self.failed:
            lines.append(f"  FAILED {r.job.input}: {r.error}")
        return "\n".join(lines)

    def write_json(self, path: str) -> None:
        """Write the report atomically (temporary file + os.replace)."""
        _write_atomic(path, json.dumps(self.to_dict(), indent=2, default=str) + "\n")


def _write_atomic(path: str, text: str) -> None:
    import tempfile

    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f"{_TMP_PREFIX}{os.getpid()}-", suffix=".json", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


_MANIFEST_FIELDS = ("input", "output", "payload")


def _job_from_row(row: dict[str, Any], base: str, where: str) -> Job:
    row = {str(k).strip(): v for k, v in row.items() if k is not None}
    inp = row.get("input")
    if not isinstance(inp, str) or not inp.strip():
        raise ValueError(f"{where}: missing 'input'")
    out = row.get("output")
    if out is not None and not isinstance(out, str):
        raise ValueError(f"{where}: 'output' must be a string, got {out!r}")
    pl = row.get("payload")
    if isinstance(pl, int) and not isinstance(pl, bool):
        pl = format(pl, "016x")
    if pl is not None and not isinstance(pl, str):
        raise ValueError(f"{where}: 'payload' must be a hex string, got {pl!r}")

    def resolve(p: str | None) -> str | None:
        if p is None or not p.strip():
            return None
        p = os.path.expanduser(p.strip())
        return p if os.path.isabs(p) else os.path.join(base, p)

    options = {k: v for k, v in row.items() if k not in _MANIFEST_FIELDS and v not in (None, "")}
    return Job(
        input=resolve(inp) or "", output=resolve(out), payload=(pl.strip() or None) if pl else None, options=options
    )


def read_manifest(path: str) -> list[Job]:
    """Jobs from a JSON-lines (``.jsonl``/``.ndjson``: one object per line) or CSV (header row) manifest with
    the fields ``input`` (required), ``output`` and ``payload`` (hex); other fields become job options.
    Relative paths are taken relative to the manifest's folder."""
    p = os.fspath(path)
    base = os.path.dirname(os.path.abspath(p))
    ext = os.path.splitext(p)[1].lower()
    jobs: list[Job] = []
    with open(p, encoding="utf-8", newline="") as fh:
        if ext in (".jsonl", ".ndjson", ".json"):
            for n, line in enumerate(fh, 1):
                if not line.strip() or line.lstrip().startswith("#"):
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as e:
                    raise ValueError(f"{p}:{n}: not valid JSON: {e}") from None
                if not isinstance(row, dict):
                    raise ValueError(f"{p}:{n}: each line must be a JSON object")
                jobs.append(_job_from_row(row, base, f"{p}:{n}"))
        elif ext in (".csv", ".tsv"):
            reader = csv.DictReader(fh, delimiter="\t" if ext == ".tsv" else ",")
            if reader.fieldnames is None or "input" not in [f.strip() for f in reader.fieldnames]:
                raise ValueError(f"{p}: a CSV manifest needs a header row with an 'input' column")
            for n, row in enumerate(reader, 2):
                jobs.append(_job_from_row(row, base, f"{p}:{n}"))
        else:
            raise ValueError(f"{p}: manifest must be .jsonl/.ndjson or .csv/.tsv, got {ext!r}")
    if not jobs:
        raise ValueError(f"{p}: the manifest lists no files")
    return jobs


def discover(
    inputs: Sequence[str],
    output_dir: str | None = None,
    *,
    exts: Iterable[str] | None = None,
    payload: str | None = None,
    recursive: bool = True,
) -> list[Job]:
    """Jobs for files and folders: a folder contributes its media files (``exts``, default every known media
    extension; recursive), and with ``output_dir`` each output mirrors the input's path below its folder."""
    allowed = frozenset(e.lower() for e in (exts or MEDIA_EXTS))
    jobs: list[Job] = []
    for item in inputs:
        item = os.fspath(item)
        if os.path.isdir(item):
            root = os.path.abspath(item)
            found = []
            for dirpath, dirnames, filenames in os.walk(root):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                found.extend(
                    os.path.join(dirpath, f)
                    for f in sorted(filenames)
                    if not f.startswith(".") and os.path.splitext(f)[1].lower() in allowed
                )
                if not recursive:
                    break
            for f in found:
                out = os.path.join(output_dir, os.path.relpath(f, root)) if output_dir else None
                jobs.append(Job(f, out, payload))
        elif os.path.exists(item):
            out = os.path.join(output_dir, os.path.basename(item)) if output_dir else None
            jobs.append(Job(os.path.abspath(item), out, payload))
        else:
            raise FileNotFoundError(f"no such file or folder: {item}")
    return jobs


# ----------------------------------------------------------------------------------------------------------
# Running
# ----------------------------------------------------------------------------------------------------------
def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale_temps(folders: Iterable[str]) -> list[str]:
    """Remove ``.provmark-<pid>-*`` files whose process no longer runs; returns what was removed."""
    removed = []
    for folder in sorted(set(folders)):
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for name in names:
            if not name.startswith(_TMP_PREFIX):
                continue
            pid_s, sep, _ = name[len(_TMP_PREFIX) :].partition("-")
            if not sep or not pid_s.isdigit() or _pid_alive(int(pid_s)):
                continue
            path = os.path.join(folder, name)
            try:
                os.unlink(path)
                removed.append(path)
            except OSError:
                pass
    return removed


def _load_journal(path: str) -> dict[str, dict[str, Any]]:
    done: dict[str, dict[str, Any]] = {}
    if not os.path.exists(path):
        return done
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by a kill: that job simply runs again
            if isinstance(row, dict) and row.get("status") == "done" and isinstance(row.get("key"), str):
                done[row["key"]] = row
    return done


def _validate_jobs(jobs: Sequence[Job]) -> None:
    outs: dict[str, str] = {}
    for j in jobs:
        if j.output is None:
            continue
        o = os.path.abspath(j.output)
        if o in outs:
            raise ValueError(f"two jobs write the same output {j.output} ({outs[o]} and {j.input})")
        if o == os.path.abspath(j.input):
            raise ValueError(f"job {j.input}: output is the input itself (refusing to overwrite inputs)")
        outs[o] = j.input


def _call(fn: Callable[[Job], Any], job: Job) -> tuple[float, Any]:
    t0 = time.perf_counter()
    if job.output is not None:
        os.makedirs(os.path.dirname(os.path.abspath(job.output)), exist_ok=True)  # mirrored folders
    r = fn(job)
    return time.perf_counter() - t0, r


def _describe(e: BaseException) -> str:
    msg = str(e) or type(e).__name__
    return f"{type(e).__name__}: {msg}"


class _Progress:
    def __init__(self, total: int, enabled: bool) -> None:
        self.bar = None
        self.enabled = enabled
        self.total = total
        self.n = 0
        self.failed = 0
        if not enabled:
            return
        try:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="file", file=sys.stderr, desc="provmark")
        except ImportError:
            self.bar = None

    def update(self, r: JobResult) -> None:
        self.n += 1
        self.failed += r.status == "failed"
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.set_postfix(failed=self.failed, refresh=False)
            self.bar.update(1)
        else:
            print(
                f"[{self.n}/{self.total}] {r.status} {r.job.input}" + (f": {r.error}" if r.error else ""),
                file=sys.stderr,
            )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def run(
    jobs: Sequence[Job],
    fn: Callable[[Job], dict[str, Any] | None],
    *,
    workers: int = 1,
    resume: bool = True,
    journal: str | None = None,
    progress: bool = True,
    executor: str = "thread",
    on_result: Callable[[JobResult], None] | None = None,
) -> BatchReport:
    """Run ``fn`` on every job, ``workers`` at a time; never raises for a job's failure.

    resume: skip jobs whose output exists or that ``journal`` records as done, and remove stale temporary
        files of killed runs next to the outputs. journal: a JSON-lines file that gets one line per finished
        job (created if missing). executor: "thread" (default) or "process" (``fn`` must be picklable; when a
        worker process dies, the jobs it took down run again one per process, and the one that crashes
        alone is reported failed).
    KeyboardInterrupt stops the batch: running jobs finish (their outputs are complete or absent), the rest
    are reported "pending", and the report comes back with ``interrupted=True``."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"batch.run: workers must be a positive int, got {workers!r}")
    if executor not in ("thread", "process"):
        raise ValueError(f"batch.run: executor must be 'thread' or 'process', got {executor!r}")
    jobs = list(jobs)
    _validate_jobs(jobs)
    t0 = time.perf_counter()
    results: dict[int, JobResult] = {}
    done_before = _load_journal(journal) if (journal and resume) else {}
    if resume:
        clean_stale_temps(os.path.dirname(os.path.abspath(j.output)) for j in jobs if j.output)
    todo: list[int] = []
    for i, j in enumerate(jobs):
        if resume and j.key in done_before:
            results[i] = JobResult(j, "skipped", result=done_before[j.key].get("result"))
        elif resume and j.output is not None and os.path.exists(j.output):
            results[i] = JobResult(j, "skipped", result={"reason": "output exists"})
        else:
            todo.append(i)
    prog = _Progress(len(jobs), progress)
    for i in sorted(results):
        prog.update(results[i])
    lock = threading.Lock()
    jfh = open(journal, "a", encoding="utf-8") if journal else None  # noqa: SIM115 - closed in finally

    def finish(i: int, r: JobResult) -> None:
        with lock:
            results[i] = r
            if jfh is not None:
                jfh.write(json.dumps({"key": r.job.key, **r.to_dict()}, default=str) + "\n")
                jfh.flush()
                os.fsync(jfh.fileno())
            prog.update(r)
            if on_result is not None:
                on_result(r)

    interrupted = False
    try:
        if executor == "thread":
            interrupted = _run_threads(jobs, todo, fn, workers, finish)
        else:
            interrupted = _run_processes(jobs, todo, fn, workers, finish)
    finally:
        prog.close()
        if jfh is not None:
            jfh.close()
    for i, j in enumerate(jobs):
        results.setdefault(i, JobResult(j, "pending"))
    return BatchReport([results[i] for i in range(len(jobs))], time.perf_counter() - t0, interrupted)


def _outcome(job: Job, fut: cf.Future) -> JobResult:
    try:
        seconds, r = fut.result()
    except Exception as e:
        return JobResult(job, "failed", error=_describe(e))
    if r is not None and not isinstance(r, dict):
        r = {"value": r}
    return JobResult(job, "done", seconds=seconds, result=r)


def _run_threads(jobs, todo, fn, workers, finish) -> bool:
    pool = cf.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="provmark-batch")
    pending: dict[cf.Future, int] = {}
    queue_ = list(reversed(todo))
    try:
        while queue_ or pending:
            while queue_ and len(pending) < workers:
                i = queue_.pop()
                pending[pool.submit(_call, fn, jobs[i])] = i
            finished, _ = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
            for fut in finished:
                i = pending.pop(fut)
                finish(i, _outcome(jobs[i], fut))
    except KeyboardInterrupt:
        for fut in list(pending):
            if fut.cancel():
                pending.pop(fut)
        cf.wait(pending)
        for fut, i in pending.items():
            finish(i, _outcome(jobs[i], fut))
        return True
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return False


def _run_processes(jobs, todo, fn, workers, finish) -> bool:
    """Worker processes; when one dies, every job that was in flight is re-run alone in a fresh
    one-process pool, so only the job that really crashes is reported failed."""
    from concurrent.futures.process import BrokenProcessPool

    queue_ = list(reversed(todo))
    suspects: list[int] = []
    while queue_ or suspects:
        if suspects:  # isolate: one job, one process
            i = suspects.pop()
            with cf.ProcessPoolExecutor(max_workers=1) as solo:
                fut = solo.submit(_call, fn, jobs[i])
                cf.wait([fut])
            if isinstance(fut.exception(), BrokenProcessPool):
                finish(
                    i,
                    JobResult(
                        jobs[i],
                        "failed",
                        error="worker process crashed (the job killed its process, e.g. a decoder fault)",
                    ),
                )
            else:
                finish(i, _outcome(jobs[i], fut))
            continue
        pool = cf.ProcessPoolExecutor(max_workers=workers)
        pending: dict[cf.Future, int] = {}
        broken = False
        try:
            while (queue_ or pending) and not broken:
                while queue_ and len(pending) < workers:
                    i = queue_.pop()
                    pending[pool.submit(_call, fn, jobs[i])] = i
                finished, _ = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
                for fut in finished:
                    i = pending.pop(fut)
                    if isinstance(fut.exception(), BrokenProcessPool):
                        broken = True
                        suspects.append(i)
                    else:
                        finish(i, _outcome(jobs[i], fut))
            suspects.extend(pending.values())  # in flight when the pool broke
        except KeyboardInterrupt:
            pool.shutdown(wait=True, cancel_futures=True)
            return True
        finally:
            pool.shutdown(wait=not broken, cancel_futures=True)
    return False


# ----------------------------------------------------------------------------------------------------------
# Per-file functions for the CLI (module level, so they pickle for executor="process")
# ----------------------------------------------------------------------------------------------------------
def _module_for(path: str, forced: str | None) -> Any:
    import importlib

    kind = forced or modality_of(path)
    return importlib.import_module(f"provmark.{kind}")


_INT_OPTIONS = {"crf", "quality", "workers"}
_FLOAT_OPTIONS = {"strength", "max_seconds", "fpr", "sample_fps"}


def _coerce_option(name: str, value: Any) -> Any:
    """Manifest values arrive as strings from CSV: give the numeric options their type."""
    if not isinstance(value, str):
        return value
    try:
        if name in _INT_OPTIONS:
            return int(value)
        if name in _FLOAT_OPTIONS:
            return float(value)
    except ValueError:
        raise ValueError(f"manifest option {name}={value!r} is not a number") from None
    return value


def embed_job(
    job: Job, *, key_bytes: bytes, payload: str | None, options: dict[str, Any], modality: str | None = None
) -> dict[str, Any]:
    """Watermark ``job.input`` into ``job.output`` with the matching modality's ``embed_file``."""
    from .keys import Key
    from .payload import Payload

    if job.output is None:
        raise ValueError("no output path (give -o/--output or an output column in the manifest)")
    hexp = job.payload or payload
    if not hexp:
        raise ValueError("no payload (give --payload or a payload column in the manifest)")
    pl = Payload.from_hex(hexp)
    key = Key.from_bytes(key_bytes)
    mod = _module_for(job.input, modality)
    if not hasattr(mod, "embed_file"):
        raise ValueError(f"provmark.{mod.__name__.rsplit('.', 1)[-1]} has no embed_file")
    kw = dict(options)
    kw.update({k: _coerce_option(k, v) for k, v in job.options.items() if k in kw})
    name = mod.__name__.rsplit(".", 1)[-1]
    allowed = {
        "video": {"codec", "crf", "preset", "audio", "strength", "overwrite", "workers"},
        "audio": {"strength", "overwrite"},
        "image": {"strength", "overwrite", "quality"},
    }[name]
    kw = {k: v for k, v in kw.items() if k in allowed and v is not None}
    if name == "video":
        kw["progress"] = False
    out_dir = os.path.dirname(os.path.abspath(job.output))
    os.makedirs(out_dir, exist_ok=True)
    r = mod.embed_file(job.input, job.output, pl, key, **kw)
    res = {"modality": name, "payload": pl.hex()}
    if isinstance(r, dict):
        res.update({k: r[k] for k in ("video_codec", "frames", "duration", "streams") if k in r})
    return res


def detect_job(job: Job, *, key_bytes: bytes, options: dict[str, Any], modality: str | None = None) -> dict[str, Any]:
    """Detect in ``job.input`` with the matching modality's ``detect_file``; returns Detection.to_dict()."""
    from .keys import Key

    key = Key.from_bytes(key_bytes)
    mod = _module_for(job.input, modality)
    name = mod.__name__.rsplit(".", 1)[-1]
    allowed = {"video": {"max_seconds", "fpr", "sample_fps", "fast"}, "audio": {"fpr"}, "image": {"fpr"}}[name]
    kw = {k: v for k, v in options.items() if k in allowed and v is not None}
    det = mod.detect_file(job.input, key, **kw)
    d = det.to_dict()
    d["modality"] = name
    return d


# ----------------------------------------------------------------------------------------------------------
# CLI
# ----------------------------------------------------------------------------------------------------------
EXIT_NOT_FOUND = 3


def _jobs_from_args(args: argparse.Namespace, with_output: bool) -> list[Job]:
    jobs: list[Job] = []
    if args.manifest:
        jobs.extend(read_manifest(args.manifest))
    inputs = list(args.inputs)
    out = getattr(args, "output", None) if with_output else None
    if with_output and out is None and len(inputs) == 2 and os.path.isfile(inputs[0]) and not os.path.isdir(inputs[1]):
        return [*jobs, Job(os.path.abspath(inputs[0]), inputs[1], args.payload)]  # `embed IN OUT` form
    if inputs:
        if (
            with_output
            and out is not None
            and len(inputs) == 1
            and os.path.isfile(inputs[0])
            and (not os.path.isdir(out))
            and os.path.splitext(out)[1]
        ):
            jobs.append(Job(os.path.abspath(inputs[0]), out, args.payload))
        else:
            jobs.extend(discover(inputs, out, payload=getattr(args, "payload", None)))
    if not jobs:
        raise ValueError("nothing to do: give files, folders or --manifest")
    return jobs


def _finish_cli(args: argparse.Namespace, report: BatchReport) -> None:
    if args.json:
        report.write_json(args.json)
    print(report.summary(), file=sys.stderr)


def _journal_path(args: argparse.Namespace) -> str | None:
    if args.journal:
        return args.journal
    return f"{args.json}.journal.jsonl" if args.json else None


def _cmd_embed(args: argparse.Namespace) -> int:
    from .keys import Key

    key = Key.load(args.key)
    jobs = _jobs_from_args(args, with_output=True)
    opts = {
        "codec": args.codec,
        "crf": args.crf,
        "preset": args.preset,
        "audio": args.audio,
        "strength": args.strength,
        "quality": args.quality,
        "overwrite": args.force,
    }
    fn = functools.partial(
        embed_job, key_bytes=key.secret_bytes(), payload=args.payload, options=opts, modality=args.type
    )
    journal = _journal_path(args)
    report = run(
        jobs,
        fn,
        workers=args.workers,
        resume=not args.no_resume and not args.force,
        journal=journal,
        progress=not args.quiet,
        executor=args.executor,
    )
    _finish_cli(args, report)
    if journal and not args.journal and not report.interrupted and os.path.exists(journal):
        os.unlink(journal)
    if report.interrupted:
        return 130
    return 1 if report.failed else 0


def _cmd_detect(args: argparse.Namespace) -> int:
    from .keys import Key

    key = Key.load(args.key)
    jobs = _jobs_from_args(args, with_output=False)
    opts = {"max_seconds": args.max_seconds, "fpr": args.fpr, "sample_fps": args.sample_fps}
    fn = functools.partial(detect_job, key_bytes=key.secret_bytes(), options=opts, modality=args.type)

    def show(r: JobResult) -> None:
        if r.status == "failed":
            return
        res = r.result or {}
        if "found" not in res:
            return
        if res.get("found"):
            print(f"{r.job.input}: found payload {res.get('payload')} (p={res.get('p_value', 1.0):.3g})")
        else:
            print(f"{r.job.input}: not found (p={res.get('p_value', 1.0):.3g})")

    journal = _journal_path(args)
    report = run(
        jobs,
        fn,
        workers=args.workers,
        resume=not args.no_resume,
        journal=journal,
        progress=not args.quiet,
        executor=args.executor,
        on_result=show,
    )
    for r in report.results:
        if r.status == "skipped":
            show(r)
    _finish_cli(args, report)
    if journal and not args.journal and not report.interrupted and os.path.exists(journal):
        os.unlink(journal)
    if report.interrupted:
        return 130
    if report.failed:
        return 1
    return 0 if any((r.result or {}).get("found") for r in report.results) else EXIT_NOT_FOUND


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--key", required=True, metavar="KEYFILE", help="watermark key file (provmark keygen)")
    p.add_argument("--manifest", metavar="FILE", help="JSONL or CSV manifest with input, output, payload")
    p.add_argument(
        "--type",
        choices=("video", "audio", "image"),
        default=None,
        help="treat every file as this media type (default: from the extension)",
    )
    p.add_argument(
        "-j",
        "--workers",
        type=int,
        default=max(1, min(4, (os.cpu_count() or 2) // 2)),
        help="files processed at the same time (default: half the CPUs, at most 4)",
    )
    p.add_argument(
        "--executor",
        choices=("thread", "process"),
        default="thread",
        help="run files in threads (default) or in worker processes (isolates decoder crashes)",
    )
    p.add_argument("--json", metavar="REPORT", help="write a JSON report of every file")
    p.add_argument(
        "--journal",
        metavar="FILE",
        help="JSON-lines journal of finished files, used to resume "
        "(default with --json: REPORT.journal.jsonl, removed when the batch completes)",
    )
    p.add_argument("--no-resume", action="store_true", help="redo files that are already finished")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def register(subparsers: Any) -> None:
    """Add ``embed`` and ``detect`` (files, folders, manifests; video, audio and images) to the CLI."""
    p = subparsers.add_parser(
        "embed",
        help="watermark media files (video, audio, images), folders or a manifest",
        description="Watermark files. Forms: `embed IN OUT`, `embed FILES/FOLDERS -o OUTDIR` (folders are "
        "mirrored) or `embed --manifest jobs.jsonl`. Files run in parallel; finished outputs are skipped when "
        "the command runs again; a file that fails is reported and the batch goes on.",
    )
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="files or folders (or IN OUT for one file)")
    p.add_argument("-o", "--output", metavar="PATH", help="output file (one input) or folder")
    p.add_argument(
        "--payload", metavar="HEX", help="payload as hex (16 digits = 64 bits); a manifest row may give its own"
    )
    p.add_argument("--strength", type=float, default=None, help="watermark strength (default 1.0)")
    p.add_argument("--codec", default=None, help="video encoder (default: the source codec, else H.264)")
    p.add_argument("--crf", type=int, default=None, help="video quality (default: visually lossless)")
    p.add_argument("--preset", default=None, help="video encoder preset")
    p.add_argument(
        "--audio",
        choices=("mark", "copy", "drop"),
        default="mark",
        help="audio tracks of videos: watermark (default), stream-copy or drop",
    )
    p.add_argument("--quality", type=int, default=None, help="JPEG/WebP quality for images")
    p.add_argument("--force", action="store_true", help="replace existing outputs (implies --no-resume)")
    _common(p)
    p.set_defaults(func=_cmd_embed)

    p = subparsers.add_parser(
        "detect",
        help="look for watermarks in media files, folders or a manifest",
        description="Detect watermarks. Exit status: 0 when found in at least one file, 3 when found in "
        "none, 1 when a file could not be checked.",
    )
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="files or folders")
    p.add_argument("--fpr", type=float, default=None, help="false-positive rate per file (default 1e-6)")
    p.add_argument("--max-seconds", type=float, default=None, help="video: check only the first N seconds")
    p.add_argument("--sample-fps", type=float, default=None, help="video: use at most N frames per second")
    _common(p)
    p.set_defaults(func=_cmd_detect)
