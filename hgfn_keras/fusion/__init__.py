"""Fusion layers: HGFN and the baselines, all behind one interface (`Fusion`)."""

from hgfn_keras.utils.registry import resolve

from hgfn_keras.fusion.alignment import ModalityAlignment
from hgfn_keras.fusion.base import Fusion
from hgfn_keras.fusion.concat_fusion import ConcatFusion
from hgfn_keras.fusion.dynamic_attention_unit import DynamicAttentionUnit
from hgfn_keras.fusion.graph import build_levels, count_vertices
from hgfn_keras.fusion.hierarchical_graph_fusion import (
    GraphFusionNetwork,
    HierarchicalGraphFusion,
)
from hgfn_keras.fusion.level_fusion import LevelFusion
from hgfn_keras.fusion.masked_softmax import masked_softmax
from hgfn_keras.fusion.missing_placeholder import MissingPlaceholder
from hgfn_keras.fusion.modality_dropout import ModalityDropout
from hgfn_keras.fusion.similarity_edge_weights import SimilarityEdgeWeights
from hgfn_keras.fusion.modality_gates import ModalityGates
from hgfn_keras.fusion.tensor_fusion import TensorFusion
from hgfn_keras.fusion.vertex_network import VertexMLP, VertexNetwork

FUSIONS = {
    "hgfn": HierarchicalGraphFusion,
    "cfc": ConcatFusion,
    "tensor": TensorFusion,
    "gfn": GraphFusionNetwork,
}


def get_fusion(fusion, **kwargs):
    """Returns a fusion layer from its name, or the layer itself.

    Args:
        fusion: a name in `FUSIONS` (`"hgfn"`, `"cfc"`, `"tensor"`, `"gfn"`) or a
            `Fusion` instance.
        **kwargs: constructor arguments for a fusion given by name.

    >>> get_fusion("hgfn", theta=0.3).theta
    0.3
    """
    return resolve(fusion, FUSIONS, Fusion, "fusion", kwargs)
