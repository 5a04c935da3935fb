"""HGFN layers: shapes, the paper's equations recomputed in numpy, masks, config, errors."""

import keras
import numpy as np
import pytest

from hgfn_keras import fusion as fusion_module
from hgfn_keras import (
    ConcatFusion,
    GraphFusionNetwork,
    TensorFusion,
    DynamicAttentionUnit,
    HierarchicalGraphFusion,
    LevelFusion,
    ModalityAlignment,
    ModalityGates,
    SimilarityEdgeWeights,
    VertexMLP,
    VertexNetwork,
    count_vertices,
    get_fusion,
)
from hgfn_keras.fusion import Fusion, ModalityDropout, build_levels
from tests.layer_checks import random_modalities, run_fusion_layer_test, run_layer_test

SLOPE = 0.3  # the LeakyReLU slope the layers use by default


def leaky(x):
    return np.where(x > 0, x, SLOPE * x)


def softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


# -- graph shape -------------------------------------------------------------------
@pytest.mark.parametrize(
    "m, expected",
    [(2, [2, 1]), (3, [3, 3, 6]), (4, [4, 6, 24]), (6, [6, 15, 120])],
)
def test_vertex_counts_and_output_shapes(m, expected):
    assert count_vertices(m) == expected
    widths = [3 + i for i in range(m)]
    names = [f"m{i}" for i in range(m)]
    layer = HierarchicalGraphFusion(modality_names=names, dau_filters=2, vertex_filters=2)
    x = dict(zip(names, random_modalities(widths, batch=3)))
    fused, weights, vertices = layer(x, return_weights=True)
    d = max(widths)
    assert tuple(fused.shape) == (3, d * len(expected))
    assert [w.shape[1] for w in weights] == expected
    assert [tuple(v.shape) for v in vertices] == [(3, n, d) for n in expected]
    assert [len(labels) for labels in layer.vertex_labels()] == expected


def test_trimodal_vertices_are_the_papers_six():
    level3 = build_levels(3)[2]
    # Pool: 0,1,2 unimodal; 3=(0,1), 4=(0,2), 5=(1,2).
    pairs = sorted(zip(level3.left, level3.right))
    assert pairs == sorted([(3, 4), (3, 5), (4, 5), (3, 2), (4, 1), (5, 0)])
    assert all(len(members) == 3 for members in level3.members)


def test_order_four_is_counted_and_guarded():
    assert count_vertices(6, max_order=4) == [6, 15, 120, 3600]
    with pytest.raises(ValueError, match="3741 vertices"):
        HierarchicalGraphFusion(max_order=4, modality_names=[f"m{i}" for i in range(6)])


# -- the equations, recomputed in numpy -----------------------------------------------
def numpy_dau(layer, aligned):
    """Eq. 1 by hand: 5x5 'same' conv, LeakyReLU, 1x1 conv, LeakyReLU, mean, softmax."""
    k1, b1 = [np.asarray(v) for v in layer.conv_5x5.weights]
    k2, b2 = [np.asarray(v) for v in layer.conv_1x1.weights]
    batch, m, d = aligned.shape
    ks = k1.shape[0]
    pad = ks // 2
    padded = np.pad(aligned, ((0, 0), (pad, pad), (pad, pad)))
    conv = np.zeros((batch, m, d, k1.shape[-1]))
    for i in range(ks):
        for j in range(ks):
            conv += padded[:, i : i + m, j : j + d, None] * k1[i, j, 0]
    hidden = leaky(conv + b1)
    scores = leaky(hidden @ k2[0, 0] + b2)[..., 0]
    return softmax(scores.mean(axis=-1))


def numpy_vertex(net, left, right):
    """Eq. 3 by hand: Conv1D 'same' over the 2-channel pair, LeakyReLU, Dense, LeakyReLU."""
    kernel, bias = [np.asarray(v) for v in net.conv.weights]
    dense_k, dense_b = [np.asarray(v) for v in net.dense.weights]
    pair = np.stack([left, right], axis=-1)  # (batch, V, D, 2)
    ks = kernel.shape[0]
    pad_left = (ks - 1) // 2
    d = pair.shape[2]
    padded = np.pad(pair, ((0, 0), (0, 0), (pad_left, ks - 1 - pad_left), (0, 0)))
    conv = np.zeros(pair.shape[:3] + (kernel.shape[-1],))
    for j in range(ks):
        conv += padded[:, :, j : j + d, :] @ kernel[j]
    hidden = leaky(conv + bias).reshape(pair.shape[0], pair.shape[1], -1)
    return leaky(hidden @ dense_k + dense_b)


@pytest.mark.parametrize("similarity", ["cosine", "dot"])
@pytest.mark.parametrize("m", [3, 4])
def test_levels_match_equations_in_numpy(m, similarity):
    theta = 0.4
    widths = [4, 6, 5, 3][:m]
    names = [f"m{i}" for i in range(m)]
    layer = HierarchicalGraphFusion(theta=theta, similarity=similarity, modality_names=names,
                                    dau_filters=3, vertex_filters=2)
    inputs = random_modalities(widths, batch=4, seed=m)
    fused, weights, vertices = layer(dict(zip(names, inputs)), return_weights=True)
    fused = np.asarray(fused)
    weights = [np.asarray(w, dtype="float64") for w in weights]
    vertices = [np.asarray(v, dtype="float64") for v in vertices]
    d = max(widths)

    aligned = np.stack([np.pad(x, ((0, 0), (0, d - x.shape[1]))) for x in inputs], axis=1)
    np.testing.assert_allclose(vertices[0], aligned, atol=1e-6)
    np.testing.assert_allclose(weights[0], numpy_dau(layer.dau, aligned), atol=1e-5)  # eq. 1

    expected_levels = [(weights[0][..., None] * aligned).sum(axis=1) / m]  # eq. 2
    pool_v, pool_w = aligned, weights[0]
    for index, level in enumerate(layer.levels[1:]):
        left, right = np.array(level.left), np.array(level.right)
        np.testing.assert_allclose(  # eq. 3
            vertices[index + 1],
            numpy_vertex(layer.vertex_networks[index], pool_v[:, left], pool_v[:, right]),
            atol=1e-4,
        )
        a, b = softmax(pool_v[:, left]), softmax(pool_v[:, right])
        s = (a * b).sum(-1)  # eq. 4
        if similarity == "cosine":
            s = s / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))
        q = (pool_w[:, left] + pool_w[:, right]) / (s + theta)  # eq. 5
        np.testing.assert_allclose(weights[index + 1], softmax(q), atol=1e-5)
        expected_levels.append((weights[index + 1][..., None] * vertices[index + 1]).sum(1))
        pool_v = np.concatenate([pool_v, vertices[index + 1]], axis=1)
        pool_w = np.concatenate([pool_w, weights[index + 1]], axis=1)
    np.testing.assert_allclose(fused, np.concatenate(expected_levels, -1), atol=1e-5)  # eq. 7


def test_similar_constituents_get_less_weight():
    layer = SimilarityEdgeWeights(theta=0.5)
    base = np.array([[[3.0, 0.0, 0.0]]], "float32")
    same = base.copy()
    different = np.array([[[0.0, 0.0, 3.0]]], "float32")
    left = np.concatenate([base, base], axis=1)
    right = np.concatenate([same, different], axis=1)
    w = np.full((1, 2), 0.5, "float32")
    weights = np.asarray(layer(left, right, w, w))
    assert weights[0, 1] > weights[0, 0]


# -- masks -------------------------------------------------------------------------------
@pytest.mark.parametrize("fusion_name", ["hgfn", "cfc", "tensor", "gfn"])
def test_masked_modality_changes_nothing(fusion_name):
    names = ["a", "b", "c"]
    layer = get_fusion(fusion_name, modality_names=names)
    x = dict(zip(names, random_modalities([4, 5, 6], batch=6, seed=1)))
    mask = np.ones((6, 3), "float32")
    mask[:, 1] = 0.0
    out = np.asarray(layer(x, modality_mask=mask))
    x_changed = dict(x, b=np.random.default_rng(9).normal(size=(6, 5)).astype("float32") * 50)
    out_changed = np.asarray(layer(x_changed, modality_mask=mask))
    np.testing.assert_allclose(out, out_changed, atol=1e-6)


def test_masked_modality_gets_zero_weight_everywhere():
    names = ["a", "b", "c", "d"]
    layer = HierarchicalGraphFusion(modality_names=names)
    x = dict(zip(names, random_modalities([4, 4, 4, 4], batch=3)))
    mask = np.array([[1, 0, 1, 1], [1, 1, 1, 1], [0, 0, 1, 1]], "float32")
    _, weights, _ = layer(x, modality_mask=mask, return_weights=True)
    weights = [np.asarray(w) for w in weights]
    np.testing.assert_array_equal(weights[0][mask == 0], 0.0)
    for level, w in zip(layer.levels, weights):
        for v, members in enumerate(level.members):
            covers_missing = mask[:, list(members)].min(axis=1) == 0
            np.testing.assert_array_equal(w[covers_missing, v], 0.0)
    for w in weights:  # present vertices share the weight: each row sums to 1 or to 0
        sums = w.sum(axis=1)
        assert np.all(np.isclose(sums, 1.0, atol=1e-5) | (sums == 0.0))
    assert np.all(np.isfinite(np.concatenate([w.ravel() for w in weights])))


def test_all_masked_sample_gives_zeros_not_nan():
    layer = HierarchicalGraphFusion(modality_names=["a", "b"])
    x = dict(zip(["a", "b"], random_modalities([3, 3], batch=2)))
    out = np.asarray(layer(x, modality_mask=np.array([[0, 0], [1, 1]], "float32")))
    np.testing.assert_array_equal(out[0], 0.0)
    assert np.all(np.isfinite(out))


# -- the standard layer checks ---------------------------------------------------------
# id: (class, constructor arguments, modality widths, output width, trainable weights).
FUSION_CASES = {
    # The DAU's two convolutions (4) and a VertexNetwork (4) per level above the first.
    "hgfn": (HierarchicalGraphFusion, {"dau_filters": 2}, [6, 3, 2], 6 * 3, 4 + 2 * 4),
    # ... and one Dense projection (2) per modality.
    "hgfn_project": (HierarchicalGraphFusion,
                     {"dau_filters": 2, "alignment": "project", "units": 4,
                      "similarity": "dot", "theta": 1.0}, [6, 3, 2], 4 * 3, 4 + 2 * 4 + 3 * 2),
    "hgfn_order_2": (HierarchicalGraphFusion, {"dau_filters": 2, "max_order": 2}, [6, 3, 2],
                     6 * 2, 4 + 4),
    "cfc": (ConcatFusion, {"units": 7}, [6, 3, 2], 7, 2),
    "tensor_full": (TensorFusion, {"units": 5}, [4, 3, 2], 5, 2),
    # One factor per modality and the bias.
    "tensor_low_rank": (TensorFusion, {"units": 5, "rank": 3}, [4, 3, 2], 5, 3 + 1),
    # The sigmoid gates (2) and a VertexMLP (2) per level above the first.
    "gfn": (GraphFusionNetwork, {}, [6, 3, 2], 6 * 3, 2 + 2 * 2),
}


@pytest.mark.parametrize("case", sorted(FUSION_CASES))
def test_every_fusion_passes_the_standard_checks(case, tmp_path):
    cls, kwargs, widths, width, num_trainable = FUSION_CASES[case]
    run_fusion_layer_test(cls, kwargs, widths, width, tmp_path,
                          expected_num_trainable_weights=num_trainable)


_rng = np.random.default_rng(0)
STACKED = _rng.normal(size=(4, 3, 5)).astype("float32")  # [batch, M or V, D]
OTHER = _rng.normal(size=(4, 3, 5)).astype("float32")
WEIGHTS = np.full((4, 3), 1 / 3, "float32")  # [batch, V]
MASK = np.ones((4, 3), "float32")
MASK[0, 1] = 0.0

# id: (make(**layer_kwargs), positional inputs, keyword inputs, output shape,
# trainable weights).
SUB_LAYER_CASES = {
    "alignment_pad": (lambda **kw: ModalityAlignment(alignment="pad", **kw),
                      ([STACKED[:, 0], STACKED[:, 1, :3]],), {}, (4, 2, 5), 0),
    "alignment_project": (lambda **kw: ModalityAlignment(alignment="project", units=4, **kw),
                          ([STACKED[:, 0], STACKED[:, 1, :3]],), {}, (4, 2, 4), 2 * 2),
    "dau": (lambda **kw: DynamicAttentionUnit(filters=2, **kw), (STACKED,),
            {"modality_mask": MASK}, (4, 3), 4),
    "modality_gates": (lambda **kw: ModalityGates(**kw), (STACKED,), {"modality_mask": MASK},
                       (4, 3), 2),
    "vertex_network": (lambda **kw: VertexNetwork(units=4, filters=2, **kw), (STACKED, OTHER),
                       {}, (4, 3, 4), 4),
    "vertex_mlp": (lambda **kw: VertexMLP(units=4, **kw), (STACKED, OTHER), {}, (4, 3, 4), 2),
    "similarity_edge_weights": (lambda **kw: SimilarityEdgeWeights(theta=0.5, **kw),
                                (STACKED, OTHER, WEIGHTS, WEIGHTS), {"vertex_mask": MASK},
                                (4, 3), 0),
    "level_fusion": (lambda **kw: LevelFusion(scale=0.5, **kw), (WEIGHTS, STACKED), {},
                     (4, 5), 0),
    "modality_dropout": (lambda **kw: ModalityDropout(0.3, seed=0, **kw), (MASK,), {},
                         (4, 3), 0),
}


@pytest.mark.parametrize("case", sorted(SUB_LAYER_CASES))
def test_every_sub_layer_passes_the_standard_checks(case, tmp_path):
    make, args, kwargs, shape, num_trainable = SUB_LAYER_CASES[case]
    run_layer_test(make, args, shape, tmp_path, expected_num_trainable_weights=num_trainable,
                   call_kwargs=kwargs)


def test_every_fusion_layer_is_tested():
    public = {value for value in vars(fusion_module).values()
              if isinstance(value, type) and issubclass(value, keras.layers.Layer)}
    tested = {cls for cls, *_ in FUSION_CASES.values()}
    tested |= {type(make()) for make, *_ in SUB_LAYER_CASES.values()}
    # `Fusion` is the abstract base; `MissingPlaceholder` has tests/test_missing_placeholder.py.
    assert tested == public - {Fusion, fusion_module.MissingPlaceholder}


def test_list_inputs_work_like_dict_inputs():
    layer = HierarchicalGraphFusion(modality_names=["a", "b"])
    x = random_modalities([3, 2])
    np.testing.assert_allclose(np.asarray(layer(x)), np.asarray(layer({"a": x[0], "b": x[1]})))


def test_sub_layers_have_their_own_shapes():
    assert tuple(ModalityAlignment()([np.ones((2, 3)), np.ones((2, 5))]).shape) == (2, 2, 5)
    assert tuple(DynamicAttentionUnit()(np.ones((2, 3, 4), "float32")).shape) == (2, 3)
    assert tuple(VertexNetwork(5)(np.ones((2, 3, 4)), np.ones((2, 3, 4))).shape) == (2, 3, 5)
    out = LevelFusion(scale=0.5)(np.array([[1.0, 1.0]]), np.array([[[2.0], [4.0]]]))
    np.testing.assert_allclose(np.asarray(out), [[3.0]])


# -- bad input ---------------------------------------------------------------------------
@pytest.mark.parametrize("theta", [0, -0.1, 1.5, "0.5", None, True])
def test_theta_outside_range_is_refused(theta):
    with pytest.raises(ValueError, match=r"`theta` must be in \(0, 1\]. Received: theta="):
        HierarchicalGraphFusion(theta=theta)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"similarity": "euclid"}, "similarity.*euclid"),
        ({"alignment": "crop"}, "alignment.*crop"),
        ({"max_order": 1}, "max_order.*1"),
        ({"max_order": 4, "modality_names": ["a", "b", "c"]}, "max_order.*M=3"),
        ({"modality_names": ["a"]}, r"M >= 2"),
        ({"modality_names": ["a", "a"]}, "distinct"),
        ({"units": 0}, "units"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, message):
    with pytest.raises(ValueError, match=message):
        HierarchicalGraphFusion(**kwargs)


def test_one_modality_is_refused_at_call():
    with pytest.raises(ValueError, match=r"M >= 2\). Received: M=1"):
        HierarchicalGraphFusion()([np.ones((2, 3), "float32")])


def test_wrong_or_missing_modality_name_is_named():
    layer = HierarchicalGraphFusion(modality_names=["text", "image"])
    with pytest.raises(ValueError, match=r"Missing: \['image'\]; unexpected: \['imag'\]"):
        layer({"text": np.ones((2, 3)), "imag": np.ones((2, 3))})


def test_width_mismatch_is_named():
    layer = HierarchicalGraphFusion(modality_names=["text", "image"])
    layer({"text": np.ones((2, 3)), "image": np.ones((2, 4))})
    with pytest.raises(ValueError, match="'image' was built with width 4. Received: width=5"):
        layer({"text": np.ones((2, 3)), "image": np.ones((2, 5))})


def test_bad_mask_shape_is_named():
    layer = HierarchicalGraphFusion(modality_names=["a", "b"])
    with pytest.raises(ValueError, match=r"`modality_mask` must have shape \[batch, 2\]"):
        layer({"a": np.ones((2, 3)), "b": np.ones((2, 3))}, modality_mask=np.ones((2, 3)))


def test_pad_narrower_than_a_modality_is_refused():
    with pytest.raises(ValueError, match="widest modality"):
        HierarchicalGraphFusion(units=2)([np.ones((2, 3)), np.ones((2, 2))])


def test_unknown_fusion_name():
    with pytest.raises(ValueError, match="Unknown fusion 'tfn'"):
        get_fusion("tfn")


# -- the baselines ------------------------------------------------------------------------
def test_full_tensor_fusion_is_the_outer_product_with_ones():
    layer = TensorFusion(units=3, rank=0, activation=None)
    a, b = random_modalities([2, 3], batch=4)
    out = np.asarray(layer([a, b]))
    kernel, bias = [np.asarray(w) for w in layer.dense.weights]
    a1 = np.concatenate([a, np.ones((4, 1))], 1)
    b1 = np.concatenate([b, np.ones((4, 1))], 1)
    z = np.einsum("bi,bj->bij", a1, b1).reshape(4, -1)  # vec((a ⊕ 1) ⊗ (b ⊕ 1))
    np.testing.assert_allclose(out, z @ kernel + bias, atol=1e-5)


def test_low_rank_tensor_fusion_by_hand():
    layer = TensorFusion(units=3, rank=2, activation=None)
    vectors = random_modalities([2, 3, 4], batch=4)
    out = np.asarray(layer(vectors))
    factors = [np.asarray(f) for f in layer.factors]
    expected = np.ones((4, 2, 3))
    for v, f in zip(vectors, factors):
        expected = expected * np.einsum("bd,rdu->bru", np.concatenate([v, np.ones((4, 1))], 1), f)
    np.testing.assert_allclose(out, expected.sum(1) + np.asarray(layer.bias), atol=1e-5)


def test_tensor_fusion_goes_low_rank_when_the_product_is_too_wide():
    layer = TensorFusion(units=4)
    layer(random_modalities([64, 64, 64], batch=2))
    assert layer.effective_rank == 8


def test_gfn_is_a_preset_of_hgfn():
    gfn = GraphFusionNetwork(modality_names=["a", "b", "c"])
    config = gfn.get_config()
    assert (config["unimodal_weights"], config["vertex_network"], config["similarity"]) == (
        "sigmoid", "mlp", "dot")
    gfn(dict(zip(["a", "b", "c"], random_modalities([3, 3, 3]))))
    assert type(gfn.dau).__name__ == "ModalityGates"
    assert [type(n).__name__ for n in gfn.vertex_networks] == ["VertexMLP", "VertexMLP"]


@pytest.mark.parametrize("kwargs, message", [({"rank": -1}, "rank"), ({"units": 0}, "units")])
def test_tensor_fusion_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TensorFusion(**kwargs)


# -- the fast paths compute what the sub-layers compute --------------------------------
def test_vertex_network_equals_its_sub_layers():
    """`VertexNetwork` runs its Conv1D and Dense weights as one Conv2D and one matmul."""
    net = VertexNetwork(units=5, filters=3, kernel_size=3)
    rng = np.random.default_rng(4)
    left, right = (rng.normal(size=(4, 3, 6)).astype("float32") for _ in range(2))
    out = np.asarray(net(left, right))
    pair = np.stack([left, right], axis=-1).reshape(-1, 6, 2)
    hidden = leaky(np.asarray(net.conv(pair))).reshape(4, 3, -1)
    np.testing.assert_allclose(out, leaky(np.asarray(net.dense(hidden))), atol=1e-5)
    pairs = np.stack([left, right], axis=2)  # [batch, V, 2, D]
    np.testing.assert_allclose(np.asarray(net.join(pairs)), out, atol=1e-6)
    mlp = VertexMLP(units=5)
    expected = np.asarray(mlp(left, right))
    np.testing.assert_allclose(np.asarray(mlp.join(pairs)), expected, atol=1e-6)


def test_edge_weights_from_pairs_equal_the_call():
    layer = SimilarityEdgeWeights(theta=0.5)
    rng = np.random.default_rng(5)
    left, right = (rng.normal(size=(3, 4, 5)).astype("float32") for _ in range(2))
    wl, wr = (rng.random(size=(3, 4)).astype("float32") for _ in range(2))
    a, b = softmax(left), softmax(right)
    s = (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))
    expected = softmax((wl + wr) / (s + 0.5))
    np.testing.assert_allclose(np.asarray(layer(left, right, wl, wr)), expected, atol=1e-6)
    joined = layer.join_weights(np.stack([left, right], axis=2), wl + wr)
    np.testing.assert_allclose(np.asarray(joined), expected, atol=1e-6)


# -- alignment="auto": pad narrow inputs (the paper), project wide ones ------------------
def test_auto_alignment_pads_narrow_and_projects_wide_modalities():
    narrow = HierarchicalGraphFusion(dau_filters=2, vertex_filters=2)
    x = random_modalities([6, 3, 2], batch=2)
    narrow(x)
    assert (narrow.alignment_layer.mode, narrow.width) == ("pad", 6)
    padded = HierarchicalGraphFusion(alignment="pad", dau_filters=2, vertex_filters=2)
    padded(x)
    padded.set_weights(narrow.get_weights())
    np.testing.assert_array_equal(np.asarray(padded(x)), np.asarray(narrow(x)))

    wide = [np.zeros((2, 300), "float32"), np.zeros((2, 5), "float32")]
    auto = HierarchicalGraphFusion(dau_filters=2, vertex_filters=2)
    auto(wide)
    assert (auto.alignment_layer.mode, auto.width) == ("project", 256)
    paper = HierarchicalGraphFusion(alignment="pad", dau_filters=2, vertex_filters=2)
    paper(wide)
    assert (paper.alignment_layer.mode, paper.width) == ("pad", 300)
    assert auto.get_config()["alignment"] == "auto"
    rebuilt = HierarchicalGraphFusion.from_config(auto.get_config())
    rebuilt(wide)
    assert rebuilt.width == 256
