"""`provmark demo` end to end: label, attack, detect, verify on the built-in photo."""

from __future__ import annotations

import hashlib

from provmark import Key
from provmark.cli import main
from provmark.demo import DEMO_ATTACKS, run_demo


def test_demo_end_to_end(tmp_path) -> None:
    lines: list[str] = []
    key = Key.from_bytes(hashlib.sha256(b"provmark demo test key").digest())
    result = run_demo(tmp_path, echo=lines.append, key=key)
    assert result.psnr_db >= 42.0
    assert [name for name, _, _ in result.attacks] == list(DEMO_ATTACKS)
    # Robustness rates are the image engine's tests and benchmarks; here the table must be real detections.
    assert all(0.0 <= p <= 1.0 for _, _, p in result.attacks)
    assert sum(exact for _, exact, _ in result.attacks) >= 1
    assert result.verdicts == {"labeled.png": "intact", "stripped.png": "stripped", "forged.png": "forged"}
    assert result.ok
    for name in ("original.png", "labeled.png", "watermark.key", "signing.pem", "signing.pem.pub", "ledger.db"):
        assert (tmp_path / name).is_file(), name
    assert any(line.startswith("summary:") for line in lines)


def test_demo_cli_with_own_image(tmp_path, capsys) -> None:
    from PIL import Image
    from skimage import data

    photo = tmp_path / "cat.jpg"
    Image.fromarray(data.chelsea()).save(photo, quality=90)
    assert main(["demo", "--image", str(photo), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "cat.jpg" in out and "verdicts as expected" in out
