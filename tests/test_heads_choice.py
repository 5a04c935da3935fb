"""MTI-Net is a choice of heads (`heads="mtinet"`, `--heads mtinet`), not a task weighting;
`mtl="mtinet"` still works until 0.3, with a warning that says what to write instead."""

import pytest

from hgfn_keras import TrainConfig, build_model
from tests.conftest import TINY_MODALITIES, TINY_TASKS
from training.train import parse_config


def test_heads_is_a_field_and_a_flag():
    assert TrainConfig(heads="mtinet", mtl="lsew").heads == "mtinet"
    assert parse_config(["--heads", "mtinet", "--mtl", "lsew"]).heads == "mtinet"
    with pytest.raises(ValueError, match=r"heads.*Received: heads='tower'"):
        TrainConfig(heads="tower")


def test_mtl_mtinet_is_moved_to_the_heads_with_a_warning():
    with pytest.warns(FutureWarning, match=r"--heads mtinet.*mtl='lsew'"):
        config = TrainConfig(mtl="mtinet")
    assert (config.heads, config.mtl) == ("mtinet", "lsew")
    assert TrainConfig.from_json(config.to_json()) == config
    with pytest.warns(FutureWarning, match="--heads mtinet"):
        model = build_model(list(TINY_MODALITIES), list(TINY_TASKS), mtl="mtinet")
    assert type(model.task_weighting).__name__ == "TaskWeighting"
    assert model.auxiliary_outputs  # MTI-Net's intermediate predictions
