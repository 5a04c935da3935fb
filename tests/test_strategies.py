"""The standard strategy checks (`layer_checks.run_strategy_test`) on every strategy of
the registry, in float32 and under mixed_bfloat16."""

import pytest

from hgfn_keras import TASK_WEIGHTINGS
from tests.layer_checks import run_strategy_test

KWARGS = {"dmtl": {"alpha": 1.0, "learning_rate": 1e-2}, "moo": {"iterations": 50},
          "dwa": {"temperature": 2.0}, "gradnorm": {"alpha": 1.5}}


@pytest.mark.parametrize("name", sorted(TASK_WEIGHTINGS))
def test_every_strategy_passes_the_standard_checks(name, tmp_path):
    run_strategy_test(name, KWARGS.get(name, {}), tmp_path)


@pytest.mark.parametrize("name", sorted(TASK_WEIGHTINGS))
def test_every_strategy_under_mixed_bfloat16(name, tmp_path):
    run_strategy_test(name, KWARGS.get(name, {}), tmp_path, policy="mixed_bfloat16")


def test_every_strategy_is_tested():
    assert set(TASK_WEIGHTINGS) >= set(KWARGS)
