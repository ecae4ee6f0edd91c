#!/usr/bin/env python
"""Run a benchmark and print JSON: same as `visionkit benchmark NAME ...`."""

import sys

from visionkit.commands.benchmark import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
