#!/usr/bin/env python
"""COCO mAP report: same as `visionkit evaluate --gt GT.json --pred RESULTS.json [--out DIR]`."""

import sys

from visionkit.commands.evaluate import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
