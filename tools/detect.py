#!/usr/bin/env python
"""Train/evaluate a detector: same as `visionkit detect fit|validate|test ...` (options: --help)."""

import sys

from visionkit.commands.detect import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
