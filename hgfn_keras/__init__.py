"""hgfn-keras: hierarchical multimodal graph fusion with dynamic multi-task learning.

The public API is this list; import from `hgfn_keras`, not from the sub-modules.
"""

from hgfn_keras import _quiet

# Before TensorFlow's first import: its log level, and its start-up lines filtered
# (HGFN_VERBOSE=1 keeps them; see hgfn_keras/_quiet.py for where each comes from).
_quiet.configure()

from hgfn_keras.fusion import (  # noqa: E402
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
from hgfn_keras.encoders import (  # noqa: E402
    AudioEncoder,
    HubEncoder,
    ImageEncoder,
    TemporalEncoder,
    TextEncoder,
    build_vocabulary,
    tokenize,
)
from hgfn_keras.data.crisismmd import CRISISMMD_TASKS, read_crisismmd, write_crisismmd_manifest  # noqa: E402,E501
from hgfn_keras.data.media import sample_frames  # noqa: E402
from hgfn_keras.data import MultimodalDataset, load_clothing, load_dataset, load_npz  # noqa: E402
from hgfn_keras.callbacks import ValidationMetrics  # noqa: E402
from hgfn_keras.tensorboard_logging import MultiTaskTensorBoard  # noqa: E402
from hgfn_keras.export import export_saved_model, has_modality_weights  # noqa: E402
from hgfn_keras.metrics import format_results_table, multitask_metrics, task_metrics  # noqa: E402
from hgfn_keras.decision_thresholds import best_f1_threshold, choose_thresholds  # noqa: E402
from hgfn_keras.model import build_model  # noqa: E402
from hgfn_keras.multitask import (  # noqa: E402
    HEADS,
    MTL_STRATEGIES,
    TASK_WEIGHTINGS,
    ConceptProbabilities,
    DynamicTaskBalancing,
    DynamicWeightAverage,
    GradNorm,
    MinNormWeighting,
    UncertaintyWeighting,
    min_norm_weights,
    MultiTaskModel,
    TaskRebalancing,
    TaskWeighting,
    get_task_weighting,
    task_counts,
    task_loss,
)
from hgfn_keras.specs import Modality, Task  # noqa: E402
from hgfn_keras.train_config import TrainConfig  # noqa: E402
from hgfn_keras.recipe import FitResult, build_and_compile, fit  # noqa: E402

__version__ = "0.1.0"
