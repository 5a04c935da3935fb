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
@pytest.mark.slow
def test_every_strategy_under_mixed_bfloat16(name, tmp_path):
    run_strategy_test(name, KWARGS.get(name, {}), tmp_path, policy="mixed_bfloat16")


@pytest.mark.slow
def test_dmtl_on_the_shared_layer_passes_the_standard_checks(tmp_path):
    # The strategy hook's other DMTL path: norms over the last shared layer.
    run_strategy_test("dmtl", dict(KWARGS["dmtl"], grad_norm_layer="shared"), tmp_path)


def test_every_strategy_is_tested():
    assert set(TASK_WEIGHTINGS) >= set(KWARGS)


@pytest.mark.parametrize("make, message", [
    (lambda: TASK_WEIGHTINGS["dwa"](temperature=True), r"`temperature` must be a number > 0"),
    (lambda: TASK_WEIGHTINGS["dwa"](temperature=0), r"Received: temperature=0"),
    (lambda: TASK_WEIGHTINGS["moo"](iterations=True), r"`iterations` must be a positive int"),
    (lambda: TASK_WEIGHTINGS["moo"](iterations=2.0), r"Received: iterations=2.0"),
])
def test_strategy_arguments_are_checked_by_the_shared_helpers(make, message):
    with pytest.raises(ValueError, match=message):
        make()
