"""Multi-task training: the model with its train step, task losses, one file per task weighting."""

from hgfn_keras.multitask.concept_probabilities import ConceptProbabilities
from hgfn_keras.multitask.dynamic_task_balancing import DynamicTaskBalancing
from hgfn_keras.multitask.dynamic_weight_average import DynamicWeightAverage
from hgfn_keras.multitask.famo import FastAdaptiveMultitaskOptimization
from hgfn_keras.multitask.grad_norm import GradNorm
from hgfn_keras.multitask.min_norm_weighting import MinNormWeighting, min_norm_weights
from hgfn_keras.multitask.mti_net import mtinet_heads
from hgfn_keras.multitask.multi_task_loss import MultiTaskLoss
from hgfn_keras.multitask.multi_task_model import MultiTaskModel
from hgfn_keras.multitask.task_weightings import (
    HEADS,
    MTL_CHOICES,
    MTL_STRATEGIES,
    TASK_WEIGHTINGS,
    get_task_weighting,
)
from hgfn_keras.multitask.task_loss import task_loss
from hgfn_keras.multitask.task_rebalancing import TaskRebalancing
from hgfn_keras.multitask.task_weighting import TaskWeighting, task_counts
from hgfn_keras.multitask.uncertainty_weighting import UncertaintyWeighting
