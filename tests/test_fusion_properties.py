"""Property-based tests of the fusion layers: random M, widths, masks and batch sizes."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hgfn_keras import ConcatFusion, GraphFusionNetwork, HierarchicalGraphFusion, TensorFusion

SETTINGS = settings(max_examples=15, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@st.composite
def fusion_inputs(draw, max_modalities=4):
    m = draw(st.integers(2, max_modalities))
    batch = draw(st.integers(1, 5))
    widths = draw(st.lists(st.integers(1, 6), min_size=m, max_size=m))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    scale = draw(st.sampled_from([1e-3, 1.0, 30.0]))
    vectors = [(rng.normal(size=(batch, w)) * scale).astype("float32") for w in widths]
    mask = rng.integers(0, 2, size=(batch, m)).astype("float32")
    return vectors, mask


@SETTINGS
@given(fusion_inputs(), st.floats(0.05, 1.0), st.sampled_from(["cosine", "dot"]))
def test_hgfn_weights_are_finite_sum_to_one_and_respect_the_mask(inputs, theta, similarity):
    vectors, mask = inputs
    m = len(vectors)
    names = [f"m{i}" for i in range(m)]
    layer = HierarchicalGraphFusion(theta=theta, similarity=similarity, modality_names=names,
                                    dau_filters=2, vertex_filters=2)
    fused, weights, _ = layer(dict(zip(names, vectors)), modality_mask=mask,
                              return_weights=True)
    assert np.all(np.isfinite(np.asarray(fused)))
    for level, w in zip(layer.levels, weights):
        w = np.asarray(w)
        assert np.all(np.isfinite(w)) and np.all(w >= 0)
        present = np.array([[mask[b, list(members)].min() for members in level.members]
                            for b in range(mask.shape[0])])
        np.testing.assert_array_equal(w[present == 0], 0.0)  # the mask is respected
        sums = w.sum(axis=1)
        expected = (present.sum(axis=1) > 0).astype("float32")  # 1, or 0 with none present
        np.testing.assert_allclose(sums, expected, atol=1e-5)


@SETTINGS
@given(fusion_inputs())
def test_masked_slots_do_not_matter_for_any_fusion(inputs):
    vectors, mask = inputs
    names = [f"m{i}" for i in range(len(vectors))]
    rng = np.random.default_rng(1)
    changed = [np.where(mask[:, i : i + 1] > 0, v, rng.normal(size=v.shape) * 100)
               .astype("float32") for i, v in enumerate(vectors)]
    for layer in (HierarchicalGraphFusion(modality_names=names, dau_filters=2),
                  GraphFusionNetwork(modality_names=names),
                  ConcatFusion(units=4, modality_names=names),
                  TensorFusion(units=4, modality_names=names)):
        out = np.asarray(layer(dict(zip(names, vectors)), modality_mask=mask))
        out_changed = np.asarray(layer(dict(zip(names, changed)), modality_mask=mask))
        assert np.all(np.isfinite(out))
        np.testing.assert_allclose(out, out_changed, rtol=1e-5, atol=1e-5)
