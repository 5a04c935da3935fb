"""The Hierarchical Graph Fusion Network (HGFN), paper III-B."""

import warnings

import keras
import numpy as np
from keras import ops

from hgfn_keras.fusion.alignment import ModalityAlignment
from hgfn_keras.fusion.base import Fusion
from hgfn_keras.fusion.dynamic_attention_unit import DynamicAttentionUnit
from hgfn_keras.fusion.graph import build_levels, count_vertices, default_max_order
from hgfn_keras.fusion.level_fusion import LevelFusion
from hgfn_keras.fusion.modality_gates import ModalityGates
from hgfn_keras.fusion.similarity_edge_weights import (
    SimilarityEdgeWeights,
    validate_theta,
)
from hgfn_keras.fusion.vertex_network import VertexMLP, VertexNetwork
from hgfn_keras.utils.arguments import is_integer

_WARN_VERTICES = 500
#: `keep_modalities`: no (eq. 7), the aligned vectors as they are, or each scaled
#: by M · w_i, its DAU weight (1 each when the weights are uniform).
KEEP_MODALITIES = (False, True, "weighted")


@keras.saving.register_keras_serializable(package="hgfn_keras")
class HierarchicalGraphFusion(Fusion):
    """Fuses M modality vectors through a graph of unimodal, bimodal, ... vertices.

    The computation, level by level (docs/DESIGN.md, "HGFN (paper III-B)", reads
    the paper's open points, item by item):

    1. Alignment: the M vectors are zero-padded (or projected) to one width D;
       a masked-out modality becomes a zero vector. By default (`alignment="auto"`,
       `units=None`) they are padded to the widest modality, as in the paper, while
       it is at most 256 wide, and projected to D = 256 (one learned Dense per
       modality) above that: padded to 2,048, the paper's 2,048 + 1,024 features
       give the fusion 16.8 M parameters (33.6 M with a third, 128-wide modality),
       almost all in the vertex networks' Dense layers (4·D → D per level);
       projected to 256, 1.0 M (1.3 M). `alignment="pad"` keeps the paper's
       padding at any width.
    2. Unimodal level: the `DynamicAttentionUnit` gives per-sample weights
       w_1..w_M (eq. 1); F_uni = (1/M) Σ_i w_i V_i (eq. 2).
    3. Level k ≥ 2: every vertex joins two vertices of lower levels (see
       `hgfn_keras.fusion.graph`) through one `VertexNetwork` shared by the level
       (eq. 3); `SimilarityEdgeWeights` gives the vertex weights
       softmax((w_x + w_y) / (S_xy + θ)) (eqs. 4-5), and F_k = Σ w_v V_v (eq. 6).
       Each level is one batched computation over a `[batch, V, D]` tensor.
    4. F_combined = F_uni ⊕ F_bi ⊕ ... ⊕ F_max_order (eq. 7), width D · max_order.

    A vertex that includes a masked-out modality gets weight 0, so a missing
    modality contributes nothing to any level.

    Args:
        theta: θ in (0, 1] of eq. 5 (0.5, as in the paper).
        max_order: the deepest level, 2 ≤ max_order ≤ M (None: min(M, 3)).
        alignment: `"auto"` (default: `"pad"` up to width 256, `"project"` to 256
            above it), `"pad"` (the paper) or `"project"`.
        units: the aligned width D (None: the widest modality; with `"auto"`, at
            most 256).
        similarity: `"cosine"` (default, eq. 4) or `"dot"` (reference GFN code).
        dau_filters: channels of the DAU's 5x5 convolution.
        vertex_filters, vertex_kernel_size: the vertex network's Conv1D.
        max_vertices: refuse graphs with more vertices than this in all (the
            counts grow fast: M=6 has 3,741 vertices up to order 4).
        unimodal_weights: `"dau"` (the paper's DAU, eq. 1) or `"sigmoid"`
            (GFN's per-modality sigmoid gates, `ModalityGates`).
        vertex_network: `"conv"` (the paper's CONV, eq. 3) or `"mlp"` (GFN's
            shared fully connected layer, `VertexMLP`).
        keep_modalities: also output the M aligned modality vectors (masked),
            before the levels: F = V_1 ⊕ ... ⊕ V_M ⊕ F_uni ⊕ ... ⊕ F_max_order,
            width D · (M + max_order). The levels mix the modalities through
            weighted sums; kept beside them, every modality's features reach
            the heads apart, as concatenation gives them. `"weighted"`: each
            kept vector scaled by M · w_i, its DAU weight of eq. 1 (1 when the
            weights are uniform), so the per-sample weights gate them too.
            False: eq. 7, the levels only.
        projection_activation: the activation of the learned projections when
            the alignment projects (None: linear).
        modality_names: optional modality names, in order (see `Fusion`).
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments:
        inputs: a dict `{modality name: [batch, width]}` or a list of M tensors.
        modality_mask: optional `[batch, M]`, 1 where the modality is present.
        return_weights: if True, also return, per level, the vertex weights
            `[batch, V_k]` and the vertex vectors `[batch, V_k, D]`.

    Returns:
        F_combined `[batch, D · max_order]`; with `return_weights=True`, the
        tuple `(F_combined, weights, vertices)` of two lists, one entry per level.
        `vertex_labels()` names the vertices of each level in the same order.

    Example:

    >>> import numpy as np
    >>> fusion = HierarchicalGraphFusion(theta=0.5, modality_names=["text", "image", "audio"])
    >>> x = {"text": np.random.rand(4, 8), "image": np.random.rand(4, 6),
    ...      "audio": np.random.rand(4, 3)}
    >>> fused, weights, vertices = fusion(x, return_weights=True)
    >>> tuple(fused.shape), [tuple(w.shape) for w in weights]
    ((4, 24), [(4, 3), (4, 3), (4, 6)])
    >>> fusion.vertex_labels()[1]
    ['(text, image)', '(text, audio)', '(image, audio)']

    Reference: Wang & Chen, "Hierarchical Multimodal Fusion Network with Dynamic
    Multi-task Learning", III-B, eqs. 1-7; Mai et al., "Modality to Modality
    Translation ... Graph Fusion Network", AAAI 2020.
    """

    def __init__(
        self,
        theta=0.5,
        max_order=None,
        alignment="auto",
        units=None,
        similarity="cosine",
        dau_filters=8,
        vertex_filters=4,
        vertex_kernel_size=3,
        max_vertices=2000,
        unimodal_weights="dau",
        vertex_network="conv",
        keep_modalities=False,
        projection_activation=None,
        modality_names=None,
        **kwargs,
    ):
        super().__init__(modality_names=modality_names, **kwargs)
        validate_theta(theta)
        if unimodal_weights not in ("dau", "sigmoid"):
            raise ValueError("`unimodal_weights` must be 'dau' or 'sigmoid'. "
                             f"Received: unimodal_weights={unimodal_weights!r}")
        if vertex_network not in ("conv", "mlp"):
            raise ValueError("`vertex_network` must be 'conv' or 'mlp'. "
                             f"Received: vertex_network={vertex_network!r}")
        if max_order is not None and (
            not is_integer(max_order) or max_order < 2
        ):
            raise ValueError(
                f"`max_order` must be an integer >= 2 or None. Received: max_order={max_order!r}"
            )
        if modality_names is not None and max_order is not None and max_order > len(modality_names):
            raise ValueError(
                f"`max_order` cannot exceed the number of modalities M={len(modality_names)}. "
                f"Received: max_order={max_order}"
            )
        # Build the sub-layers' arguments now, so that bad ones fail at construction.
        self.alignment_layer = ModalityAlignment(alignment, units, name="alignment",
                                                 activation=projection_activation,
                                                 dtype=self.dtype_policy)
        if unimodal_weights == "dau":
            self.dau = DynamicAttentionUnit(filters=dau_filters, name="dau",
                                            dtype=self.dtype_policy)
        else:
            self.dau = ModalityGates(name="modality_gates", dtype=self.dtype_policy)
        self.edge_weights = SimilarityEdgeWeights(theta, similarity, name="edge_weights",
                                                  dtype=self.dtype_policy)
        self.theta = float(theta)
        # A numpy integer is kept as a Python int, for the JSON config (the sub-layers
        # check these values).
        self.max_order, self.units, self.dau_filters, self.vertex_filters, \
            self.vertex_kernel_size, self.max_vertices = (
                int(v) if is_integer(v) else v for v in (
                    max_order, units, dau_filters, vertex_filters, vertex_kernel_size,
                    max_vertices))
        self.alignment = alignment
        self.similarity = similarity
        self.unimodal_weights = unimodal_weights
        self.vertex_network = vertex_network
        if not any(keep_modalities is v or keep_modalities == v == "weighted"
                   for v in KEEP_MODALITIES):  # `is`: 1 and 0.0 are not True and False
            raise ValueError(f"`keep_modalities` must be one of {KEEP_MODALITIES}. "
                             f"Received: keep_modalities={keep_modalities!r}")
        self.keep_modalities = keep_modalities
        self.projection_activation = self.alignment_layer.activation
        if modality_names is not None:
            self._plan_levels(len(modality_names), warn=False)  # errors early; warn at build

    def _plan_levels(self, num_modalities, warn=True):
        order = self.max_order or default_max_order(num_modalities)
        if order > num_modalities:
            raise ValueError(
                f"`max_order` cannot exceed the number of modalities M={num_modalities}. "
                f"Received: max_order={order}"
            )
        counts = count_vertices(num_modalities, order)
        if sum(counts) > self.max_vertices:
            raise ValueError(
                f"HGFN with M={num_modalities} and max_order={order} has {sum(counts)} "
                f"vertices (per level: {counts}), more than max_vertices={self.max_vertices}. "
                "Lower `max_order`, or raise `max_vertices` if you mean it."
            )
        if warn and max(counts) > _WARN_VERTICES:
            warnings.warn(
                f"HGFN with M={num_modalities} and max_order={order} has {counts[-1]} "
                f"vertices in its deepest level (per level: {counts}); each step costs in "
                "proportion. Consider a lower `max_order`.",
                stacklevel=3,
            )
        return order

    def build_fusion(self, widths):
        m = len(widths)
        self.order = self._plan_levels(m)
        self.levels = build_levels(m, self.order)
        self.alignment_layer.build([(None, w) for w in widths])
        d = self.alignment_layer.output_width
        self.width = d
        self.dau.build((None, m, d))
        self.unimodal_fusion = LevelFusion(scale=1.0 / m, name="level_1_fusion",
                                           dtype=self.dtype_policy)
        self.level_fusion = LevelFusion(name="level_fusion", dtype=self.dtype_policy)
        self.vertex_networks = []
        for level in self.levels[1:]:
            if self.vertex_network == "conv":
                net = VertexNetwork(
                    d, filters=self.vertex_filters, kernel_size=self.vertex_kernel_size,
                    name=f"vertex_network_{level.order}", dtype=self.dtype_policy,
                )
            else:
                net = VertexMLP(d, name=f"vertex_mlp_{level.order}", dtype=self.dtype_policy)
            net.build((None, level.size, d), (None, level.size, d))
            self.vertex_networks.append(net)
        # Constants of the graph, not weights. A level gathers its vertices' two
        # constituents from the pool with one matmul by a 0/1 selection matrix
        # (rows: left of vertex 0, right of vertex 0, left of vertex 1, ...), and
        # w_x + w_y with one matmul by the sum of the two selections: on CPU a
        # small broadcast matmul and its backward cost half of `take` along axis 1
        # and its segment-sum backward, and a one-hot product is exact.
        self._pair_selection, self._weight_selection = [], []
        for level in self.levels[1:]:
            pool_size = level.offset
            select = np.zeros((2 * level.size, pool_size), "float32")
            select[2 * np.arange(level.size), level.left] = 1.0
            select[2 * np.arange(level.size) + 1, level.right] = 1.0
            self._pair_selection.append(select)
            self._weight_selection.append(select[0::2].T + select[1::2].T)  # (pool, V)
        self._members = [np.asarray(level.members, "int32") for level in self.levels[1:]]

    def call(self, inputs, modality_mask=None, return_weights=False):
        vectors, mask = self._check_call(inputs, modality_mask)
        aligned = self.alignment_layer(vectors)  # (batch, M, D)
        if mask is not None:
            aligned = aligned * ops.expand_dims(mask, -1)
        unimodal_weights = self.dau(aligned, modality_mask=mask)  # eq. 1
        level_vectors = [self.unimodal_fusion(unimodal_weights, aligned)]  # eq. 2
        all_weights, all_vertices = [unimodal_weights], [aligned]
        pool_vertices, pool_weights = aligned, unimodal_weights
        for index, network in enumerate(self.vertex_networks):
            num_vertices = self.levels[index + 1].size
            select = ops.convert_to_tensor(self._pair_selection[index], pool_vertices.dtype)
            pairs = ops.reshape(ops.matmul(select, pool_vertices),  # (batch, V, 2, D)
                                (-1, num_vertices, 2, self.width))
            vertices = network.join(pairs)  # eq. 3, all vertices of the level at once
            vertex_mask = None
            if mask is not None:
                members = ops.take(mask, self._members[index], axis=1)  # (batch, V, k)
                vertex_mask = ops.prod(members, axis=-1)
            weight_sums = ops.matmul(ops.cast(pool_weights, "float32"),  # w_x + w_y
                                     ops.convert_to_tensor(self._weight_selection[index]))
            weights = self.edge_weights.join_weights(pairs, weight_sums,  # eqs. 4-5
                                                     vertex_mask=vertex_mask)
            level_vectors.append(self.level_fusion(weights, vertices))  # eq. 6
            all_weights.append(weights)
            all_vertices.append(vertices)
            pool_vertices = ops.concatenate([pool_vertices, vertices], axis=1)
            pool_weights = ops.concatenate([pool_weights, weights], axis=1)
        if self.keep_modalities:  # the M aligned vectors beside the levels
            kept = aligned
            if self.keep_modalities == "weighted":
                scale = self.num_modalities * ops.expand_dims(unimodal_weights, -1)
                kept = aligned * ops.cast(scale, aligned.dtype)
            level_vectors.insert(0, ops.reshape(kept, (-1, self.num_modalities * self.width)))
        fused = ops.concatenate(level_vectors, axis=-1)  # eq. 7
        if return_weights:
            return fused, all_weights, all_vertices
        return fused

    def vertex_labels(self):
        """Per level, a name for each vertex that shows the two vertices it joins.

        Level 1 vertices are the modality names; a higher vertex is
        "(left, right)", e.g. "((text, image), audio)" at level 3.
        """
        if not self.built:
            raise ValueError("The layer is not built yet: call it on inputs first.")
        pool = self._names(self.num_modalities)
        labels = [list(pool)]
        for level in self.levels[1:]:
            level_labels = [f"({pool[a]}, {pool[b]})" for a, b in zip(level.left, level.right)]
            labels.append(level_labels)
            pool = pool + level_labels
        return labels

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "theta": self.theta,
                "max_order": self.max_order,
                "alignment": self.alignment,
                "units": self.units,
                "similarity": self.similarity,
                "dau_filters": self.dau_filters,
                "vertex_filters": self.vertex_filters,
                "vertex_kernel_size": self.vertex_kernel_size,
                "max_vertices": self.max_vertices,
                "unimodal_weights": self.unimodal_weights,
                "vertex_network": self.vertex_network,
                "keep_modalities": self.keep_modalities,
                "projection_activation": self.projection_activation,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="hgfn_keras")
class GraphFusionNetwork(HierarchicalGraphFusion):
    """GFN (Mai et al. 2020) as a preset of the HGFN code: the paper's baseline.

    The same graph of unimodal, bimodal and trimodal vertices, with GFN's parts
    where HGFN changed them: per-modality sigmoid(Linear) unimodal weights
    (`ModalityGates`) instead of the DAU, the dot product of the softmaxes as
    similarity, and a shared fully connected vertex network (`VertexMLP`).
    Every HGFN argument can still be given.

    >>> import numpy as np
    >>> gfn = GraphFusionNetwork()
    >>> tuple(gfn([np.ones((2, 3)), np.ones((2, 4)), np.ones((2, 2))]).shape)
    (2, 12)

    Reference: Mai et al., "Modality to Modality Translation: An Adversarial
    Representation Learning and Graph Fusion Network", AAAI 2020.
    """

    def __init__(self, unimodal_weights="sigmoid", vertex_network="mlp", similarity="dot",
                 **kwargs):
        super().__init__(unimodal_weights=unimodal_weights, vertex_network=vertex_network,
                         similarity=similarity, **kwargs)
