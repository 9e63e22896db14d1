"""The benchmark runner: methods x corpus items x attacks, in parallel, resumable.

A *cell* is one (method, item, attack, kind) measurement; ``kind`` is ``embed`` (quality and embedding time,
attack ``-``), ``marked`` (the attack applied to the marked item, then detection) or ``unmarked`` (the same
attack, with the same random choices, applied to the original item, then detection: these negatives set
each method's threshold for the fixed false-positive rate). Workers append every finished cell as one JSON
line to ``OUT/cells/part-<pid>.jsonl``; a rerun with the same ``--out`` reads them back and computes only
the missing cells. The report is rebuilt from all cells at the end.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
import traceback
import warnings
import zlib
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._fileio import atomic_write_text
from . import adapters as _adapters
from .corpus import Corpus, Item, UnreadableItem
from .metrics import bit_accuracy, psnr, snr, ssim
from .suites import Suite

RUN_FILE = "run.json"
CELL_DIR = "cells"


@dataclass
class RunConfig:
    suite: Suite
    corpus: Corpus
    out_dir: str
    methods: list[str] | None = None  # adapter names; None = every available adapter
    extra_adapters: list[str] = field(default_factory=list)  # "module:Class"
    workers: int | None = None
    progress: bool = True
    plots: bool = True  # matplotlib figures (skipped anyway when matplotlib is missing)


def _cell_key(row: dict[str, Any]) -> tuple[str, str, str, str, str]:
    return (row["method"], row["modality"], row["item"], row["attack"], row["kind"])


def payload_bits(seed: int, method: str, item_id: str, n: int) -> np.ndarray:
    """The payload embedded for (method, item): fixed by the suite seed, different per item."""
    h = zlib.crc32(f"{seed}|{method}|{item_id}".encode())
    return np.random.default_rng([seed, h]).integers(0, 2, size=n).astype(np.uint8)


def attack_seed(seed: int, item_id: str) -> int:
    """Seed of the attacks on an item: shared by every method, and by the marked and unmarked copies."""
    return zlib.crc32(f"{seed}|attack|{item_id}".encode())


def media_units(media, modality: str) -> float:
    """Size used for timing: megapixels (image), seconds (audio), megapixel-frames (video)."""
    if modality == "image":
        return media.shape[0] * media.shape[1] / 1e6
    if modality == "audio":
        x, sr = media
        return np.asarray(x).shape[0] / float(sr)
    f, _ = media
    return f.shape[0] * f.shape[1] * f.shape[2] / 1e6


def _quality(orig, marked, modality: str) -> dict[str, float | None]:
    if modality == "image":
        if orig.shape != marked.shape:
            return {"psnr": None, "ssim": None, "snr": None}
        return {"psnr": psnr(orig, marked), "ssim": ssim(orig, marked), "snr": None}
    if modality == "audio":
        x, y = np.asarray(orig[0]), np.asarray(marked[0])
        if x.shape != y.shape:
            return {"psnr": None, "ssim": None, "snr": None}
        return {"psnr": None, "ssim": None, "snr": snr(x.astype(np.float64), y.astype(np.float64))}
    a, b = orig[0], marked[0]
    if a.shape != b.shape:
        return {"psnr": None, "ssim": None, "snr": None}
    idx = np.unique(np.linspace(0, a.shape[0] - 1, min(8, a.shape[0])).astype(int))
    return {"psnr": psnr(a, b), "ssim": float(np.mean([ssim(a[i], b[i]) for i in idx])), "snr": None}


def _finite(v):
    if v is None:
        return None
    v = float(v)
    return v if np.isfinite(v) else (1e308 if v > 0 else -1e308)


class _Sink:
    """Appends rows to this process's part file, one flushed JSON line per cell."""

    def __init__(self, out_dir: str):
        d = os.path.join(out_dir, CELL_DIR)
        os.makedirs(d, exist_ok=True)
        self.path = os.path.join(d, f"part-{os.getpid()}-{int(time.time() * 1000)}.jsonl")
        self.fh = None

    def write(self, row: dict[str, Any]) -> None:
        if self.fh is None:
            self.fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - kept open across cells
        self.fh.write(json.dumps(row, allow_nan=False) + "\n")
        self.fh.flush()

    def close(self) -> None:
        if self.fh is not None:
            self.fh.close()
            self.fh = None


def _detect_row(adapter, media, expected: np.ndarray) -> dict[str, Any]:
    t0 = time.perf_counter()
    try:
        r = adapter.detect(media)
    except Exception as e:
        return {**_no_detection(f"detect: {type(e).__name__}: {e}"), "detect_s": time.perf_counter() - t0}
    dt = time.perf_counter() - t0
    bits = None if r.bits is None else np.asarray(r.bits, dtype=np.uint8)
    if bits is not None and bits.shape != expected.shape:
        bits = None
    acc = bit_accuracy(expected, bits)
    if r.score is not None:
        score, kind = float(r.score), "method"
    else:
        score, kind = acc, "bit-agreement"
    return {
        "detect_s": dt,
        "bit_acc": acc,
        "exact": bool(acc == 1.0),
        "score": _finite(score),
        "score_kind": kind,
        "p_value": None if r.p_value is None else float(r.p_value),
        "found": None if r.found is None else bool(r.found),
        "error": None,
    }


def _quiet_native_threads(n: int) -> None:
    try:
        import provmark

        provmark.set_num_threads(n)
    except Exception:
        pass
    try:
        import cv2

        cv2.setNumThreads(n)
    except Exception:
        pass


def _canonical(media):
    """Arrays that crossed a process boundary carry an unpickled dtype object equal to, but not identical
    with, numpy's built-in one; some native bindings check identity. Re-view with the built-in dtype."""
    if isinstance(media, np.ndarray):
        return media.view(np.dtype(media.dtype.str))
    if isinstance(media, tuple) and media and isinstance(media[0], np.ndarray):
        return type(media)(_canonical(media[0]), *media[1:])
    return media


def _no_detection(error: str | None) -> dict:
    """Row fields of a cell that got no detection (embedding, attack or detection failed): a miss."""
    return {
        "detect_s": None,
        "bit_acc": 0.5,
        "exact": False,
        "score": None,
        "score_kind": None,
        "p_value": None,
        "found": None,
        "error": error,
    }


def run_task(task: dict[str, Any]) -> dict[str, Any]:
    """Embed once for (method, item), then run every pending attack on the marked and the original item."""
    out_dir = task["out_dir"]
    sink = _Sink(out_dir)
    cls = task["adapter"]
    modality, item_id, seed = task["modality"], task["item"], task["seed"]
    media = _canonical(task["media"])
    base = {"method": cls.name, "modality": modality, "item": item_id, "payload_bits": int(cls.payload_bits)}
    written = 0
    try:
        if task.get("threads"):
            _quiet_native_threads(task["threads"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # peers' deprecation noise must not kill a worker
            adapter = cls(seed=seed)
            warm = getattr(adapter, "warmup", None)
            if callable(warm):
                warm()
            expected = payload_bits(seed, cls.name, item_id, int(cls.payload_bits))
            t0 = time.perf_counter()
            try:
                marked = adapter.embed(media, expected)
                embed_err = None
            except Exception as e:
                marked, embed_err = None, f"embed: {type(e).__name__}: {e}"
            embed_s = time.perf_counter() - t0
            if task["need_embed"]:
                row = dict(
                    base,
                    attack="-",
                    family="-",
                    strength=None,
                    kind="embed",
                    embed_s=embed_s,
                    units=media_units(media, modality),
                    error=embed_err,
                )
                row.update(
                    _quality(media, marked, modality)
                    if marked is not None
                    else {"psnr": None, "ssim": None, "snr": None}
                )
                sink.write({k: _finite(v) if isinstance(v, float) else v for k, v in row.items()})
                written += 1
            from .attacks import get as get_attack

            aseed = attack_seed(seed, item_id)
            for name, kinds in task["attacks"]:
                atk = get_attack(name, modality)
                for kind in kinds:
                    src = marked if kind == "marked" else media
                    row = dict(base, attack=atk.name, family=atk.family, strength=atk.strength, kind=kind)
                    if src is None:
                        row.update(_no_detection(embed_err), attack_s=None, units=None)
                    else:
                        t1 = time.perf_counter()
                        try:
                            attacked = atk(src, seed=aseed)
                            err = None
                        except Exception as e:
                            attacked, err = None, f"attack: {type(e).__name__}: {e}"
                        row["attack_s"] = time.perf_counter() - t1
                        if attacked is None:
                            row.update(_no_detection(err), units=None)
                        else:
                            row["units"] = media_units(attacked, modality)
                            row.update(_detect_row(adapter, attacked, expected))
                    sink.write({k: _finite(v) if isinstance(v, float) else v for k, v in row.items()})
                    written += 1
        return {"written": written, "error": None}
    except Exception as e:
        return {
            "written": written,
            "error": f"{cls.name}/{item_id}: {type(e).__name__}: {e}\n{traceback.format_exc()}",
        }
    finally:
        sink.close()


def read_cells(out_dir: str) -> list[dict[str, Any]]:
    """All rows recorded under ``out_dir`` (a torn last line from a killed worker is ignored)."""
    d = os.path.join(out_dir, CELL_DIR)
    rows: dict[tuple, dict[str, Any]] = {}
    if not os.path.isdir(d):
        return []
    for fn in sorted(os.listdir(d)):
        if not fn.endswith(".jsonl"):
            continue
        with open(os.path.join(d, fn), encoding="utf-8") as fh:
            for line in fh:
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(row, dict) and all(k in row for k in ("method", "modality", "item", "attack", "kind")):
                    rows[_cell_key(row)] = row
    return list(rows.values())


def _run_settings(suite: Suite) -> dict[str, Any]:
    return {"suite": suite.name, "seed": suite.seed, "fpr": suite.fpr}


class _Progress:
    def __init__(self, total: int, enabled: bool):
        self.bar = None
        self.enabled = enabled and total > 0
        self.total, self.done, self.last = total, 0, 0.0
        if self.enabled:
            try:
                from tqdm import tqdm

                self.bar = tqdm(total=total, unit="cell", desc="provmark bench", file=sys.stderr)
            except ImportError:
                self.bar = None

    def update(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
        elif self.enabled and (time.time() - self.last > 2 or self.done >= self.total):
            self.last = time.time()
            print(f"provmark bench: {self.done}/{self.total} cells", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def plan(cfg: RunConfig, log=print) -> dict[str, Any]:
    """Resolve methods and items and load the media. Returns the plan (used by :func:`run`)."""
    suite = cfg.suite
    table, problems = _adapters.all_adapters(cfg.extra_adapters)
    for p in problems:
        log(f"warning: {p}")
    avail = _adapters.availability(table)
    wanted = None if cfg.methods is None else list(dict.fromkeys(cfg.methods))
    if wanted is not None:
        known = {n for n, _ in table}
        unknown = [m for m in wanted if m not in known]
        if unknown:
            raise ValueError(f"unknown method(s) {unknown}; known: {sorted(known)}")
    methods: dict[str, list[type]] = {}
    unavailable: list[dict[str, str]] = []
    for (name, modality), cls in sorted(table.items()):
        if modality not in suite.modalities or (wanted is not None and name not in wanted):
            continue
        ok, why = avail[(name, modality)]
        if ok:
            methods.setdefault(modality, []).append(cls)
        else:
            unavailable.append({"method": name, "modality": modality, "reason": why})
            log(f"note: {name} ({modality}) not available: {why}")
    items: dict[str, list[tuple[Item, Any]]] = {}
    skipped: list[dict[str, str]] = []
    ineligible: list[dict[str, str]] = []
    for modality, spec in suite.modalities.items():
        if not methods.get(modality):
            continue
        picked: list[tuple[Item, Any]] = []
        for it in cfg.corpus.select(modality, None, suite.seed):
            if spec.items is not None and len(picked) >= spec.items:
                break
            try:
                media = it.load(spec.limits)
            except UnreadableItem as e:
                msg = str(e)
                if "shorter than the suite" in msg:
                    ineligible.append({"item": it.id, "modality": modality, "reason": msg})
                else:
                    skipped.append({"item": it.id, "modality": modality, "reason": msg})
                    log(f"warning: skipping unreadable {modality} file: {msg}")
                continue
            picked.append((it, media))
        if not picked:
            log(f"note: no usable {modality} items in {cfg.corpus.description}")
        items[modality] = picked
    return {
        "methods": methods,
        "unavailable": unavailable,
        "items": items,
        "skipped": skipped,
        "ineligible": ineligible,
        "adapter_problems": problems,
    }


def run(cfg: RunConfig, log=print) -> dict[str, Any]:
    """Run (or resume) the suite and write the report. Returns the summary dictionary."""
    from . import report as _report

    suite = cfg.suite
    os.makedirs(cfg.out_dir, exist_ok=True)
    run_path = os.path.join(cfg.out_dir, RUN_FILE)
    settings = _run_settings(suite)
    if os.path.exists(run_path):
        with open(run_path, encoding="utf-8") as fh:
            try:
                prev = json.load(fh)
            except json.JSONDecodeError:
                prev = {}
        if prev.get("settings") and prev["settings"] != settings:
            raise ValueError(
                f"{cfg.out_dir} holds a run with settings {prev['settings']}, not {settings}; use another --out folder"
            )
    atomic_write_text(run_path, json.dumps({"settings": settings}, indent=2))

    t_start = time.time()
    p = plan(cfg, log)
    done = {_cell_key(r) for r in read_cells(cfg.out_dir)}
    tasks = []
    for modality, classes in p["methods"].items():
        spec = suite.modalities[modality]
        for cls in classes:
            for it, media in p["items"].get(modality, []):
                need_embed = (cls.name, modality, it.id, "-", "embed") not in done
                pending = []
                for atk in spec.attacks:
                    kinds = [k for k in ("marked", "unmarked") if (cls.name, modality, it.id, atk.name, k) not in done]
                    if kinds:
                        pending.append((atk.name, kinds))
                if pending or need_embed:
                    tasks.append(
                        {
                            "adapter": cls,
                            "modality": modality,
                            "item": it.id,
                            "media": media,
                            "seed": suite.seed,
                            "attacks": pending,
                            "need_embed": need_embed,
                            "out_dir": cfg.out_dir,
                        }
                    )
    total = sum(int(t["need_embed"]) + sum(len(k) for _, k in t["attacks"]) for t in tasks)
    n_done_before = len(done)
    workers = cfg.workers or min(os.cpu_count() or 1, max(1, len(tasks)))
    if n_done_before:
        log(f"resuming: {n_done_before} cells already in {cfg.out_dir}, {total} to compute")
    # Largest tasks first, so the pool's tail is short.
    tasks.sort(key=lambda t: -(media_units(t["media"], t["modality"]) * (1 + len(t["attacks"]))))
    bar = _Progress(total, cfg.progress)
    errors: list[str] = []
    try:
        if workers <= 1 or len(tasks) <= 1:
            for t in tasks:
                r = run_task(t)
                bar.update(int(t["need_embed"]) + sum(len(k) for _, k in t["attacks"]))
                if r["error"]:
                    errors.append(r["error"])
        else:
            import multiprocessing as mp

            for t in tasks:
                t["threads"] = 1
            with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as ex:
                futs = {ex.submit(run_task, t): t for t in tasks}
                for f in as_completed(futs):
                    t = futs[f]
                    bar.update(int(t["need_embed"]) + sum(len(k) for _, k in t["attacks"]))
                    try:
                        r = f.result()
                    except Exception as e:
                        r = {"error": f"{t['adapter'].name}/{t['item']}: worker failed: {type(e).__name__}: {e}"}
                    if r["error"]:
                        errors.append(r["error"])
    finally:
        bar.close()
    for e in errors:
        log(f"warning: {e.splitlines()[0]}")
    rows = read_cells(cfg.out_dir)
    meta = {
        "settings": settings,
        "suite_source": suite.source,
        "corpus": cfg.corpus.description,
        "corpus_sources": cfg.corpus.sources(),
        "items": {m: [it.id for it, _ in lst] for m, lst in p["items"].items()},
        "attacks": {m: [a.name for a in spec.attacks] for m, spec in suite.modalities.items()},
        "methods": {
            m: [
                {
                    "name": c.name,
                    "payload_bits": int(c.payload_bits),
                    "description": getattr(c, "description", ""),
                }
                for c in cls
            ]
            for m, cls in p["methods"].items()
        },
        "unavailable": p["unavailable"],
        "skipped": p["skipped"],
        "ineligible": p["ineligible"],
        "task_errors": [e.splitlines()[0] for e in errors],
        "workers": workers,
        "wall_s": time.time() - t_start,
        "cells_computed": total,
        "cells_reused": n_done_before,
        "environment": _environment(),
    }
    return _report.write_report(cfg.out_dir, rows, meta, plots=cfg.plots)


def _environment() -> dict[str, Any]:
    import platform

    env: dict[str, Any] = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
    }
    from importlib import metadata

    for dist in (
        "provmark",
        "numpy",
        "Pillow",
        "av",
        "invisible-watermark",
        "blind-watermark",
        "opencv-python",
    ):
        with contextlib.suppress(metadata.PackageNotFoundError):
            env[dist] = metadata.version(dist)
    return env
