"""`tf.distribute` support: strategies by name, cross-replica reductions, one Keras workaround.

`MultiTaskModel.train_step` runs once per replica. Three things make it
correct under `MirroredStrategy` and `MultiWorkerMirroredStrategy`:

- the objective is divided by the number of replicas (`scale_for_replicas`),
  because the Keras optimizer sums the replicas' gradients (as Keras' own
  `compute_loss` does);
- the task-weight update reads values reduced across replicas (`replica_sum`,
  `replica_mean`): the task losses, and the gradients the norms G_f are taken
  on, so every replica computes the same update;
- the weighting's variables are created with `aggregation="only_first_replica"`
  (`STATE_AGGREGATION`), so that they may be assigned in replica context and
  every replica holds the first replica's (identical) value.

Keras workaround (keras-team/keras#20585, open upstream with keras 3.15.1):
`model.fit` under `MultiWorkerMirroredStrategy` fails twice inside Keras' TF
trainer: its symbolic build reduces the whole `(x, y)` batch at once ("Attempt
to convert a value (PerReplica...)"), and its multi-worker "mean" reduction of
the step's logs reduces along axis 0, which fails for scalar logs.
`symbolic_build` (called from `MultiTaskModel._maybe_symbolic_build`) builds
from the first replica's part of each leaf of the batch (only shapes and dtypes
are needed), and `logs_for_reduction` gives the logs shape `[1]` under a
multi-worker strategy. The same symbolic build fails under `MirroredStrategy`
with 2+ replicas for a text model (Keras sums the batch's strings across
replicas), so `symbolic_build` serves it too. Covered by the two-worker tests and
the mirrored text test in `tests/test_distributed.py`; when a Keras upgrade fixes
the bug, remove them.

>>> import tensorflow as tf
>>> float(scale_for_replicas(tf.constant(3.0)))  # one replica: unchanged
3.0
"""

import os

import tensorflow as tf

STRATEGIES = ("mirrored", "multi-worker")
#: `add_weight(aggregation=...)` for the task weighting's state.
STATE_AGGREGATION = "only_first_replica"
ISSUE = "https://github.com/keras-team/keras/issues/20585"


def get_strategy(name=None):
    """A `tf.distribute.Strategy` by name: None (the default strategy),
    `"mirrored"` (every local GPU, or the CPU) or `"multi-worker"` (reads
    `TF_CONFIG`; create it before any other TensorFlow op runs).

    >>> get_strategy(None).num_replicas_in_sync
    1
    """
    if name is None or name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi-worker":
        if not os.environ.get("TF_CONFIG"):
            raise ValueError(
                "--strategy multi-worker needs TF_CONFIG, e.g. "
                '{"cluster": {"worker": ["host1:port", "host2:port"]}, '
                '"task": {"type": "worker", "index": 0}}, set on every worker.'
            )
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"`strategy` must be None or one of {STRATEGIES}. Received: {name!r}")


def num_replicas():
    """The number of replicas in sync of the current strategy (1 outside any)."""
    return tf.distribute.get_strategy().num_replicas_in_sync


def scale_for_replicas(value):
    """`value / num_replicas`: a per-replica loss whose summed gradient is the mean."""
    replicas = num_replicas()
    if replicas == 1:
        return value
    return value * tf.cast(1.0 / replicas, value.dtype)


def _all_reduce(reduce_op, value):
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return value
    return context.all_reduce(reduce_op, value)


def replica_sum(value):
    """The sum of `value` over the replicas (in replica context; else `value`)."""
    return _all_reduce(tf.distribute.ReduceOp.SUM, value)


def replica_mean(value):
    """The mean of `value` over the replicas (in replica context; else `value`)."""
    return _all_reduce(tf.distribute.ReduceOp.MEAN, value)


def _in_multi_worker_mode(strategy):
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and (
        strategy.extended._in_multi_worker_mode())


def logs_for_reduction(logs):
    """The step's logs, shaped `[1]` under a multi-worker strategy (keras#20585)."""
    if not _in_multi_worker_mode(tf.distribute.get_strategy()):
        return logs
    return {key: tf.reshape(value, [1]) for key, value in logs.items()}


def _several_replicas(strategy):
    """Whether `strategy` runs more than one replica (mirrored on 2+ devices) or is in
    multi-worker mode: where Keras' symbolic build reduces the batch (keras#20585)."""
    return _in_multi_worker_mode(strategy) or strategy.num_replicas_in_sync > 1


def symbolic_build(model, iterator=None, data_batch=None):
    """Keras' `_maybe_symbolic_build`, leaf by leaf (keras#20585).

    Keras reduces the whole batch across replicas to get one for the build: under
    multi-worker training that fails on the `(x, y)` tuple, and under
    `MirroredStrategy` with 2+ replicas it sums every leaf, strings included
    ("Value for attr 'T' of string ... AddN": a text model). Both take this route.

    Returns False when Keras' own code should run (one replica).
    """
    strategy = getattr(model, "_distribute_strategy", None)
    if strategy is None or not _several_replicas(strategy):
        return False
    if iterator is not None:
        for _, _, it in iterator:
            data_batch = next(it)
            break

    def first_replica(value):
        if isinstance(value, tf.distribute.DistributedValues):
            return strategy.experimental_local_results(value)[0]
        return value

    data_batch = tf.nest.map_structure(first_replica, data_batch)
    with strategy.scope():
        model._symbolic_build(data_batch=data_batch)
    return True
