"""The offline demo (`visionkit demo`): an application of the library, like `visionkit.benchmarks`.

- `run`: detect and classify embedded synthetic shapes with the shipped weights, write a report;
- `weights`: how the shipped demo weights were made (`visionkit demo --make-weights`).
"""
