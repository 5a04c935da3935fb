"""The task weightings by name: the registry that the model, the CLI and the tuner read."""

from hgfn_keras.multitask.dynamic_task_balancing import DynamicTaskBalancing
from hgfn_keras.multitask.dynamic_weight_average import DynamicWeightAverage
from hgfn_keras.multitask.famo import FastAdaptiveMultitaskOptimization
from hgfn_keras.multitask.grad_norm import GradNorm
from hgfn_keras.multitask.min_norm_weighting import MinNormWeighting
from hgfn_keras.multitask.task_weighting import TaskWeighting
from hgfn_keras.multitask.uncertainty_weighting import UncertaintyWeighting
from hgfn_keras.utils.registry import resolve

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

#: The CLI's `--mtl` choices (and the rows of the paper's tables): every task weighting,
#: and "mtinet", which is not a weighting but MTI-Net's heads trained with equal weights
#: (`heads="mtinet", mtl="lsew"`): kept as a shortcut with a deprecation warning until 0.3.
MTL_CHOICES = (*TASK_WEIGHTINGS, "mtinet")
#: The name `MTL_CHOICES` had until 0.1 (the "strategy" word now means `tf.distribute`
#: only); removed in 0.3.
MTL_STRATEGIES = MTL_CHOICES
#: Said when "mtinet" is given as the task weighting.
MTINET_MOVED = ("mtl='mtinet' (--mtl mtinet) names MTI-Net's heads, not a task weighting: "
                "use heads='mtinet' (--heads mtinet) with mtl='lsew' (the paper's MTI-NET "
                "row); the old spelling is kept until 0.3.")


def get_task_weighting(task_weighting, **kwargs):
    """A `TaskWeighting` from its name (a key of `TASK_WEIGHTINGS`) or the layer itself.

    >>> get_task_weighting("dmtl", alpha=0.5).alpha
    0.5
    """
    return resolve(task_weighting, TASK_WEIGHTINGS, TaskWeighting, "task weighting", kwargs)
