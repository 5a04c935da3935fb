"""hgfn-keras: hierarchical multimodal graph fusion with dynamic multi-task learning.

The public API is this list; import from `hgfn_keras`, not from the sub-modules.
"""

# Importing the library leaves the process as it was (no log level set, no import hook):
# the programs (`training/`, `tuning/`, `benchmarks/`) quiet TensorFlow themselves, before
# its first import (hgfn_quiet.py).
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
from hgfn_keras.evaluation.validation_metrics import ValidationMetrics
from hgfn_keras.recipe.tensorboard_logging import MultiTaskTensorBoard
from hgfn_keras.serving.export import export_saved_model, has_modality_weights
from hgfn_keras.evaluation.metrics import format_results_table, multitask_metrics, task_metrics
from hgfn_keras.evaluation.decision_thresholds import best_f1_threshold, choose_thresholds
from hgfn_keras.evaluation.inspection import fusion_weights
from hgfn_keras.model import build_model
from hgfn_keras.multitask import (
    HEADS,
    MTL_CHOICES,
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
from hgfn_keras.recipe.train_config import TrainConfig
from hgfn_keras.recipe import FitResult, build_and_compile, fit

__version__ = "0.1.0"

#: The public API: these names, and the rooms (sub-packages) for what they do not cover.
__all__ = [
    # fusion
    "FUSIONS", "ConcatFusion", "DynamicAttentionUnit", "Fusion", "GraphFusionNetwork",
    "HierarchicalGraphFusion", "LevelFusion", "ModalityAlignment", "ModalityDropout",
    "ModalityGates", "SimilarityEdgeWeights", "TensorFusion", "VertexMLP", "VertexNetwork",
    "count_vertices", "get_fusion",
    # encoders
    "AudioEncoder", "HubEncoder", "ImageEncoder", "TemporalEncoder", "TextEncoder",
    "build_vocabulary", "tokenize",
    # data
    "CRISISMMD_TASKS", "read_crisismmd", "write_crisismmd_manifest", "sample_frames",
    "MultimodalDataset", "load_clothing", "load_dataset", "load_npz",
    # the model and multi-task training
    "Modality", "Task", "build_model", "HEADS", "MTL_CHOICES", "MTL_STRATEGIES",
    "TASK_WEIGHTINGS",
    "ConceptProbabilities", "DynamicTaskBalancing", "DynamicWeightAverage", "GradNorm",
    "MinNormWeighting", "UncertaintyWeighting", "min_norm_weights", "MultiTaskLoss",
    "MultiTaskModel", "TaskRebalancing", "TaskWeighting", "get_task_weighting",
    "task_counts", "task_loss",
    # evaluation
    "ValidationMetrics", "format_results_table", "multitask_metrics", "task_metrics",
    "best_f1_threshold", "choose_thresholds", "fusion_weights",
    # the recipe and serving
    "TrainConfig", "FitResult", "build_and_compile", "fit", "MultiTaskTensorBoard",
    "export_saved_model", "has_modality_weights",
    # the rooms
    "data", "encoders", "evaluation", "fusion", "multitask", "recipe", "serving", "utils",
]


def _keep_moved_paths():
    """The import paths of the modules that moved into rooms in 0.2 (issue 29) keep
    working for one release: `hgfn_keras.metrics` *is* `hgfn_keras.evaluation.metrics`
    (the same module object, so a patch through either name reaches both), and
    `hgfn_keras.callbacks` holds the two callbacks that lived there. Removed in 0.3."""
    import importlib
    import sys
    import types

    moved = {
        "arguments": "utils.arguments", "registry": "utils.registry",
        "io_utils": "utils.io_utils", "distribute": "utils.distribute",
        "metrics": "evaluation.metrics", "decision_thresholds": "evaluation.decision_thresholds",
        "report": "evaluation.report", "inspection": "evaluation.inspection",
        "export": "serving.export", "train_config": "recipe.train_config",
        "resume_state": "recipe.resume_state", "backup_fingerprint": "recipe.backup_fingerprint",
        "tensorboard_logging": "recipe.tensorboard_logging",
        "class_weights": "multitask.class_weights",
    }
    package = sys.modules[__name__]
    for old, new in moved.items():
        module = importlib.import_module(f"{__name__}.{new}")
        sys.modules[f"{__name__}.{old}"] = module
        setattr(package, old, module)
    callbacks = types.ModuleType(f"{__name__}.callbacks",
                                 "Moved: `hgfn_keras.evaluation.validation_metrics` and "
                                 "`hgfn_keras.recipe.backup` (until 0.3). @private")
    from hgfn_keras.recipe.backup import AtomicBackupAndRestore

    callbacks.ValidationMetrics = ValidationMetrics
    callbacks.AtomicBackupAndRestore = AtomicBackupAndRestore
    sys.modules[callbacks.__name__] = callbacks
    package.callbacks = callbacks


_keep_moved_paths()
