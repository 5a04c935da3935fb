"""Multi-task training: the model with its custom train step, task losses, task weightings."""

from hgfn_keras.multitask.dynamic_task_balancing import DynamicTaskBalancing, GradNorm
from hgfn_keras.multitask.min_norm_weighting import (
    DynamicWeightAverage,
    MinNormWeighting,
    UncertaintyWeighting,
    min_norm_weights,
)
from hgfn_keras.multitask.mti_net import mtinet_heads
from hgfn_keras.multitask.multi_task_model import (
    TASK_WEIGHTINGS,
    MultiTaskModel,
    get_task_weighting,
)
from hgfn_keras.multitask.task_loss import task_loss
from hgfn_keras.multitask.task_rebalancing import TaskRebalancing
from hgfn_keras.multitask.task_weighting import TaskWeighting, task_counts

MTL_STRATEGIES = (*TASK_WEIGHTINGS, "mtinet")
