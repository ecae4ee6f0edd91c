"""Every shipped classification config parses: its keys are real constructor arguments."""

from pathlib import Path

import pytest

from visionkit.cli import main

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs" / "classify").glob("*.yaml"))


def test_configs_exist():
    names = {c.name for c in CONFIGS}
    assert {"resnet18_finetune.yaml", "resnet50_linear_probe.yaml", "resnet50_gradual.yaml",
            "resnet50_imagenet_finetune.yaml"} <= names


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.stem)
def test_config_parses(config, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["classify", "fit", "--config", str(config), "--print_config"])
    assert exit_info.value.code in (0, None)
    printed = capsys.readouterr().out
    assert "backbone:" in printed and "root:" in printed
