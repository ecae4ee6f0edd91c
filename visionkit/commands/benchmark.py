"""`visionkit benchmark NAME [options]`: run one benchmark and print its JSON."""

from __future__ import annotations

import importlib
import json
import sys

from visionkit.benchmarks import BENCHMARKS


def main(argv: list[str]) -> int:
    """Run the named benchmark with the rest of argv as its options."""
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in BENCHMARKS:
        names = ", ".join(sorted(BENCHMARKS))
        print(f"usage: visionkit benchmark NAME [options]   (NAME: {names}; NAME --help for options)",
              file=sys.stderr if argv and argv[0] not in ("-h", "--help") else sys.stdout)
        return 0 if not argv or argv[0] in ("-h", "--help") else 2
    result = importlib.import_module(BENCHMARKS[argv[0]]).run(argv[1:])
    print(json.dumps(result, indent=2))
    return 0
