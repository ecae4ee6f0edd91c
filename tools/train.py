#!/usr/bin/env python
"""Train a classifier: same as `visionkit classify fit ...` (every option: --help)."""

import sys

from visionkit.commands.classify import main

if __name__ == "__main__":
    sys.exit(main(["fit", *sys.argv[1:]]))
