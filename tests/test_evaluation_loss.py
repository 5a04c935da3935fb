"""`evaluate` with missing labels: the same loss whatever the batch size (issue 14, part 8)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from hgfn_keras import Modality, build_model
from hgfn_keras.multitask.loss_tracker import TaskLossTracker
from hgfn_keras.multitask.task_loss import task_loss
from tests.conftest import FLOOD_DAMAGE, make_inputs

MODALITIES = (Modality("image", width=3), Modality("audio", width=2))
TASKS = FLOOD_DAMAGE
ROWS = 50


def _data():
    rng = np.random.default_rng(0)
    x = make_inputs(MODALITIES, ROWS, rng, mask=True)
    flood = rng.integers(0, 2, ROWS).astype("int32")
    damage = rng.integers(0, 3, ROWS).astype("int32")
    flood[rng.random(ROWS) < 0.5] = -1  # missing labels, unevenly spread over batches
    damage[:20] = -1
    return x, {"flood": flood, "damage": damage}


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    model = build_model(list(MODALITIES), list(TASKS), fusion="cfc",
                        fusion_kwargs={"units": 4}, head_units=4, mtl="lsew")
    model.compile(optimizer="adam")
    model.predict(_data()[0], verbose=0)
    return model


def test_evaluate_does_not_depend_on_the_batch_size(model):
    x, y = _data()
    probabilities = model.predict(x, verbose=0)
    # By hand: each task's mean over every labelled row (one batch of all rows).
    expected = {t.name: float(task_loss(t, y[t.name], probabilities[t.name])) for t in TASKS}
    results = []
    for batch_size in (7, 16, ROWS):
        results.append(model.evaluate(x, y, batch_size=batch_size, verbose=0,
                                      return_dict=True))
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    results.append(model.evaluate(dataset, verbose=0, return_dict=True))
    for result in results:
        for name, value in expected.items():
            assert result[f"{name}_loss"] == pytest.approx(value, rel=1e-5)
        assert result["loss"] == pytest.approx(sum(expected.values()), rel=1e-5)


def test_tracker_means_batches_in_training_and_rows_in_evaluation():
    tracker = TaskLossTracker(2)
    tracker.update_state(1.0)
    tracker.update_state(3.0)
    assert float(tracker.result()) == pytest.approx(2.0)
    tracker.reset_state()
    tracker.update_state(sums=[2.0, 3.0], counts=[1.0, 3.0])
    tracker.update_state(sums=[4.0, 0.0], counts=[3.0, 0.0])
    assert float(tracker.result()) == pytest.approx(6 / 4 + 3 / 3)
    with pytest.raises(ValueError, match="num_tasks"):
        TaskLossTracker(0)
