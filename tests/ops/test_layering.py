"""visionkit.ops stays pure tensor code: it imports only torch, torchvision.ops and itself."""

from __future__ import annotations

import ast
from pathlib import Path

import visionkit.ops

ALLOWED = ("torch", "torchvision.ops", "visionkit.ops", "__future__", "collections", "functools", "math")


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add(node.module or "")
    return names


def test_ops_imports_only_torch_and_torchvision_ops():
    package = Path(visionkit.ops.__file__).parent
    for path in sorted(package.glob("*.py")):
        for name in _imports(path):
            ok = any(name == root or name.startswith(root + ".") for root in ALLOWED)
            assert ok, f"{path.name} imports {name}"


def test_public_api_is_exported():
    for name in visionkit.ops.__all__:
        assert getattr(visionkit.ops, name).__doc__, name
