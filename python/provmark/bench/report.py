"""Turn benchmark cells into tables, plots and a Markdown report.

Outputs in the run folder (each written to a temporary file and renamed into place):

- ``results.csv``: one row per cell (every measurement);
- ``summary.csv``: one row per (modality, method, attack);
- ``summary.json``: run metadata, per-method thresholds, quality, timing and the summary rows;
- ``report.md``: the human-readable report;
- ``plots/*.png``: robustness by attack, robustness against attack strength, quality against robustness
  (when matplotlib is installed).
"""

from __future__ import annotations

import csv
import inspect
import io
import json
import math
import os
import time
from collections import defaultdict
from typing import Any

import numpy as np

from .._fileio import atomic_write_text
from . import attacks as _attacks
from .metrics import calibrate_threshold

ROW_FIELDS = [
    "modality",
    "method",
    "item",
    "attack",
    "family",
    "strength",
    "kind",
    "payload_bits",
    "bit_acc",
    "exact",
    "score",
    "score_kind",
    "p_value",
    "found",
    "psnr",
    "ssim",
    "snr",
    "embed_s",
    "attack_s",
    "detect_s",
    "units",
    "error",
]
SUMMARY_FIELDS = [
    "modality",
    "method",
    "attack",
    "family",
    "strength",
    "n",
    "errors",
    "tpr_at_fpr",
    "exact_rate",
    "bit_acc",
    "found_rate",
    "median_p",
    "fpr_under_attack",
    "n_negatives",
]
UNIT = {"image": "MP", "audio": "s of audio", "video": "MP-frames"}


def _csv_text(rows: list[dict[str, Any]], fields: list[str]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in fields})
    return buf.getvalue()


def _mean(v: list[float]) -> float | None:
    v = [float(x) for x in v if x is not None and math.isfinite(float(x))]
    return float(np.mean(v)) if v else None


def _score(r: dict[str, Any]) -> float:
    s = r.get("score")
    return -math.inf if s is None else float(s)


def summarize(rows: list[dict[str, Any]], fpr: float, attack_order: dict[str, list[str]]) -> dict[str, Any]:
    """Per-method thresholds, per-attack robustness, quality and timing."""
    by_mm: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_mm[(r["modality"], r["method"])].append(r)
    methods: dict[str, dict[str, Any]] = {}
    table: list[dict[str, Any]] = []
    for (modality, method), rs in sorted(by_mm.items()):
        neg = [r for r in rs if r["kind"] == "unmarked"]
        pos = [r for r in rs if r["kind"] == "marked"]
        emb = [r for r in rs if r["kind"] == "embed"]
        neg_scores = [_score(r) for r in neg if r.get("score") is not None]
        th = calibrate_threshold(neg_scores, fpr) if neg_scores else None
        thr = th.value if th is not None else math.inf
        info: dict[str, Any] = {
            "modality": modality,
            "method": method,
            "payload_bits": rs[0].get("payload_bits"),
            "score_kind": next((r["score_kind"] for r in pos + neg if r.get("score_kind")), None),
            "threshold": None if th is None else th.value,
            "n_negatives": len(neg_scores),
            "empirical_fpr": None if th is None else th.empirical_fpr,
            "fpr_resolvable": None if th is None else th.resolvable,
            "psnr_mean": _mean([r.get("psnr") for r in emb]),
            "psnr_min": min([r["psnr"] for r in emb if r.get("psnr") is not None], default=None),
            "ssim_mean": _mean([r.get("ssim") for r in emb]),
            "snr_mean": _mean([r.get("snr") for r in emb]),
            "snr_min": min([r["snr"] for r in emb if r.get("snr") is not None], default=None),
            "embed_errors": sum(1 for r in emb if r.get("error")),
            "n_items": len(emb),
        }
        # Median over cells of seconds per unit: robust to a slow first call or a busy neighbour process.
        eu = [
            r["embed_s"] / r["units"]
            for r in emb
            if r.get("embed_s") is not None and r.get("units") and not r.get("error")
        ]
        du = [r["detect_s"] / r["units"] for r in pos if r.get("detect_s") is not None and r.get("units")]
        info["embed_s_per_unit"] = float(np.median(eu)) if eu else None
        info["detect_s_per_unit"] = float(np.median(du)) if du else None
        info["unit"] = UNIT[modality]
        order = {a: i for i, a in enumerate(attack_order.get(modality, []))}
        by_attack: dict[str, list[dict[str, Any]]] = defaultdict(list)
        neg_by_attack: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in pos:
            by_attack[r["attack"]].append(r)
        for r in neg:
            neg_by_attack[r["attack"]].append(r)
        tprs, exacts = [], []
        for attack in sorted(by_attack, key=lambda a: (order.get(a, 10**6), a)):
            ar = by_attack[attack]
            founds = [r.get("found") for r in ar]
            has_found = any(f is not None for f in founds)
            pv = [r["p_value"] for r in ar if r.get("p_value") is not None]
            na = neg_by_attack.get(attack, [])
            row = {
                "modality": modality,
                "method": method,
                "attack": attack,
                "family": ar[0].get("family"),
                "strength": ar[0].get("strength"),
                "n": len(ar),
                "errors": sum(1 for r in ar if r.get("error")),
                "tpr_at_fpr": float(np.mean([_score(r) > thr for r in ar])),
                "exact_rate": float(np.mean([bool(r.get("exact")) for r in ar])),
                "bit_acc": float(np.mean([float(r.get("bit_acc", 0.5)) for r in ar])),
                "found_rate": float(np.mean([bool(f) for f in founds])) if has_found else None,
                "median_p": float(np.median(pv)) if pv else None,
                "fpr_under_attack": float(np.mean([_score(r) > thr for r in na])) if na else None,
                "n_negatives": len(na),
            }
            table.append(row)
            if row["family"] != "identity":
                tprs.append(row["tpr_at_fpr"])
                exacts.append(row["exact_rate"])
        info["mean_tpr_under_attack"] = _mean(tprs)
        info["mean_exact_under_attack"] = _mean(exacts)
        methods[f"{modality}/{method}"] = info
    return {"fpr": fpr, "methods": methods, "table": table}


# ------------------------------------------------------------------------------------------ Markdown


def _f(v, fmt="{:.2f}", none="–"):
    if v is None:
        return none
    if isinstance(v, float) and math.isinf(v):
        return "∞"
    return fmt.format(v)


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def _speed(info: dict[str, Any], which: str) -> str:
    v = info.get(f"{which}_s_per_unit")
    if v is None:
        return "–"
    if info["modality"] == "audio":
        return f"{1.0 / v:.0f}× real time" if v > 0 else "–"
    return f"{v * 1000:.1f} ms/{UNIT[info['modality']]}"


def markdown(summary: dict[str, Any], meta: dict[str, Any], plots: list[str]) -> str:
    s = meta["settings"]
    lines = [f"# provmark bench report: `{s['suite']}` suite", ""]
    env = meta.get("environment", {})
    lines += [
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
        f"wall time {meta.get('wall_s', 0):.0f} s with "
        f"{meta.get('workers')} worker(s); {meta.get('cells_computed', 0)} cells computed, "
        f"{meta.get('cells_reused', 0)} reused from an earlier run",
        f"- seed {s['seed']}; detection rates at a false-positive rate of {s['fpr']:g} "
        "(threshold per method, "
        f"calibrated on the unmarked items of this run)",
        f"- corpus: {meta.get('corpus')}; items used: "
        + ", ".join(f"{m} {len(v)}" for m, v in meta.get("items", {}).items()),
        "- environment: " + ", ".join(f"{k} {v}" for k, v in env.items()),
        "",
    ]
    lines += ["## Methods", ""]
    mrows = []
    for m, lst in meta.get("methods", {}).items():
        for c in lst:
            mrows.append([c["name"], m, str(c["payload_bits"]), c.get("description", "")])
    lines.append(
        _md_table(["method", "modality", "payload bits", "description"], mrows) if mrows else "(none available)"
    )
    if meta.get("unavailable"):
        lines += [
            "",
            "Not available in this installation: "
            + "; ".join(f"{u['method']} ({u['modality']}): {u['reason']}" for u in meta["unavailable"]),
        ]
    lines.append("")
    table = summary["table"]
    for modality in ("image", "audio", "video"):
        infos = [i for i in summary["methods"].values() if i["modality"] == modality]
        if not infos:
            continue
        meths = [i["method"] for i in infos]
        lines += [
            f"## {modality.capitalize()}",
            "",
            f"Items: {', '.join(meta['items'].get(modality, []))}",
            "",
        ]
        lines += ["### Quality, speed and calibration", ""]
        qh = ["method", "PSNR dB mean (min)" if modality != "audio" else "SNR dB mean (min)"]
        if modality != "audio":
            qh.append("SSIM mean")
        qh += [
            "embed",
            "detect",
            "score",
            "threshold",
            "negatives",
            "empirical FPR",
            "mean detection under attack",
            "mean exact under attack",
        ]
        qr = []
        for i in infos:
            q = (
                [f"{_f(i['psnr_mean'])} ({_f(i['psnr_min'])})", _f(i["ssim_mean"], "{:.4f}")]
                if modality != "audio"
                else [f"{_f(i['snr_mean'])} ({_f(i['snr_min'])})"]
            )
            qr.append(
                [
                    i["method"],
                    *q,
                    _speed(i, "embed"),
                    _speed(i, "detect"),
                    i.get("score_kind") or "–",
                    _f(i["threshold"], "{:.4g}"),
                    str(i["n_negatives"]),
                    _f(i["empirical_fpr"], "{:.4f}"),
                    _f(i["mean_tpr_under_attack"]),
                    _f(i["mean_exact_under_attack"]),
                ]
            )
        lines += [_md_table(qh, qr), ""]
        if any(i["fpr_resolvable"] is False for i in infos):
            lines += [
                f"Note: with fewer than {1 / s['fpr']:.0f} negatives a method's threshold is its highest "
                "unmarked score; the FPR is then not resolved by this run.",
                "",
            ]
        attacks = [a for a in meta["attacks"].get(modality, [])]
        cell = {(r["method"], r["attack"]): r for r in table if r["modality"] == modality}
        for title, key, fmt in (
            (f"Detection rate at FPR {s['fpr']:g}", "tpr_at_fpr", "{:.2f}"),
            ("Exact payload rate", "exact_rate", "{:.2f}"),
            ("Bit accuracy", "bit_acc", "{:.3f}"),
        ):
            rows = []
            for a in attacks:
                r = [f"`{a}`"]
                for m in meths:
                    c = cell.get((m, a))
                    txt = _f(c.get(key), fmt) if c else "–"
                    if c and c.get("errors"):
                        txt += f" ({c['errors']} err)"
                    r.append(txt)
                rows.append(r)
            lines += [f"### {title}", "", _md_table(["attack", *meths], rows), ""]
        pv = [
            (m, a, cell[(m, a)])
            for m in meths
            for a in attacks
            if (m, a) in cell and cell[(m, a)].get("found_rate") is not None
        ]
        if pv:
            rows = []
            for a in attacks:
                r = [f"`{a}`"]
                for m in meths:
                    c = cell.get((m, a))
                    r.append(
                        "–"
                        if not c or c.get("found_rate") is None
                        else f"{c['found_rate']:.2f} (p {_f(c.get('median_p'), '{:.1e}')})"
                    )
                rows.append(r)
            lines += [
                "### Methods' own decision (found rate, median p-value)",
                "",
                "Only for methods that decide for themselves (at their own configured false-positive rate).",
                "",
                _md_table(["attack", *meths], rows),
                "",
            ]
        fp = [
            (m, a, cell[(m, a)]["fpr_under_attack"])
            for m in meths
            for a in attacks
            if (m, a) in cell and (cell[(m, a)].get("fpr_under_attack") or 0) > 0
        ]
        if fp:
            lines += [
                "False positives on unmarked items above the calibrated threshold: "
                + "; ".join(f"{m} `{a}` {v:.2f}" for m, a, v in fp),
                "",
            ]
    for p in plots:
        lines += [f"![{os.path.basename(p)}]({p})", ""]
    lines += ["## Corpus files not used", ""]
    sk = meta.get("skipped", [])
    ine = meta.get("ineligible", [])
    lines.append(
        f"Unreadable (skipped with a warning): {len(sk)}"
        + ("" if not sk else ": " + "; ".join(f"{x['item']} ({x['reason']})" for x in sk))
    )
    lines.append("")
    lines.append(
        f"Too short for the suite: {len(ine)}"
        + ("" if not ine else " (" + ", ".join(x["item"] for x in ine[:20]) + (" …" if len(ine) > 20 else "") + ")")
    )
    if meta.get("task_errors"):
        lines += ["", "Task errors: " + "; ".join(meta["task_errors"])]
    lines += [
        "",
        "## How to read this report",
        "",
        "Detection rate: share of marked items whose score is above the method's threshold, the threshold "
        "being set on this run's unmarked items (clean and attacked alike) so that at most the stated "
        "share of them score above it. Methods without a score of their own are scored by how many read "
        "bits agree with the embedded payload. Exact payload: every payload bit recovered. Bit accuracy: "
        "share of bits recovered (0.5 when nothing was read). See docs/benchmarks.md.",
        "",
    ]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ plots


def _series(attack_name: str, modality: str) -> str:
    """Panel name of an attack: its family with every parameter except the strength one, e.g. ``resize(back=True)``."""
    try:
        a = _attacks.get(attack_name, modality)
    except (ValueError, TypeError):
        return attack_name
    spec = a.spec
    if spec is None:
        return attack_name
    other = [
        f"{k}={a.params[k]!r}"
        for k, default in spec.params
        if k != spec.strength and default is not inspect.Parameter.empty and a.params[k] != default
    ]
    return f"{a.family}({', '.join(other)})" if other else a.family


def _plots(out_dir: str, summary: dict[str, Any], meta: dict[str, Any]) -> list[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    pdir = os.path.join(out_dir, "plots")
    os.makedirs(pdir, exist_ok=True)
    made = []

    def save(fig, name):
        path = os.path.join(pdir, name)
        tmp = path + f".tmp-{os.getpid()}"
        with open(tmp, "wb") as fh:
            fig.savefig(fh, format="png", dpi=110, bbox_inches="tight")
        plt.close(fig)
        os.replace(tmp, path)
        made.append(os.path.join("plots", name))

    table = summary["table"]
    for modality in ("image", "audio", "video"):
        rows = [r for r in table if r["modality"] == modality]
        if not rows:
            continue
        meths = sorted({r["method"] for r in rows})
        attacks = [a for a in meta["attacks"].get(modality, []) if any(r["attack"] == a for r in rows)]
        # 1. detection rate by attack, grouped bars
        fig, ax = plt.subplots(figsize=(max(6, 0.45 * len(attacks) * max(1, len(meths)) * 0.6 + 3), 4.2))
        width = 0.8 / max(1, len(meths))
        for j, m in enumerate(meths):
            vals = [
                next((r["tpr_at_fpr"] for r in rows if r["method"] == m and r["attack"] == a), np.nan) for a in attacks
            ]
            ax.bar(np.arange(len(attacks)) + j * width - 0.4 + width / 2, vals, width, label=m)
        ax.set_xticks(np.arange(len(attacks)))
        ax.set_xticklabels(attacks, rotation=60, ha="right", fontsize=8)
        ax.set_ylim(0, 1.05)
        ax.set_ylabel(f"detection rate at FPR {summary['fpr']:g}")
        ax.set_title(f"{modality}: robustness by attack")
        ax.legend(fontsize=8)
        save(fig, f"{modality}_robustness_by_attack.png")
        # 2. robustness against strength: one panel per family and setting of its other parameters
        #    (resize with back=True is not the same curve as resize kept small), if >= 2 strengths
        fams: dict[str, set] = defaultdict(set)
        panel_of: dict[str, tuple[str, str]] = {}
        for r in rows:
            if r.get("strength") is None or " | " in r["attack"]:
                continue
            if r["attack"] not in panel_of:
                panel_of[r["attack"]] = (_series(r["attack"], modality), r["family"])
            fams[panel_of[r["attack"]][0]].add(r["strength"])
        fams = {f: s for f, s in fams.items() if len(s) >= 2}
        if fams:
            n = len(fams)
            cols = min(4, n)
            nrows = (n + cols - 1) // cols
            fig, axes = plt.subplots(nrows, cols, figsize=(3.4 * cols, 2.8 * nrows), squeeze=False)
            for k, panel in enumerate(sorted(fams)):
                ax = axes[k // cols][k % cols]
                fam = next(f for s_, f in panel_of.values() if s_ == panel)
                for m in meths:
                    pts = defaultdict(list)
                    for r in rows:
                        if r["method"] == m and panel_of.get(r["attack"], ("",))[0] == panel:
                            pts[r["strength"]].append(r)
                    xs = sorted(pts)
                    ax.plot(xs, [np.mean([r["tpr_at_fpr"] for r in pts[x]]) for x in xs], "o-", label=m)
                    ax.plot(
                        xs,
                        [np.mean([r["exact_rate"] for r in pts[x]]) for x in xs],
                        "x--",
                        alpha=0.5,
                        color=ax.lines[-1].get_color(),
                    )
                ax.set_title(panel, fontsize=9)
                spec = _attacks.families(modality).get(fam)
                if spec is not None and spec.strength:
                    ax.set_xlabel(spec.strength, fontsize=8)
                ax.set_ylim(-0.03, 1.03)
                ax.tick_params(labelsize=7)
            for k in range(n, nrows * cols):
                axes[k // cols][k % cols].axis("off")
            axes[0][0].legend(fontsize=7)
            fig.suptitle(
                f"{modality}: detection rate (solid) and exact payload (dashed) vs attack strength",
                fontsize=10,
            )
            fig.tight_layout()
            save(fig, f"{modality}_robustness_vs_strength.png")
        # 3. quality vs robustness
        infos = [i for i in summary["methods"].values() if i["modality"] == modality]
        qkey = "snr_mean" if modality == "audio" else "psnr_mean"
        pts = [
            (i["method"], i[qkey], i["mean_tpr_under_attack"])
            for i in infos
            if i.get(qkey) is not None and i.get("mean_tpr_under_attack") is not None
        ]
        if pts:
            fig, ax = plt.subplots(figsize=(5, 4))
            for m, q, t in pts:
                ax.scatter([q], [t], s=40)
                ax.annotate(m, (q, t), textcoords="offset points", xytext=(5, 4), fontsize=8)
            ax.set_xlabel(("SNR" if modality == "audio" else "PSNR") + " of the marked item, dB (mean)")
            ax.set_ylabel("mean detection rate under attack")
            ax.set_ylim(-0.03, 1.05)
            ax.set_title(f"{modality}: quality vs robustness")
            ax.grid(alpha=0.3)
            save(fig, f"{modality}_quality_vs_robustness.png")
    return made


def write_report(out_dir: str, rows: list[dict[str, Any]], meta: dict[str, Any], plots: bool = True) -> dict[str, Any]:
    """Write results.csv, summary.csv, summary.json, report.md and plots/; return the summary."""
    summary = summarize(rows, meta["settings"]["fpr"], meta.get("attacks", {}))
    rows_sorted = sorted(rows, key=lambda r: (r["modality"], r["method"], r["item"], r["attack"], r["kind"]))
    atomic_write_text(os.path.join(out_dir, "results.csv"), _csv_text(rows_sorted, ROW_FIELDS))
    atomic_write_text(os.path.join(out_dir, "summary.csv"), _csv_text(summary["table"], SUMMARY_FIELDS))
    plots = _plots(out_dir, summary, meta) if plots else []
    doc = {
        "meta": meta,
        "fpr": summary["fpr"],
        "methods": summary["methods"],
        "table": summary["table"],
        "plots": plots,
    }
    atomic_write_text(os.path.join(out_dir, "summary.json"), json.dumps(doc, indent=2, default=str))
    atomic_write_text(os.path.join(out_dir, "report.md"), markdown(summary, meta, plots))
    return doc
