"""What one pass over a training split gives, for any dataset."""

import dataclasses

import numpy as np


@dataclasses.dataclass
class SplitStatistics:
    """What one pass over the training split gives.

    A `MultimodalDataset` computes it from its arrays, a `StreamedDataset` in one
    streamed pass over its shards; the recipe builds the model from it either way.

    Attributes:
        num_rows: N, the training rows.
        modalities: per vector or sequence modality, `{"mean": [width],
            "variance": [width], "count": n}` over the training rows where it is
            present (every step of a sequence counts), as
            `FeatureNormalization.set_statistics(mean, variance, count)` takes them.
        class_counts: per task, the count of each class `[K]` (missing labels,
            -1, not counted).
        missing_labels: per task, the number of -1 labels.
        token_counts: per text modality, a `TokenCounts` of its training texts'
            tokens (tokenised as `TextEncoder` tokenises).
    """

    num_rows: int
    modalities: dict
    class_counts: dict
    missing_labels: dict
    token_counts: dict = dataclasses.field(default_factory=dict)

    def sorted_labels(self):
        """Per task, labels with the split's class counts, sorted: `{task: int32 [N]}`.

        A stand-in for the training labels wherever only their counts matter:
        `model.set_task_counts(stats.sorted_labels())` gives DMTL the same N and n_f
        (and the same warnings about absent classes) as the real labels, without
        a second pass. Four bytes per row and task.
        """
        labels = {}
        for name, counts in self.class_counts.items():
            parts = [np.full(self.missing_labels[name], -1, np.int32),
                     np.repeat(np.arange(len(counts), dtype=np.int32), counts)]
            labels[name] = np.concatenate(parts)
        return labels


def merge_moments(state, values):
    """Merges a batch into `[count, mean, M2]` (Chan, Golub & LeVeque's pairwise update)."""
    count, mean, m2 = state
    n = len(values)
    batch_mean = values.mean(axis=0)
    batch_m2 = ((values - batch_mean) ** 2).sum(axis=0)
    total = count + n
    delta = batch_mean - mean
    state[1] = mean + delta * (n / total)
    state[2] = m2 + batch_m2 + delta ** 2 * (count * n / total)
    state[0] = total
