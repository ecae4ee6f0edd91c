#!/usr/bin/env python
"""Per-layer model summary: same as `visionkit summary MODEL_OR_CKPT [--input CxHxW] [--format ...]`."""

import sys

from visionkit.commands.summary import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
