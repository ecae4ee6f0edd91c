#!/usr/bin/env python
"""Top-k classes for images from a checkpoint: same as `visionkit classify predict ...`."""

import sys

from visionkit.commands.classify import main

if __name__ == "__main__":
    sys.exit(main(["predict", *sys.argv[1:]]))
