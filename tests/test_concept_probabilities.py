"""ConceptProbabilities through the shared layer checks (tests/layer_checks.py)."""

import numpy as np

from hgfn_keras import ConceptProbabilities
from tests.layer_checks import run_layer_test


def test_concept_probabilities_passes_the_shared_layer_test(tmp_path):
    rng = np.random.default_rng(0)
    sigmoids = [rng.uniform(0.05, 0.95, (6, 1)).astype("float32") for _ in range(3)]
    layer = run_layer_test(lambda **kwargs: ConceptProbabilities(**kwargs), (sigmoids,),
                           (6, 3), tmp_path, expected_num_trainable_weights=0)
    probabilities = np.asarray(layer(sigmoids))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-6)
    stacked = np.concatenate(sigmoids, axis=1)
    np.testing.assert_allclose(probabilities, stacked / stacked.sum(axis=1, keepdims=True),
                               rtol=1e-4)
