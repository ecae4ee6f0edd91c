"""LightningCLI for detection: `VisionkitCLI` with the data → model links a detector needs."""

from __future__ import annotations

import warnings

from visionkit.tasks.cli import VisionkitCLI


class DetectionCLI(VisionkitCLI):
    """Links data.num_classes, data.classes and data.category_ids into the task."""

    def add_arguments_to_parser(self, parser) -> None:  # noqa: D102
        parser.link_arguments("data.num_classes", "model.num_classes", apply_on="instantiate")
        parser.link_arguments("data.classes", "model.class_names", apply_on="instantiate")
        parser.link_arguments("data.category_ids", "model.category_ids", apply_on="instantiate")


def run_detection_cli(args: list[str], prog: str) -> DetectionCLI:
    """Run `fit|validate|test` of DetectionTask on DetectionDataModule with `args`."""
    from visionkit.tasks.detection import DetectionTask
    from visionkit.tasks.detection_datamodule import DetectionDataModule

    warnings.filterwarnings("ignore", message="LightningCLI's args parameter")
    return DetectionCLI(DetectionTask, DetectionDataModule, args=args,
                        save_config_kwargs={"overwrite": True}, parser_kwargs={"prog": prog})
