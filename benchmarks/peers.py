"""The quality benchmark's scikit-learn peers, fit and scored on the package's splits.

Peers (`--peers`, scikit-learn, a test/benchmark extra; seeded with the run's seed):

- `lr`: logistic regression (max_iter 2000), one per task;
- `rf`: random forest of 500 trees (n_jobs 2);
- `mlp`: MLP (256,) with early stopping;
- `knn`: k nearest neighbours, k = 10;
- `gb`: `HistGradientBoostingClassifier`, 200 iterations, one per task;
- `tfidf` (only for data with text modalities, such as the embedded `clothing`):
  TF-IDF of the concatenated texts (word 1-2-grams, sublinear tf, min_df 2) beside
  the standardised numeric features, logistic regression per task.

The numeric peers see the vector modalities concatenated and the sequence
modalities averaged over steps (text modalities are left out), standardised with
the mean and standard deviation of the training rows where the modality is
present; an absent modality is 0 after that (the training mean). `rf`, `mlp` and
`knn` are fit as one multi-label model when every task is binary and no training
label is missing (as `../shared/data/multilabel/peers.py` does, whose numbers they
then reproduce); otherwise, and always for `lr`, `gb` and `tfidf`, there is one
classifier per task, fit on the rows where that task's label is not missing (-1).
A peer's output is the positive-class probability [N] for a binary task and the
class probabilities [N, K] for a K-class task, the format the model's outputs have
for `multitask_metrics`.
"""

import warnings

import numpy as np

from benchmarks.scoring import score_splits

PEER_NAMES = ("lr", "rf", "mlp", "knn", "gb", "tfidf")
DEFAULT_PEERS = ",".join(PEER_NAMES)
PEER_TITLES = {
    "lr": "logistic regression",
    "rf": "random forest (500)",
    "mlp": "MLP (256)",
    "knn": "kNN-10",
    "gb": "gradient boosting (200)",
    "tfidf": "TF-IDF + logistic regression",
}
#: Peers that scikit-learn fits as one multi-label model (when all tasks are binary).
JOINT_PEERS = ("rf", "mlp", "knn")


def numeric_features(dataset, splits=("train", "validation", "test")):
    """The numeric peers' input per split: standardised vector and mean-of-steps features.

    Vector modalities as they are, sequence modalities averaged over their steps,
    concatenated in the dataset's modality order; text modalities left out. Each
    column is standardised with the mean and standard deviation of the training
    rows where its modality is present (a constant column keeps scale 1); an
    absent modality is 0 (the training mean).

    This is not `hgfn_keras.feature_normalization.FeatureNormalization`, the
    model's masked standardisation: that is a Keras layer in float32 that takes
    a sequence's statistics over all its steps and scales only variances above
    1e-12, where scikit-learn's peers standardise the mean of the steps in
    float64 (as `StandardScaler` would); sharing it would change the peers'
    numbers.

    Returns:
        `{split: float64 array [N, D]}`, with D = 0 when no modality is numeric.
    """
    from hgfn_keras.data import MASK_KEY

    blocks = {s: [] for s in splits}
    train_x, _ = dataset.splits["train"]
    for index, modality in enumerate(dataset.modalities):
        if modality.kind == "text":
            continue

        def columns(x):
            values = np.asarray(x[modality.name], dtype=np.float64)
            return values.mean(axis=1) if values.ndim == 3 else values

        train_present = np.asarray(train_x[MASK_KEY])[:, index] > 0
        fitted = columns(train_x)[train_present]
        mean = fitted.mean(axis=0) if len(fitted) else np.zeros(fitted.shape[1])
        std = fitted.std(axis=0) if len(fitted) else np.ones(fitted.shape[1])
        std = np.where(std > 0, std, 1.0)
        for s in splits:
            x, _ = dataset.splits[s]
            present = np.asarray(x[MASK_KEY])[:, index] > 0
            blocks[s].append(np.where(present[:, None], (columns(x) - mean) / std, 0.0))
    return {s: (np.concatenate(blocks[s], axis=1) if blocks[s]
                else np.zeros((dataset.size(s), 0))) for s in splits}


def joined_texts(dataset, split):
    """The text modalities of `split` joined by a space per row (absent ones left out)."""
    from hgfn_keras.data import MASK_KEY

    x, _ = dataset.splits[split]
    mask = np.asarray(x[MASK_KEY])
    parts = [(i, m.name) for i, m in enumerate(dataset.modalities) if m.kind == "text"]
    return [" ".join(str(x[name][row]) for i, name in parts if mask[row, i] > 0)
            for row in range(mask.shape[0])]


def has_text(dataset):
    return any(m.kind == "text" for m in dataset.modalities)


def make_peer(name, seed):
    """A fresh scikit-learn estimator of peer `name`, seeded with `seed`."""
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.neural_network import MLPClassifier

    if name in ("lr", "tfidf"):
        return LogisticRegression(max_iter=2000)
    if name == "rf":
        return RandomForestClassifier(500, n_jobs=2, random_state=seed)
    if name == "mlp":
        return MLPClassifier((256,), max_iter=500, early_stopping=True, random_state=seed)
    if name == "knn":
        return KNeighborsClassifier(10)
    if name == "gb":
        return HistGradientBoostingClassifier(max_iter=200, random_state=seed)
    raise ValueError(f"Unknown peer {name!r}. Choose from {PEER_NAMES}.")


def class_probabilities(classes, proba, num_classes):
    """A classifier's `predict_proba` in `multitask_metrics`' format for a task.

    Args:
        classes: the classifier's `classes_` (the labels it saw, a subset of 0..K-1).
        proba: its `predict_proba` output [N, len(classes)].
        num_classes: K of the task.

    Returns:
        Binary (K = 2): the probability of class 1, [N] (0 if it never saw a 1);
        K > 2: [N, K], with 0 for the classes it never saw.
    """
    proba = np.asarray(proba, dtype=np.float64)
    full = np.zeros((proba.shape[0], num_classes))
    for column, label in enumerate(np.asarray(classes).astype(int)):
        full[:, label] = proba[:, column]
    return full[:, 1] if num_classes == 2 else full


def _constant_probabilities(labels, rows, num_classes):
    """What a task with at most one class among its training labels predicts."""
    full = np.zeros((rows, num_classes))
    if len(labels):
        full[:, int(labels[0])] = 1.0
    else:  # no label at all: the uniform guess
        full[:] = 1.0 / num_classes
    return full[:, 1] if num_classes == 2 else full


def fit_predict_peer(name, tasks, x_train, y_train, x_eval, seed):
    """Fits peer `name` on the training rows and predicts the evaluation rows.

    One multi-label model for `rf`, `mlp`, `knn` when every task is binary and
    no training label is missing (as the shared data's peers.py); otherwise one classifier per
    task, on the rows where its label is present.

    Args:
        name: a peer name (`tfidf` takes the sparse text + numeric matrix).
        tasks: the `Task` specs.
        x_train, x_eval: the feature matrices (numpy or scipy sparse).
        y_train: `{task name: int labels [N]}`, -1 = missing.
        seed: the estimators' random state.

    Returns:
        `{task name: probabilities}` in `multitask_metrics`' format.
    """
    labels = {t.name: np.asarray(y_train[t.name]).astype(int) for t in tasks}
    joint = (name in JOINT_PEERS and all(t.num_classes == 2 for t in tasks)
             and all(np.all(labels[t.name] >= 0) for t in tasks))
    probabilities = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence notes of lbfgs / MLP
        if joint:
            matrix = np.stack([labels[t.name] for t in tasks], axis=1)
            estimator = make_peer(name, seed).fit(x_train, matrix)
            predicted = estimator.predict_proba(x_eval)
            if isinstance(predicted, list):  # rf, knn: one [N, classes] array per task
                for task, classes, proba in zip(tasks, estimator.classes_, predicted):
                    probabilities[task.name] = class_probabilities(classes, proba, 2)
            else:  # mlp: the positive probabilities [N, T]
                for j, task in enumerate(tasks):
                    probabilities[task.name] = np.asarray(predicted[:, j], dtype=np.float64)
            return probabilities
        for task in tasks:
            keep = labels[task.name] >= 0
            present = np.unique(labels[task.name][keep])
            rows = x_eval.shape[0]
            if len(present) < 2:
                probabilities[task.name] = _constant_probabilities(
                    present, rows, task.num_classes)
                continue
            estimator = make_peer(name, seed).fit(x_train[keep], labels[task.name][keep])
            probabilities[task.name] = class_probabilities(
                estimator.classes_, estimator.predict_proba(x_eval), task.num_classes)
    return probabilities


def peer_inputs(name, dataset, numeric, split):
    """`(x_train, x_eval)` of peer `name`: the numeric features, or for `tfidf` TF-IDF + them.

    `split` is a split name, or a tuple of them: `x_eval` is then their rows
    stacked in that order (one fit predicts them all).
    """
    splits = (split,) if isinstance(split, str) else tuple(split)
    if name != "tfidf":
        return numeric["train"], np.concatenate([numeric[s] for s in splits])
    from scipy import sparse
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2)
    train_text = vectorizer.fit_transform(joined_texts(dataset, "train"))
    eval_text = sparse.vstack([vectorizer.transform(joined_texts(dataset, s)) for s in splits])
    eval_numeric = np.concatenate([numeric[s] for s in splits])
    return (sparse.hstack([train_text, sparse.csr_matrix(numeric["train"])]).tocsr(),
            sparse.hstack([eval_text, sparse.csr_matrix(eval_numeric)]).tocsr())


def run_peer(name, dataset, numeric, split, seed, openmp_threads=1):
    """Fits peer `name` on the training split; its `score` on `split`, with the
    `"decision"` entry of `decision_score` (it also predicts the validation split
    for that: `numeric` must hold it).

    `openmp_threads` bounds scikit-learn's OpenMP threads (gradient boosting, kNN):
    on a loaded machine, OpenMP's spinning threads made one 200-iteration
    `HistGradientBoostingClassifier` 11x slower with 2 threads than with 1
    (144 s against 13 s, scene, 2 cores shared with other training jobs).
    """
    return run_peer_splits(name, dataset, numeric, (split,), seed, openmp_threads)[split]


def run_peer_splits(name, dataset, numeric, splits, seed, openmp_threads=1):
    """`run_peer` scoring each of `splits` from one fit: `{split: scored}`."""
    from threadpoolctl import threadpool_limits

    predicted_splits = tuple(dict.fromkeys(("validation", *splits)))
    x_train, x_eval = peer_inputs(name, dataset, numeric, predicted_splits)
    _, y_train = dataset.splits["train"]
    with threadpool_limits(limits=openmp_threads, user_api="openmp"):
        stacked = fit_predict_peer(name, dataset.tasks, x_train, y_train, x_eval, seed)
    # Back into one `{task: probabilities}` per split, in the stacked order.
    predicted, start = {}, 0
    for s in predicted_splits:
        stop = start + dataset.size(s)
        predicted[s] = {task: values[start:stop] for task, values in stacked.items()}
        start = stop
    labels = {s: dataset.splits[s][1] for s in predicted_splits}
    return score_splits(dataset.tasks, labels, predicted, splits)
