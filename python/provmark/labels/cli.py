"""``provmark label`` and ``provmark verify`` (the lead's cli.py calls :func:`register`).

``provmark label IN OUT --key KEYFILE --producer CODE --service dialogue|voice|face|immersive|other|outside
[--produce-id ID] [--signing-key FILE] [--ledger DB] [--no-explicit] [--recipient ACCOUNT] [--account ACCOUNT]
[--consent REF]``

``provmark verify FILE [--key KEYFILE] [--public-key FILE.pub ...] [--ledger DB] [--json]``: exit status 0
when the verdict is ``intact``, 3 otherwise (``none``, ``stripped``, ``forged``); 1 on errors.
"""

from __future__ import annotations

import argparse
import json

from .policy import ServiceType

EXIT_NOT_INTACT = 3


def _cmd_label(args: argparse.Namespace) -> int:
    from ..keys import Key
    from .pipeline import label_file

    res = label_file(
        args.input,
        args.output,
        key=Key.load(args.key),
        producer=args.producer,
        service=args.service,
        produce_id=args.produce_id,
        signing_key=args.signing_key,
        ledger=args.ledger,
        explicit=not args.no_explicit,
        account=args.account or "",
        unlabeled_recipient=args.recipient,
        biometric_edit=args.consent is not None,
        consent_ref=args.consent,
    )
    seq = f", ledger seq {res.ledger_seq}" if res.ledger_seq is not None else ""
    print(
        f"wrote {res.output}: {res.content_type.value}, applied {', '.join(res.applied)}; ProduceID "
        f"{res.label.produce_id}, payload {res.payload_hex}{seq}"
    )
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    from ..keys import Key
    from .pipeline import verify

    rep = verify(
        args.file,
        key=Key.load(args.key) if args.key else None,
        public_keys=args.public_key or (),
        ledger=args.ledger,
    )
    if args.json:
        print(json.dumps(rep.to_dict(), indent=2, ensure_ascii=False))
    else:
        print(f"{rep.path}: {rep.verdict}")
        for k, v in rep.checks.items():
            print(f"  {k}: {v}")
        for r in rep.reasons:
            print(f"  - {r}")
    return 0 if rep.verdict == "intact" else EXIT_NOT_INTACT


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "label",
        help="apply explicit label, watermark, signed AIGC metadata and a ledger record",
        description="Label an image or audio file as AI-generated (GB 45438 / CAC Measures).",
    )
    p.add_argument("input", metavar="IN")
    p.add_argument("output", metavar="OUT")
    p.add_argument("--key", required=True, metavar="KEYFILE", help="watermark key file (provmark keygen)")
    p.add_argument("--producer", required=True, metavar="CODE", help="provider code (TC260 coding rule), ASCII")
    p.add_argument(
        "--service",
        required=True,
        choices=[s.value for s in ServiceType],
        help="DSP Art. 17(1) service type, or 'outside'",
    )
    p.add_argument("--produce-id", metavar="ID", help="content number (default: a random UUID)")
    p.add_argument("--signing-key", metavar="FILE", help="Ed25519 key (provmark keygen --signing) to sign the label")
    p.add_argument("--ledger", metavar="DB", help="SQLite ledger file to log the item in")
    p.add_argument(
        "--no-explicit",
        action="store_true",
        help="no visible/audible label; for Art. 17(1) services only as an unlabeled copy (--recipient)",
    )
    p.add_argument("--recipient", metavar="ACCOUNT", help="account receiving an unlabeled copy (Measures Art. 9)")
    p.add_argument("--account", metavar="ACCOUNT", help="requesting account, logged in the ledger")
    p.add_argument("--consent", metavar="REF", help="consent reference for face/voice editing (DSP Art. 14)")
    p.set_defaults(func=_cmd_label)

    p = sub.add_parser(
        "verify",
        help="check a file's AIGC label, signature, watermark and ledger record",
        description="Verdict: intact, stripped, forged or none (exit 0 only when intact).",
    )
    p.add_argument("file", metavar="FILE")
    p.add_argument("--key", metavar="KEYFILE", help="watermark key file, to look for the watermark")
    p.add_argument("--public-key", action="append", metavar="FILE.pub", help="signer public key (repeatable)")
    p.add_argument("--ledger", metavar="DB", help="SQLite ledger to cross-check")
    p.add_argument("--json", action="store_true", help="print the full report as JSON")
    p.set_defaults(func=_cmd_verify)
