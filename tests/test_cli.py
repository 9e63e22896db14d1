"""The `provmark` command line: keygen, info, help, exit codes."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import pytest

from provmark import Key
from provmark.cli import main


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "provmark.cli", *args], capture_output=True, text=True, check=False)


def test_keygen_writes_a_loadable_key(tmp_path, capsys) -> None:
    path = tmp_path / "k.key"
    assert main(["keygen", "-o", str(path)]) == 0
    key = Key.load(path)
    assert key.id in capsys.readouterr().out
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    # refuses to overwrite without --force: one line on stderr, exit 1
    assert main(["keygen", "-o", str(path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "exists" in err[0]
    assert Key.load(path) == key
    assert main(["keygen", "-o", str(path), "--force"]) == 0
    assert Key.load(path) != key


def test_info_json(capsys) -> None:
    assert main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["simd_level"] in ("baseline", "avx2") and info["num_threads"] >= 1


def test_info_text_in_subprocess() -> None:
    r = run_cli("info")
    assert r.returncode == 0, r.stderr
    assert "compiled_with_cuda" in r.stdout and "simd_level" in r.stdout


@pytest.mark.parametrize("args", [[], ["nonsense"], ["keygen"]])
def test_bad_usage_exits_2(args: list[str]) -> None:
    r = run_cli(*args)
    assert r.returncode == 2 and "usage" in r.stderr


def test_help_for_every_subcommand() -> None:
    r = run_cli("--help")
    assert r.returncode == 0
    from provmark.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    for name in sub.choices:
        h = run_cli(name, "--help")
        assert h.returncode == 0 and "usage" in h.stdout, name
