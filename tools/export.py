#!/usr/bin/env python
"""Export a checkpoint to TorchScript/ONNX: same as `visionkit export ...` (options: --help)."""

import sys

from visionkit.commands.export import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
