"""HGFN with a modality masked out: every level renormalises over what is present
(issue 31, item 4's check).

For a row with a modality masked, these tests recompute each level's weights from
the layer's own vertices and check that they are the softmax over the *present*
entries only (so the masked modality, and every vertex that covers it, gets exactly
0 and the present ones share all the weight, in the ratios they would have among
themselves), and that each level vector is that weighted sum. Checked for the
paper's layer (padding, levels only) and the package preset's (projection + ReLU,
the modality vectors kept and scaled by M · w_i), M = 3 and 4.
"""

import numpy as np
import pytest

from hgfn_keras.fusion import HierarchicalGraphFusion
from hgfn_keras.presets import preset_fusion_kwargs
from tests.layer_checks import random_modalities

# Rows: complete, one modality missing, two missing, only one present.
MASKS = {3: np.array([[1, 1, 1], [1, 0, 1], [0, 1, 1], [0, 0, 1], [1, 0, 0]], "float32"),
         4: np.array([[1, 1, 1, 1], [1, 0, 1, 1], [0, 1, 0, 1], [0, 0, 1, 1], [0, 0, 0, 1]],
                     "float32")}
PRESETS = ["paper", "package"]


def _layer(preset, m):
    names = [f"m{i}" for i in range(m)]
    kwargs = preset_fusion_kwargs(preset, "hgfn", {"units": 8} if preset == "package" else {})
    layer = HierarchicalGraphFusion(modality_names=names, max_order=3, dau_filters=2,
                                    vertex_filters=2, **kwargs)
    x = dict(zip(names, random_modalities([5, 3, 4, 6][:m], batch=len(MASKS[m]), seed=m)))
    return layer, x


def _fused(preset, m):
    """The layer of `_layer`, the mask, and its fused vector, per-level weights and
    vertices on `MASKS[m]`, as float64 numpy arrays."""
    layer, x = _layer(preset, m)
    mask = MASKS[m]
    fused, weights, vertices = layer(x, modality_mask=mask, return_weights=True)
    return (layer, mask, np.asarray(fused, "float64"),
            [np.asarray(w, "float64") for w in weights],
            [np.asarray(v, "float64") for v in vertices])


def _softmax_over(values, present):
    out = np.zeros_like(values)
    if present.any():
        e = np.exp(values[present] - values[present].max())
        out[present] = e / e.sum()
    return out


@pytest.mark.parametrize("m", [3, 4])
@pytest.mark.parametrize("preset", PRESETS)
def test_each_level_is_the_softmax_over_its_present_vertices_only(preset, m):
    layer, mask, _, weights, vertices = _fused(preset, m)

    # Level 1 (the DAU, eq. 1): its scores do not depend on the mask (the masked
    # vector is zero either way), so the masked weights must be the unmasked
    # softmax renormalised over the present modalities.
    unmasked = np.asarray(layer.dau(vertices[0]), "float64")
    for row, present in enumerate(mask > 0):
        expected = np.where(present, unmasked[row], 0.0)
        np.testing.assert_allclose(weights[0][row], expected / expected.sum(), atol=1e-6)

    # Levels >= 2 (eqs. 4-5): q from the level's own constituents, then the
    # softmax over the vertices whose modalities are all present.
    pool_v, pool_w = vertices[0], weights[0]
    for level, w, v in zip(layer.levels[1:], weights[1:], vertices[1:]):
        left, right = pool_v[:, list(level.left)], pool_v[:, list(level.right)]
        similarity = np.asarray(layer.edge_weights.similarity_scores(left, right), "float64")
        q = (pool_w[:, list(level.left)] + pool_w[:, list(level.right)]) / (
            similarity + layer.theta)
        for row in range(len(mask)):
            present = np.array([mask[row, list(members)].min() > 0
                                for members in level.members])
            np.testing.assert_allclose(w[row], _softmax_over(q[row], present), atol=1e-5)
            if present.any():
                assert w[row, present].sum() == pytest.approx(1.0, abs=1e-5)
            else:  # no vertex of this level present: all weights 0, not NaN
                np.testing.assert_array_equal(w[row], 0.0)
        pool_v = np.concatenate([pool_v, v], axis=1)
        pool_w = np.concatenate([pool_w, w], axis=1)


@pytest.mark.parametrize("m", [3, 4])
@pytest.mark.parametrize("preset", PRESETS)
def test_level_vectors_are_the_weighted_sums_over_present_vertices(preset, m):
    layer, mask, fused, weights, vertices = _fused(preset, m)
    d = layer.width
    np.testing.assert_array_equal(vertices[0][mask == 0], 0.0)  # masked slots are zero
    blocks = []
    if layer.keep_modalities:
        kept = vertices[0] * (m * weights[0][..., None])  # "weighted": M · w_i
        blocks.append(kept.reshape(len(mask), m * d))
    blocks.append(np.einsum("bv,bvd->bd", weights[0], vertices[0]) / m)  # eq. 2
    for w, v in zip(weights[1:], vertices[1:]):
        blocks.append(np.einsum("bv,bvd->bd", w, v))  # eq. 6: masked vertices weigh 0
    np.testing.assert_allclose(fused, np.concatenate(blocks, axis=1), atol=1e-5)
    # A row with one modality left has no bimodal or trimodal vertex: those levels
    # are zero vectors (they are concatenated, not averaged, so nothing is rescaled).
    lone = mask.sum(axis=1) == 1
    start = (m * d if layer.keep_modalities else 0) + d
    np.testing.assert_array_equal(fused[lone, start:], 0.0)


@pytest.mark.parametrize("preset", PRESETS)
def test_the_masked_modalitys_values_reach_nothing(preset):
    """With the package's projection + ReLU a zero vector projects to ReLU(bias),
    not 0: the layer must re-mask after aligning. Whatever the masked modality
    holds, the fused vector and every weight are unchanged."""
    layer, x = _layer(preset, 3)
    mask = MASKS[3]
    fused, weights, _ = layer(x, modality_mask=mask, return_weights=True)
    rng = np.random.default_rng(5)
    changed = {name: np.where(mask[:, [i]] > 0, value,
                              rng.normal(size=value.shape) * 100).astype("float32")
               for i, (name, value) in enumerate(x.items())}
    zeroed = {name: np.where(mask[:, [i]] > 0, value, 0.0).astype("float32")
              for i, (name, value) in enumerate(x.items())}
    for other in (changed, zeroed):
        fused_other, weights_other, _ = layer(other, modality_mask=mask, return_weights=True)
        np.testing.assert_allclose(np.asarray(fused_other), np.asarray(fused), atol=1e-5)
        for w, w_other in zip(weights, weights_other):
            np.testing.assert_allclose(np.asarray(w_other), np.asarray(w), atol=1e-6)


def test_weighted_kept_vectors_of_present_modalities_scale_up_when_one_is_missing():
    """What the package's `keep_modalities="weighted"` does with a missing modality:
    the kept vector of modality i is scaled by M · w_i, and the DAU weights of the
    present modalities sum to 1, so the scales of the present ones sum to M, not
    to the number present; a lone modality's kept vector is M times its aligned
    vector (in a complete row the scales average 1). This is the renormalisation
    carried into the kept block: the present modalities take the missing one's
    share (documented in docs/QUALITY.md)."""
    layer, x = _layer("package", 3)
    mask = MASKS[3]
    fused, weights, vertices = layer(x, modality_mask=mask, return_weights=True)
    w0 = np.asarray(weights[0], "float64")
    np.testing.assert_allclose((3 * w0).sum(axis=1), 3.0, atol=1e-5)
    d = layer.width
    kept = np.asarray(fused)[:, :3 * d].reshape(len(mask), 3, d)
    aligned = np.asarray(vertices[0])
    lone = np.flatnonzero(mask.sum(axis=1) == 1)
    for row in lone:
        i = int(np.flatnonzero(mask[row])[0])
        np.testing.assert_allclose(kept[row, i], 3 * aligned[row, i], atol=1e-5)
