"""Multi-task training: the model with its custom train step, and task losses."""

from hgfn_keras.multitask.multi_task_model import MultiTaskModel
from hgfn_keras.multitask.task_loss import task_loss
