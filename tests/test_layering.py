"""The layer map of ../shared/DESIGN.md, enforced: imports point down only, Lightning stays in tasks/.

One scan of every module's imports (relative ones resolved) feeds all the rules below.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import visionkit

PACKAGE = Path(visionkit.__file__).parent
# Rank of each area (top-level module or subpackage of visionkit), bottom to top. A module may
# import areas of its own rank or below. Modules not listed (errors, fileio, device, runtime, progress,
# distributed, checkpoint_record) are the base: importable by all, importing no area.
RANK = {
    "ops": 0, "models": 1, "detection": 2, "data": 3, "evaluation": 3, "explain": 4, "tasks": 5,
    "inference": 6, "benchmarks": 7, "demo": 7, "cli": 8, "commands": 8,
}
OPS_MAY_IMPORT = ("torch", "torchvision.ops", "visionkit.ops", "__future__", "collections", "functools",
                  "math", "typing")


@cache
def imports() -> dict[str, set[str]]:
    """Dotted module name → absolute names of everything it imports, for every visionkit module."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        package = module if parts[-1] == "__init__" else module.rpartition(".")[0]
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # from .x import y → resolved against the module's package
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    names.add(".".join([*base, node.module] if node.module else base))
                else:
                    names.add(node.module or "")
        found[module] = names
    return found


def area(module: str) -> str | None:
    """``visionkit.detection.rpn`` → ``detection``; None outside visionkit or for the package itself."""
    parts = module.split(".")
    return parts[1] if parts[0] == "visionkit" and len(parts) > 1 else None


def _within(name: str, roots: tuple[str, ...]) -> bool:
    return any(name == root or name.startswith(root + ".") for root in roots)


def test_every_area_is_on_the_map():
    areas = {area(m) for m in imports()} - {None}
    base = {a for a in areas if (PACKAGE / f"{a}.py").is_file() and a not in RANK}
    assert areas - base <= set(RANK), f"add {sorted(areas - base - set(RANK))} to RANK and DESIGN.md"
    for module in imports():
        if area(module) in base:
            upward = [n for n in imports()[module] if area(n) in RANK]
            assert not upward, f"{module} is a base module but imports {upward}"


def test_imports_point_down_the_layer_map():
    upward = [f"{module} imports {name}" for module, names in imports().items() for name in names
              if area(module) in RANK and area(name) in RANK and RANK[area(name)] > RANK[area(module)]]
    assert not upward, "\n".join(upward)


def test_lightning_is_imported_in_tasks_only():
    outside = [f"{module} imports {name}" for module, names in imports().items() for name in names
               if _within(name, ("lightning", "pytorch_lightning")) and area(module) != "tasks"]
    assert not outside, "\n".join(outside)


def test_ops_imports_only_torch_and_torchvision_ops():
    for module, names in imports().items():
        if area(module) == "ops":
            bad = sorted(n for n in names if not _within(n, OPS_MAY_IMPORT))
            assert not bad, f"{module} imports {bad}"


def test_detectors_are_our_own():
    for module, names in imports().items():
        if area(module) == "detection":
            assert not any(_within(n, ("torchvision.models.detection",)) for n in names), module
