"""The multi-task strategies by name: the registry that the model, the CLI and the tuner read."""

from hgfn_keras.multitask.dynamic_task_balancing import DynamicTaskBalancing
from hgfn_keras.multitask.dynamic_weight_average import DynamicWeightAverage
from hgfn_keras.multitask.famo import FastAdaptiveMultitaskOptimization
from hgfn_keras.multitask.grad_norm import GradNorm
from hgfn_keras.multitask.min_norm_weighting import MinNormWeighting
from hgfn_keras.multitask.task_weighting import TaskWeighting
from hgfn_keras.multitask.uncertainty_weighting import UncertaintyWeighting
from hgfn_keras.registry import resolve

TASK_WEIGHTINGS = {
    "lsew": TaskWeighting,
    "dmtl": DynamicTaskBalancing,
    "moo": MinNormWeighting,
    "gradnorm": GradNorm,
    "uncertainty": UncertaintyWeighting,
    "dwa": DynamicWeightAverage,
    "famo": FastAdaptiveMultitaskOptimization,
}

#: Head architectures of `build_model(heads=...)`.
HEADS = ("dense", "mtinet")

#: The rows of the paper's tables and the CLI's `--mtl` choices: every weighting,
#: and MTI-Net (its heads, trained with equal weights).
MTL_STRATEGIES = (*TASK_WEIGHTINGS, "mtinet")


def get_task_weighting(task_weighting, **kwargs):
    """A `TaskWeighting` from its name (a key of `TASK_WEIGHTINGS`) or the layer itself.

    >>> get_task_weighting("dmtl", alpha=0.5).alpha
    0.5
    """
    return resolve(task_weighting, TASK_WEIGHTINGS, TaskWeighting, "multi-task strategy", kwargs)
