"""``provmark bench``: command-line front end of the benchmark.

The main ``provmark`` CLI wires this in with :func:`register`; ``python -m provmark.bench`` runs it alone.
"""

from __future__ import annotations

import argparse
import os
import sys


def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--suite", default="quick", help="quick, full, or a suite TOML file (default: quick)")
    p.add_argument(
        "--methods",
        default=None,
        help="comma-separated method names (default: every available one); see --list-methods",
    )
    p.add_argument(
        "--corpus",
        default=None,
        help="folder of images/audio/video to use instead of the default offline corpus",
    )
    p.add_argument("--out", default=None, help="output folder (default: bench-<suite>); rerun to resume")
    p.add_argument("--workers", type=int, default=None, help="parallel processes (default: CPU count)")
    p.add_argument(
        "--adapter",
        action="append",
        default=[],
        metavar="MODULE:CLASS",
        help="load an extra method adapter (repeatable)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--list-methods", action="store_true", help="list adapters and their availability, then exit")
    p.add_argument("--list-attacks", action="store_true", help="list attack families, then exit")


def _list_methods(extra: list[str]) -> int:
    from . import adapters

    table, problems = adapters.all_adapters(extra)
    avail = adapters.availability(table)
    for (name, modality), cls in sorted(table.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        ok, why = avail[(name, modality)]
        state = "available" if ok else f"not available: {why}"
        print(f"{modality:6s} {name:18s} {cls.payload_bits:4d} bits  {state}")
    for p in problems:
        print(f"warning: {p}", file=sys.stderr)
    return 0


def _list_attacks() -> int:
    from . import attacks

    for m in attacks.MODALITIES:
        print(f"[{m}]")
        for fam, spec in sorted(attacks.families(m).items()):
            import inspect

            params = ", ".join(n if d is inspect.Parameter.empty else f"{n}={d!r}" for n, d in spec.params)
            avail = "" if spec.available() else "  (not available here)"
            print(f"  {fam}({params}){avail}: {spec.doc}")
    return 0


def run_from_args(args: argparse.Namespace) -> int:
    if args.list_methods:
        return _list_methods(args.adapter)
    if args.list_attacks:
        return _list_attacks()
    from .corpus import Corpus
    from .runner import RunConfig, run
    from .suites import load_suite

    try:
        suite = load_suite(args.suite)
        corpus = Corpus.from_folder(args.corpus) if args.corpus else Corpus.default()
        if args.workers is not None and args.workers < 1:
            raise ValueError("--workers must be at least 1")
        methods = None if not args.methods else [m.strip() for m in args.methods.split(",") if m.strip()]
        out = args.out or f"bench-{suite.name}"
        cfg = RunConfig(
            suite=suite,
            corpus=corpus,
            out_dir=out,
            methods=methods,
            extra_adapters=args.adapter,
            workers=args.workers,
            progress=not args.no_progress,
        )
        log = lambda msg: print(msg, file=sys.stderr)  # noqa: E731
        doc = run(cfg, log=log)
    except (ValueError, TypeError, RuntimeError, OSError) as e:
        print(f"provmark bench: error: {e}", file=sys.stderr)
        return 2
    print(f"report: {os.path.join(out, 'report.md')}")
    for key, info in doc["methods"].items():
        t = info.get("mean_tpr_under_attack")
        print(f"  {key:28s} mean detection under attack {'–' if t is None else f'{t:.2f}'}")
    if not doc["methods"]:
        print("  (no method produced results: see the notes above)")
    return 0


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``bench`` subcommand to a ``provmark`` CLI ``subparsers`` object; sets ``func``."""
    p = subparsers.add_parser(
        "bench",
        help="robustness benchmark: attacks x corpus x methods",
        description="Run a robustness benchmark suite and write CSV, JSON, Markdown and plots.",
    )
    _add_arguments(p)
    p.set_defaults(func=run_from_args)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="provmark bench", description="Run a robustness benchmark suite (see docs/benchmarks.md)."
    )
    _add_arguments(parser)
    return run_from_args(parser.parse_args(argv))
