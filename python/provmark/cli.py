"""The `provmark` command line."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


class CliError(Exception):
    """A failure to report as one line on stderr (exit 1)."""


def _cmd_keygen(args: argparse.Namespace) -> int:
    if args.signing:
        from .labels import signing

        signing.generate_signing_key_files(args.output, overwrite=args.force)
        print(f"wrote Ed25519 signing key {args.output} and public key {args.output}.pub")
        return EXIT_OK
    from .keys import Key

    key = Key.generate()
    key.save(args.output, overwrite=args.force)
    print(f"wrote key {args.output} (id {key.id}, mode 0600)")
    return EXIT_OK


def _cmd_info(args: argparse.Namespace) -> int:
    from .backend import backend_info

    info = backend_info()
    if args.json:
        print(json.dumps(info, indent=2))
        return EXIT_OK
    width = max(len(k) for k in info)
    for k, v in info.items():
        print(f"{k:<{width}}  {v}")
    return EXIT_OK


def _register_core(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "keygen",
        help="create a watermark key file (or an Ed25519 signing key with --signing)",
        description="Create a new random 256-bit watermark key file (mode 0600).",
    )
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="key file to write")
    p.add_argument(
        "--signing",
        action="store_true",
        help="write an Ed25519 label-signing key (FILE) and its public key (FILE.pub) instead",
    )
    p.add_argument("--force", action="store_true", help="replace FILE if it exists")
    p.set_defaults(func=_cmd_keygen)

    p = sub.add_parser(
        "info",
        help="show the native backend: CUDA, SIMD level, threads",
        description="Show what the native core was built with and what it uses now.",
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_info)


# Modules adding subcommands with register(subparsers), in --help order after keygen/info; `batch` holds
# embed/detect for image, audio and video files, folders and manifests.
_COMMAND_MODULES = ("batch", "demo", "labels.cli", "bench.cli")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="provmark",
        description="Provenance for AI-generated media: watermark, label, detect and verify.",
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"provmark {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    _register_core(sub)
    for name in _COMMAND_MODULES:
        importlib.import_module(f".{name}", __package__).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("provmark: interrupted", file=sys.stderr)
        return 130
    except (CliError, OSError, ValueError, TypeError, RuntimeError) as e:
        print(f"provmark {args.command}: error: {e}", file=sys.stderr)
        return EXIT_FAILURE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
