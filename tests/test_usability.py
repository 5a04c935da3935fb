"""The CLIs and the model as a Keras user meets them: help and defaults on every flag,
one export-folder flag, a summary that shows the encoders, the fusion and the heads."""

import argparse
import os

import pytest

from hgfn_keras import Modality, Task, build_model
from training import export, predict, train
from tuning import search


def _parser(module, monkeypatch):
    """The module's ArgumentParser, caught as `parse_args` builds it."""
    caught = {}
    original = argparse.ArgumentParser.parse_args

    def capture(self, args=None, namespace=None):
        caught["parser"] = self
        raise SystemExit(0)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", capture)
    with pytest.raises(SystemExit):
        module.parse_args(["--help"])
    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", original)
    return caught["parser"]


@pytest.mark.parametrize("module", [train, predict, export, search],
                         ids=["train", "predict", "export", "search"])
def test_every_flag_has_help_and_says_its_default(module, monkeypatch):
    parser = _parser(module, monkeypatch)
    missing = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction) or action.help == argparse.SUPPRESS:
            continue
        if not action.help:
            missing.append(f"{action.option_strings}: no help")
        elif not action.required and "Default" not in action.help:
            missing.append(f"{action.option_strings}: no default in {action.help!r}")
    assert not missing, missing


def test_one_name_for_the_export_folder():
    assert export.parse_args(["--model", "m", "--export-dir", "d/x"]).export_dir == "d/x"
    assert export.parse_args(["--model", "m", "--name", "x"]).export_dir == os.path.join(
        "saved_models", "x")
    # The old flag still works.
    assert export.parse_args(["--model", "m", "--name", "x", "--base-dir", "b"]).export_dir \
        == os.path.join("b", "x")
    assert train.parse_args(["--export-dir", "d/x"]).export_dir == "d/x"


def test_summary_shows_the_encoders_the_fusion_and_the_heads():
    model = build_model([Modality("image", width=4), Modality("audio", width=3)],
                        [Task("flood", 2), Task("damage", 3)], head_units=4)
    lines = []
    model.summary(print_fn=lambda line, *args, **kwargs: lines.append(line), line_length=120)
    text = "\n".join(lines)
    for name in ("image_normalization", "HierarchicalGraphFusion", "flood_hidden", "damage"):
        assert name in text, text
