#!/usr/bin/env python
"""Grad-CAM heatmaps: same as `visionkit explain gradcam --ckpt CKPT --source IMG... [options]`."""

import sys

from visionkit.commands.explain import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
