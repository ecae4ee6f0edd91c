"""visionkit.detection is plain torch: no torchvision.models.detection, no Lightning."""

import ast
from pathlib import Path

import visionkit.detection

FORBIDDEN = ("torchvision.models.detection", "lightning", "visionkit.tasks", "visionkit.data")


def test_detection_does_not_import_torchvision_detection_or_upper_layers():
    for path in sorted(Path(visionkit.detection.__file__).parent.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert not name.startswith(FORBIDDEN), f"{path.name} imports {name}"
