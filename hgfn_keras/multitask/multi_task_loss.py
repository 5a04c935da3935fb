"""`MultiTaskLoss`: every weighted loss of a multi-task model, from labels and outputs."""

from keras import ops

from hgfn_keras.multitask.task_loss import chance_loss, task_loss_terms
from hgfn_keras.utils.arguments import number


class MultiTaskLoss:
    """The per-task focal losses of a `MultiTaskModel` (eq. 10), before weighting.

    Owns what turns a batch's labels and network outputs into one loss per
    weighted loss (`loss_names`, the order of the task weights): each task's
    focal loss over its rows with a label (-1 left out), a one-vs-rest task's
    concepts each on their own sigmoid, an auxiliary output's loss added to its
    task's, and per-row sample weights. The model weighs them (its
    `task_weighting`); as in tensorflow/recommenders' `tasks.Ranking`, the loss
    is an object of its own that the model calls from its steps.

    Args:
        tasks: the `Task` list.
        beta: the focal loss' β ≥ 0 (0: cross-entropy), for every task.
        auxiliary_outputs: `{network output name: task name}`: extra outputs
            (MTI-Net's intermediate predictions) whose loss on the task's labels
            adds to the task's loss.
        member_outputs: `{output name: network output name}`: an ensemble's
            members `[batch, k, units]` (`hgfn_keras.multitask.ensemble`). Where
            the outputs hold them (training), the output's loss is the mean of
            the k members' losses; where they do not (evaluation), the loss of
            the output itself, the members' mean.

    >>> import numpy as np
    >>> from hgfn_keras.specs import Task
    >>> loss = MultiTaskLoss([Task("a", 2), Task("b", 3, one_vs_rest=True)])
    >>> loss.loss_names
    ['a', 'b.0', 'b.1', 'b.2']
    >>> y = {"a": np.array([1, -1]), "b": np.array([0, 2])}
    >>> half = np.full((2, 1), 0.5, "float32")
    >>> outputs = {"a": half, "b.0": half, "b.1": half, "b.2": half}
    >>> [round(float(v), 4) for v in loss(y, outputs)]  # −log 0.5 each; row 2 of "a" missing
    [0.6931, 0.6931, 0.6931, 0.6931]
    """

    def __init__(self, tasks, beta=0.0, auxiliary_outputs=None, member_outputs=None):
        self.tasks = list(tasks)
        self.beta = number("beta", beta, minimum=0)
        self.auxiliary_outputs = dict(auxiliary_outputs or {})
        self.member_outputs = dict(member_outputs or {})
        names = [t.name for t in self.tasks]
        unknown = sorted(set(self.member_outputs) - set(self.loss_names))
        if unknown:
            raise ValueError(f"`member_outputs` names unknown outputs {unknown}. Outputs "
                             f"with a loss (one-vs-rest tasks by concept): {self.loss_names}")
        unknown = {k: v for k, v in self.auxiliary_outputs.items() if v not in names}
        if unknown:
            raise ValueError(f"`auxiliary_outputs` names unknown tasks: {unknown}. "
                             f"Tasks: {names}")
        one_vs_rest = {k: v for k, v in self.auxiliary_outputs.items()
                       if self.tasks[names.index(v)].one_vs_rest}
        if one_vs_rest:
            raise ValueError(f"`auxiliary_outputs` of one-vs-rest tasks are not supported "
                             f"(a K-class auxiliary loss beside K concept losses). "
                             f"Received: {one_vs_rest}")

    @property
    def loss_names(self):
        """The weighted losses: each task's name, a one-vs-rest task's replaced by its
        concepts `<task>.<k>`."""
        return [name for t in self.tasks for name in t.concepts]

    def check_outputs(self, network):
        """Raises unless `network` outputs every one-vs-rest task's concepts."""
        outputs = network.output if isinstance(network.output, dict) else {}
        for t in self.tasks:
            missing = [c for c in t.concepts if t.one_vs_rest and c not in outputs]
            if missing:
                raise ValueError(
                    f"Task {t.name!r} is one-vs-rest: the network must output each "
                    f"concept's sigmoid [batch, 1] under its name {t.concepts} "
                    f"(`build_model` does). Missing: {missing}; outputs: {sorted(outputs)}")

    def chance_losses(self):
        """Each weighted loss' value for a uniform prediction (a concept is binary)."""
        return [chance_loss(2 if t.one_vs_rest else t.num_classes, self.beta)
                for t in self.tasks for _ in t.concepts]

    def terms(self, y, y_pred, sample_weight=None):
        """Per weighted loss, the sum of the per-row losses over the rows with a label
        and their count (weights summed with `sample_weight`): two `[T]` tensors.

        A loss on a batch is sum / count (`__call__`); an evaluation adds both over
        its batches and divides once, so that its value does not depend on the batch
        size when labels are missing.

        Args:
            y: `{task name: int labels [batch]}`, -1 = missing.
            y_pred: the network's outputs `{output name: probabilities}`.
            sample_weight: per-row weights `[batch]` for every task, a dict
                `{task name: [batch]}`, or None (the rows weigh the same).
        """
        auxiliary = {}
        for output, task_name in self.auxiliary_outputs.items():
            auxiliary.setdefault(task_name, []).append(output)
        sums, counts = [], []
        for t in self.tasks:
            weights = (sample_weight.get(t.name) if isinstance(sample_weight, dict)
                       else sample_weight)
            if t.one_vs_rest:  # one binary loss per concept, on its own sigmoid
                for k, concept in enumerate(t.concepts):
                    total, count = self._terms(t, y[t.name], y_pred, concept, weights, k)
                    sums.append(total)
                    counts.append(count)
                continue
            total, count = self._terms(t, y[t.name], y_pred, t.name, weights)
            for output in auxiliary.get(t.name, ()):  # same labels, same count
                total = total + task_loss_terms(t, y[t.name], y_pred[output], self.beta,
                                                weights)[0]
            sums.append(total)
            counts.append(count)
        return ops.stack(sums), ops.stack(counts)

    def _terms(self, task, labels, y_pred, output, weights, concept=None):
        """`task_loss_terms` of one output; on an ensemble's members (when `y_pred`
        holds them) over every (row, member) pair: the count is k times the rows',
        so that sum / count is the mean of the members' mean losses."""
        members = y_pred.get(self.member_outputs.get(output, ""))
        if members is None:
            return task_loss_terms(task, labels, y_pred[output], self.beta, weights,
                                   concept=concept)
        k = members.shape[1]
        predictions = ops.reshape(members, (-1, members.shape[-1]))  # row-major: b, then k
        labels = ops.repeat(ops.reshape(labels, (-1,)), k, axis=0)
        if weights is not None:
            weights = ops.repeat(ops.reshape(weights, (-1,)), k, axis=0)
        return task_loss_terms(task, labels, predictions, self.beta, weights, concept=concept)

    def __call__(self, y, y_pred, sample_weight=None):
        """The weighted losses on a batch, `[T]` (0 for one without a labelled row)."""
        sums, counts = self.terms(y, y_pred, sample_weight)
        return sums / ops.where(counts > 0, counts, 1.0)
