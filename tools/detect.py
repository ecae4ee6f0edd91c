#!/usr/bin/env python
"""Train, evaluate or run a detector: same as `visionkit detect fit|validate|test|predict ...`."""

import sys

from visionkit.commands.detect import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
