"""How the quality benchmark scores a row: the same code for its pairs and its peers.

Both take the probabilities a row predicts (the model's outputs, or a
scikit-learn peer's in the same format) and score them with
`hgfn_keras.evaluation.metrics.multitask_metrics`, at 0.5 and at the decision thresholds
chosen on the validation split; an undefined number keeps its warning.
"""

import warnings


def score(tasks, y, probabilities):
    """`multitask_metrics`, with its warnings (an undefined number) kept as reasons.

    Returns:
        Its dict plus `"warnings"`: the messages of the NaNs it returned.
    """
    from hgfn_keras.evaluation.metrics import multitask_metrics

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        metrics = multitask_metrics(tasks, y, probabilities)
    metrics["warnings"] = [str(w.message) for w in caught]
    return metrics


def decision_score(tasks, y_val, prob_val, y_eval, prob_eval):
    """The metrics on the scored rows at the thresholds chosen on the validation rows.

    Each binary task's threshold maximises its F1 on `(y_val, prob_val)`
    (`hgfn_keras.evaluation.decision_thresholds.choose_thresholds`); K-class tasks decide
    by argmax as before.

    Returns:
        `multitask_metrics(tasks, y_eval, prob_eval, thresholds)` plus
        `"thresholds"` and `"warnings"` (e.g. a task with no positive label in
        validation, which keeps 0.5).
    """
    from hgfn_keras.evaluation.decision_thresholds import choose_thresholds
    from hgfn_keras.evaluation.metrics import multitask_metrics

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        thresholds = choose_thresholds(tasks, y_val, prob_val)
        metrics = multitask_metrics(tasks, y_eval, prob_eval, thresholds=thresholds)
    metrics["thresholds"] = thresholds
    metrics["warnings"] = [str(w.message) for w in caught]
    return metrics


def score_splits(tasks, labels, predicted, splits):
    """`score` with its `"decision"` entry for each of `splits`, the thresholds
    chosen on the validation split.

    Args:
        labels, predicted: `{split: {task: labels}}` and `{split: {task:
            probabilities}}`, both holding `"validation"` and every one of `splits`.

    Returns:
        `{split: scored}`.
    """
    result = {}
    for split in splits:
        scored = score(tasks, labels[split], predicted[split])
        scored["decision"] = decision_score(tasks, labels["validation"],
                                            predicted["validation"], labels[split],
                                            predicted[split])
        result[split] = scored
    return result
