"""`classify fit --help` and `detect fit --help` come from the help cache after their first run."""

import os

import pytest

from visionkit.cli import main
from visionkit.commands import classify, help_cache


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("VISIONKIT_HELP_CACHE", "1")
    return tmp_path / "visionkit" / "help"


def test_second_help_is_the_first_without_building_it(cache, capsys, monkeypatch):
    assert main(["classify", "fit", "--help"]) == 0
    first = capsys.readouterr().out
    assert "--model.backbone" in first and len(list(cache.glob("*.txt"))) == 1
    # every argument explained in our words, none of LightningCLI's generic ones beside ours
    assert "lacks type and help" not in first and "--optimizer CONFIG" not in first
    assert "'last' for the newest run's last.ckpt" in first and "Could also be one of" not in first
    assert "null: the model's backbone's" in " ".join(first.split())
    assert "(type: Union[bool, int], default: 0)" in " ".join(first.split())

    def fail(argv):
        raise AssertionError("built again")

    monkeypatch.setattr(classify, "_run", fail)
    assert main(["classify", "fit", "--help"]) == 0
    assert capsys.readouterr().out == first


def test_the_key_follows_the_code_the_arguments_and_a_config_file(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("model: {}\n")
    key = help_cache._key(["classify", "fit", "--config", str(config), "--help"])
    assert key == help_cache._key(["classify", "fit", "--config", str(config), "--help"])
    assert key != help_cache._key(["detect", "fit", "--config", str(config), "--help"])
    config.write_text("model: {lr: 0.1}\n")
    os.utime(config, ns=(1, 1))
    assert key != help_cache._key(["classify", "fit", "--config", str(config), "--help"])


def test_cache_off_builds_every_time(cache, capsys, monkeypatch):
    monkeypatch.setenv("VISIONKIT_HELP_CACHE", "0")
    assert main(["classify", "fit", "--help"]) == 0
    assert "--model.backbone" in capsys.readouterr().out and not cache.exists()
