"""The hand-kept stub python/provmark/_core.pyi lists exactly what the native module exports."""

from __future__ import annotations

import ast
from pathlib import Path

import provmark
from provmark import _core


def _stub_names() -> set[str]:
    stub = Path(provmark.__file__).with_name("_core.pyi")
    tree = ast.parse(stub.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def _module_names() -> set[str]:
    return {n for n in dir(_core) if not n.startswith("_") or n == "__version__"}


def test_stub_matches_module() -> None:
    stub, module = _stub_names(), _module_names()
    assert module - stub == set(), f"exported by _core but missing from _core.pyi: {sorted(module - stub)}"
    assert stub - module == set(), f"declared in _core.pyi but not exported by _core: {sorted(stub - module)}"


def test_stream_enum_matches() -> None:
    stub = Path(provmark.__file__).with_name("_core.pyi").read_text(encoding="utf-8")
    for name, member in _core.Stream.__members__.items():
        assert f"    {name} = {int(member)}\n" in stub, f"Stream.{name} = {int(member)} missing from _core.pyi"
