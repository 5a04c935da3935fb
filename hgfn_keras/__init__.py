"""hgfn-keras: hierarchical multimodal graph fusion with dynamic multi-task learning.

The public API is this list; import from `hgfn_keras`, not from the sub-modules.
"""

# Importing the library leaves the process as it was (no log level set, no import hook):
# the programs (`training/`, `tuning/`, `benchmarks/`) quiet TensorFlow themselves, before
# its first import (hgfn_keras/_quiet.py).
from hgfn_keras.fusion import (
    FUSIONS,
    ConcatFusion,
    DynamicAttentionUnit,
    Fusion,
    GraphFusionNetwork,
    HierarchicalGraphFusion,
    LevelFusion,
    ModalityAlignment,
    ModalityDropout,
    ModalityGates,
    SimilarityEdgeWeights,
    TensorFusion,
    VertexMLP,
    VertexNetwork,
    count_vertices,
    get_fusion,
)
from hgfn_keras.encoders import (
    AudioEncoder,
    HubEncoder,
    ImageEncoder,
    TemporalEncoder,
    TextEncoder,
    build_vocabulary,
    tokenize,
)
from hgfn_keras.data.crisismmd import CRISISMMD_TASKS, read_crisismmd, write_crisismmd_manifest  # noqa: E501
from hgfn_keras.data.media import sample_frames
from hgfn_keras.data import MultimodalDataset, load_clothing, load_dataset, load_npz
from hgfn_keras.callbacks import ValidationMetrics
from hgfn_keras.tensorboard_logging import MultiTaskTensorBoard
from hgfn_keras.export import export_saved_model, has_modality_weights
from hgfn_keras.metrics import format_results_table, multitask_metrics, task_metrics
from hgfn_keras.decision_thresholds import best_f1_threshold, choose_thresholds
from hgfn_keras.model import build_model
from hgfn_keras.multitask import (
    HEADS,
    MTL_STRATEGIES,
    TASK_WEIGHTINGS,
    ConceptProbabilities,
    DynamicTaskBalancing,
    DynamicWeightAverage,
    FastAdaptiveMultitaskOptimization,
    GradNorm,
    MinNormWeighting,
    UncertaintyWeighting,
    min_norm_weights,
    MultiTaskLoss,
    MultiTaskModel,
    TaskRebalancing,
    TaskWeighting,
    get_task_weighting,
    task_counts,
    task_loss,
)
from hgfn_keras.specs import Modality, Task
from hgfn_keras.train_config import TrainConfig
from hgfn_keras.recipe import FitResult, build_and_compile, fit

__version__ = "0.1.0"
