"""Quality against scikit-learn: the package's models and simple peers on the same split.

    python -m benchmarks.quality --dataset npz:../shared/data/multilabel/scene.npz \\
        --seeds 3 --split validation --output-dir runs/quality/scene

For each seed 0..K-1 the dataset is loaded with that seed (the split, and for
`--limit` the subset, follow the seed), the scikit-learn peers are fit on its
training split and each fusion+strategy pair is trained with the package's
defaults (`train_pair`, the one place that calls the training recipe); all of
them are scored on the same split (`--split`, test by default) by the same code,
`hgfn_keras.metrics.multitask_metrics`. Choose defaults on `--split validation`;
the test split is for reporting.

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

Decision thresholds (issue 11, part 4): beside the 0.5 numbers, every row (pair
and peer alike) also predicts the validation split, each binary task's threshold
is chosen there on F1 (`hgfn_keras.decision_thresholds.choose_thresholds`) and
F1 and Hamming loss are scored at it on the scored split: the columns "F1 @ val
thr" and "HL @ val thr" (a run's `metrics.decision` in quality.json). Nothing is
chosen on the test split; with `--split validation` the thresholds are chosen and
scored on the same rows, an optimistic number.

Writes `DIR/quality.json` (every run's per-task and mean metrics, wall times,
seeds, the package version and git commit; strict JSON: an undefined number is
`null` with its reason under `"nulls"`), `DIR/quality.md` (mean ± std over seeds
of mean F1 / Hamming loss / MAP per row with the best peer per column in bold,
each pair's standing against the best peer, and per-task tables) and, for the
pairs, each run's files under `DIR/runs/<pair>/seed<k>/` (`train.log` holds the
recipe's output). Prints a line per finished run and the table at the end.
"""

import argparse
import contextlib
import datetime
import json
import math
import os
import statistics
import subprocess
import sys
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

DEFAULT_PAIRS = "hgfn+dmtl,hgfn+lsew,cfc+lsew"
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
#: The summary's columns: (metric, title, whether higher is better).
COLUMNS = (("f1", "F1", True), ("hamming_loss", "HL", False), ("map", "MAP", True))
#: The columns at the decision thresholds chosen on the validation split.
DECISION_COLUMNS = (("f1", "F1 @ val thr", True), ("hamming_loss", "HL @ val thr", False))
#: A pair's Hamming loss may exceed the best peer's by this much and still pass.
HL_TOLERANCE = 0.01


# ------------------------------------------------------------------ the training recipe


def train_pair(dataset_spec, fusion, mtl, seed, output_dir, split="test", limit=None):
    """Trains one fusion+strategy pair with the package's defaults; its metrics on `split`.

    The one place that calls the training recipe (today the CLI's `run`), so
    that moving the recipe into the library changes only this function. Only
    the fusion, the strategy and the seed are chosen here; every other setting
    is the recipe's default. The model the recipe saved (`model.keras`) is
    reloaded and scored on `split` of the same `load_dataset(dataset_spec, seed,
    limit)` by `score`, the code that scores the peers; on the test split the
    recipe's own numbers are kept beside them as a check of that reload.

    Returns:
        `score`'s dict on `split` with its `"decision"` (`decision_score`:
        thresholds from the validation split), plus `"run"`: the recipe's notes
        (epochs run, fit seconds) where it gives them.
    """
    import keras

    from hgfn_keras.data import load_dataset
    from hgfn_keras.data.dataset import as_tf_dataset
    from training.train import parse_args, run

    argv = ["--dataset", dataset_spec, "--fusion", fusion, "--mtl", mtl, "--seed", str(seed),
            "--output-dir", output_dir, "--no-export", "--verbose", "0"]
    if limit is not None:
        argv += ["--limit", str(limit)]
    os.makedirs(output_dir, exist_ok=True)
    keras.backend.clear_session()
    with open(os.path.join(output_dir, "train.log"), "w", encoding="utf-8") as log:
        with contextlib.redirect_stdout(log):
            recipe = run(parse_args(argv))

    dataset = load_dataset(dataset_spec, seed=seed, limit=limit)
    model = keras.saving.load_model(os.path.join(output_dir, "model.keras"))
    predicted = {}
    for name in dict.fromkeys(("validation", split)):
        x, _ = dataset.splits[name]
        predicted[name] = model.predict(as_tf_dataset(x, None, 512), verbose=0)
    y = dataset.splits[split][1]
    scored = score(dataset.tasks, y, predicted[split])
    scored["decision"] = decision_score(dataset.tasks, dataset.splits["validation"][1],
                                        predicted["validation"], y, predicted[split])
    scored["run"] = dict(recipe.get("run", {}))
    if split == "test":
        scored["run"]["recipe_test_mean"] = recipe.get("mean")
    return scored


# ------------------------------------------------------------------------------ scoring


def score(tasks, y, probabilities):
    """`multitask_metrics`, with its warnings (an undefined number) kept as reasons.

    Returns:
        Its dict plus `"warnings"`: the messages of the NaNs it returned.
    """
    from hgfn_keras.metrics import multitask_metrics

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        metrics = multitask_metrics(tasks, y, probabilities)
    metrics["warnings"] = [str(w.message) for w in caught]
    return metrics


def decision_score(tasks, y_val, prob_val, y_eval, prob_eval):
    """The metrics on the scored rows at the thresholds chosen on the validation rows.

    Each binary task's threshold maximises its F1 on `(y_val, prob_val)`
    (`hgfn_keras.decision_thresholds.choose_thresholds`); K-class tasks decide
    by argmax as before.

    Returns:
        `multitask_metrics(tasks, y_eval, prob_eval, thresholds)` plus
        `"thresholds"` and `"warnings"` (e.g. a task with no positive label in
        validation, which keeps 0.5).
    """
    from hgfn_keras.decision_thresholds import choose_thresholds
    from hgfn_keras.metrics import multitask_metrics

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        thresholds = choose_thresholds(tasks, y_val, prob_val)
        metrics = multitask_metrics(tasks, y_eval, prob_eval, thresholds=thresholds)
    metrics["thresholds"] = thresholds
    metrics["warnings"] = [str(w.message) for w in caught]
    return metrics


# -------------------------------------------------------------------------------- peers


def numeric_features(dataset, splits=("train", "validation", "test")):
    """The numeric peers' input per split: standardised vector and mean-of-steps features.

    Vector modalities as they are, sequence modalities averaged over their steps,
    concatenated in the dataset's modality order; text modalities left out. Each
    column is standardised with the mean and standard deviation of the training
    rows where its modality is present (a constant column keeps scale 1); an
    absent modality is 0 (the training mean).

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
    no training label is missing (as peers.py); otherwise one classifier per
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
    from threadpoolctl import threadpool_limits

    splits = tuple(dict.fromkeys(("validation", split)))
    x_train, x_eval = peer_inputs(name, dataset, numeric, splits)
    _, y_train = dataset.splits["train"]
    with threadpool_limits(limits=openmp_threads, user_api="openmp"):
        stacked = fit_predict_peer(name, dataset.tasks, x_train, y_train, x_eval, seed)
    # Back into one `{task: probabilities}` per split, in the stacked order.
    predicted, start = {}, 0
    for s in splits:
        stop = start + dataset.size(s)
        predicted[s] = {task: values[start:stop] for task, values in stacked.items()}
        start = stop
    y_val, y_eval = dataset.splits["validation"][1], dataset.splits[split][1]
    scored = score(dataset.tasks, y_eval, predicted[split])
    scored["decision"] = decision_score(dataset.tasks, y_val, predicted["validation"],
                                        y_eval, predicted[split])
    return scored


# ------------------------------------------------------------------------ the summary


def _stats(values):
    """`{"mean", "std", "n"}` of the finite values (std: sample std, None under 2)."""
    kept = [float(v) for v in values if v is not None and math.isfinite(v)]
    if not kept:
        return {"mean": math.nan, "std": math.nan, "n": 0}
    std = statistics.stdev(kept) if len(kept) > 1 else math.nan
    return {"mean": statistics.mean(kept), "std": std, "n": len(kept)}


def summarise(runs, rows, peers, task_names):
    """Mean and std over seeds per row, the best peer per column, each pair's standing."""
    by_row = {row: [r for r in runs if r["row"] == row] for row in rows}
    summary = {}
    for row, row_runs in by_row.items():
        if not row_runs:
            continue
        summary[row] = {
            "kind": row_runs[0]["kind"],
            "mean": {m: _stats([r["metrics"]["mean"][m] for r in row_runs])
                     for m in ("f1", "hamming_loss", "map", "accuracy")},
            "tasks": {t: {m: _stats([r["metrics"]["tasks"][t][m] for r in row_runs])
                          for m in ("f1", "hamming_loss", "map", "accuracy")}
                      for t in task_names},
            "decision": {
                "mean": {m: _stats([r["metrics"]["decision"]["mean"][m] for r in row_runs])
                         for m in ("f1", "hamming_loss", "accuracy")},
                "tasks": {t: {m: _stats([r["metrics"]["decision"]["tasks"][t][m]
                                         for r in row_runs])
                              for m in ("f1", "hamming_loss")}
                          for t in task_names},
            },
            "wall_seconds": _stats([r["wall_seconds"] for r in row_runs]),
            "seeds": [r["seed"] for r in row_runs],
        }
    best = {}
    for metric, _, higher in COLUMNS:
        scored = [(summary[p]["mean"][metric]["mean"], p) for p in peers
                  if p in summary and math.isfinite(summary[p]["mean"][metric]["mean"])]
        if scored:
            value, peer = (max if higher else min)(scored)
            best[metric] = {"peer": peer, "value": value}
    best_decision = {}
    for metric, _, higher in DECISION_COLUMNS:
        scored = [(summary[p]["decision"]["mean"][metric]["mean"], p) for p in peers
                  if p in summary
                  and math.isfinite(summary[p]["decision"]["mean"][metric]["mean"])]
        if scored:
            value, peer = (max if higher else min)(scored)
            best_decision[metric] = {"peer": peer, "value": value}
    standing = {}
    for row, values in summary.items():
        if values["kind"] != "pair":
            continue
        mine = {m: values["mean"][m]["mean"] for m, _, _ in COLUMNS}
        standing[row] = {
            "f1_at_least_best_peer": (mine["f1"] >= best["f1"]["value"]
                                      if "f1" in best else None),
            "map_at_least_best_peer": (mine["map"] >= best["map"]["value"]
                                       if "map" in best else None),
            "hl_within_best_peer_plus_0.01": (
                mine["hamming_loss"] <= best["hamming_loss"]["value"] + HL_TOLERANCE
                if "hamming_loss" in best else None),
        }
    return {"rows": summary, "best_peer": best, "best_peer_decision": best_decision,
            "pairs_vs_best_peer": standing}


def _fmt(stats, digits=3):
    if not math.isfinite(stats["mean"]):
        return "–"
    if stats["n"] > 1:
        return f"{stats['mean']:.{digits}f} ± {stats['std']:.{digits}f}"
    return f"{stats['mean']:.{digits}f}"


def _label(row, kind):
    return row.upper() if kind == "pair" else f"{row}: {PEER_TITLES[row]}"


def main_table(summary, markdown=True):
    """The rows × (F1, HL, MAP, F1 and HL @ val thr, wall s) table; the best peer
    per quality column in bold."""
    columns = ([("mean", metric, "best_peer") for metric, _, _ in COLUMNS]
               + [("decision", metric, "best_peer_decision") for metric, _, _ in DECISION_COLUMNS])
    header = (["row"] + [title for _, title, _ in COLUMNS]
              + [title for _, title, _ in DECISION_COLUMNS] + ["wall s"])
    body = []
    for row, values in summary["rows"].items():
        cells = [_label(row, values["kind"])]
        for values_key, metric, best_key in columns:
            stats = (values["mean"] if values_key == "mean" else values["decision"]["mean"])
            cell = _fmt(stats[metric], 4 if metric == "hamming_loss" else 3)
            is_best = summary.get(best_key, {}).get(metric, {}).get("peer") == row
            if markdown and is_best:
                cell = f"**{cell}**"
            elif is_best:
                cell += " *"
            cells.append(cell)
        cells.append(_fmt(values["wall_seconds"], 1))
        body.append(cells)
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
        return "\n".join(lines + ["| " + " | ".join(c) + " |" for c in body])
    widths = [max(len(r[i]) for r in [header] + body) for i in range(len(header))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths)),
             "  ".join("-" * w for w in widths)]
    return "\n".join(lines + ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in body])


def standing_lines(summary):
    """One sentence per pair: F1 / MAP at least the best peer's, HL within +0.01."""
    best = summary["best_peer"]
    if not best:
        return ["No peer was run, so no pair is compared with one."]
    checks = (("f1", "f1_at_least_best_peer", "F1 ≥ best peer", 3),
              ("map", "map_at_least_best_peer", "MAP ≥ best peer", 3),
              ("hamming_loss", "hl_within_best_peer_plus_0.01", "HL ≤ best peer + 0.01", 4))
    lines = []
    for row, standing in summary["pairs_vs_best_peer"].items():
        values = summary["rows"][row]["mean"]
        said = []
        for metric, key, claim, digits in checks:
            if standing[key] is None:
                said.append(f"{claim}: no peer value")
                continue
            said.append(f"{claim} ({values[metric]['mean']:.{digits}f} vs "
                        f"{best[metric]['value']:.{digits}f} {best[metric]['peer']}): "
                        + ("yes" if standing[key] else "no"))
        lines.append(f"- {row.upper()}: " + "; ".join(said) + ".")
        decision_best = summary.get("best_peer_decision", {}).get("f1")
        if decision_best is not None:
            mine = summary["rows"][row]["decision"]["mean"]["f1"]["mean"]
            lines.append(f"  At validation thresholds: F1 {mine:.3f} vs "
                         f"{decision_best['value']:.3f} {decision_best['peer']}: "
                         + ("yes" if mine >= decision_best["value"] else "no") + ".")
    return lines


def markdown_report(result):
    """The text of quality.md."""
    summary = result["summary"]
    best = summary["best_peer"]
    task_names = [t["name"] for t in result["tasks"]]
    seeds = result["seeds"]
    lines = [
        f"# Quality: {result['dataset_name']} ({result['split']} split)", "",
        f"Dataset `{result['dataset']}`"
        + (f", limit {result['limit']} rows" if result["limit"] else "")
        + f"; seeds {seeds}; hgfn-keras {result['package']['version']}"
        + (f" at {result['package']['git_commit'][:12]}"
           + (" (uncommitted changes)" if result['package']['git_dirty'] else "")
           if result["package"]["git_commit"] else "")
        + f"; scikit-learn {result['sklearn_version']}; {result['started']}.", "",
        "Mean over tasks of F1, Hamming loss (HL, lower is better) and MAP; "
        + ("mean ± sample standard deviation over seeds. " if len(seeds) > 1 else "one seed. ")
        + "The best peer per quality column is in bold. Wall seconds per run "
        "(a pair: load, build, fit, save, score; a peer: fit and predict). "
        "\"@ val thr\": F1 and HL at each binary task's threshold chosen on the "
        "validation split's F1 (the same rule for pairs and peers; K-class tasks by "
        "argmax)"
        + (", here scored on the same validation rows it was chosen on (optimistic)."
           if result["split"] == "validation" else ", scored on the test split.")
        + "", "",
        main_table(summary), "",
    ]
    if best:
        lines.append("Best peer: " + ", ".join(
            f"{title} `{best[m]['peer']}` ({best[m]['value']:.4f})"
            for m, title, _ in COLUMNS if m in best) + ".")
        lines.append("")
    lines += ["Pairs against the best peer of each column (the targets of issue 11):", ""]
    lines += standing_lines(summary) + [""]
    for metric, title, _ in COLUMNS:
        lines += [f"## Per task: {title} (mean over seeds)", "",
                  "| row | " + " | ".join(task_names) + " |",
                  "|---|" + "---:|" * len(task_names)]
        for row, values in summary["rows"].items():
            cells = []
            for t in task_names:
                stats = values["tasks"][t][metric]
                cells.append(f"{stats['mean']:.3f}" if math.isfinite(stats["mean"]) else "–")
            lines.append(f"| {row} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["## Per task: F1 @ val threshold (mean over seeds)", "",
              "| row | " + " | ".join(task_names) + " |",
              "|---|" + "---:|" * len(task_names)]
    for row, values in summary["rows"].items():
        cells = []
        for t in task_names:
            stats = values["decision"]["tasks"][t]["f1"]
            cells.append(f"{stats['mean']:.3f}" if math.isfinite(stats["mean"]) else "–")
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    lines.append("")
    if result["nulls"]:
        lines += ["Undefined numbers (null in quality.json): " + "; ".join(
            sorted({reason for reason in result["nulls"].values()})), ""]
    lines += [f"Total wall time {result['wall_seconds']:.0f} s. Command: `{result['command']}`", ""]
    return "\n".join(lines)


def strict(value, path="", nulls=None, reason=None):
    """`value` with every NaN/inf replaced by None; the reasons go to `nulls[path]`."""
    if isinstance(value, dict):
        return {k: strict(v, f"{path}.{k}" if path else str(k), nulls, reason)
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict(v, f"{path}[{i}]", nulls, reason) for i, v in enumerate(value)]
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if not math.isfinite(value):
            nulls[path] = _null_reason(path, reason)
            return None
        return value
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def _null_reason(path, reason):
    if path.endswith(".std"):
        return "standard deviation of fewer than 2 finite values (one seed)"
    if path.endswith(".map.mean") or path.endswith(".map"):
        return reason or "no positive label in the scored split for a task (AP undefined)"
    return reason or "no valid label in the scored split"


# --------------------------------------------------------------------------------- CLI


def _list(text, allowed, what):
    items = [s.strip().lower() for s in text.split(",") if s.strip()]
    bad = [s for s in items if s not in allowed]
    if bad:
        raise ValueError(f"--{what}: unknown {bad}. Choose from {list(allowed)}.")
    return list(dict.fromkeys(items))


def parse_args(argv=None):
    from training.train import FUSION_CHOICES, MTL_CHOICES

    p = argparse.ArgumentParser(prog="python -m benchmarks.quality",
                                description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="clothing", help="'clothing' or 'npz:PATH'. "
                   "Default: %(default)s")
    p.add_argument("--seeds", type=int, default=3, help="Seeds 0..K-1. Default: %(default)s")
    p.add_argument("--pairs", default=DEFAULT_PAIRS,
                   help="Comma-separated <fusion>+<mtl> pairs ('' for none). "
                   "Default: %(default)s")
    p.add_argument("--peers", default=DEFAULT_PEERS,
                   help=f"Comma-separated, from {list(PEER_NAMES)} ('' for none); tfidf only "
                   "runs on data with text modalities. Default: all")
    p.add_argument("--limit", type=int, default=None,
                   help="Use a random subset of this many rows (drawn per seed; for an npz "
                   "file a subset file is written under DIR/data/).")
    p.add_argument("--split", default="test", choices=["test", "validation"],
                   help="The split every row is scored on. Choose defaults on validation; "
                   "report test. Default: %(default)s")
    p.add_argument("--peer-threads", type=int, default=1,
                   help="OpenMP threads of the scikit-learn peers (gradient boosting, kNN); "
                   "1 keeps them fast on a machine shared with other jobs. "
                   "Default: %(default)s")
    p.add_argument("--output-dir", required=True, help="Where quality.json/.md go.")
    args = p.parse_args(argv)
    try:
        pairs = _list(args.pairs, [f"{f}+{m}" for f in FUSION_CHOICES for m in MTL_CHOICES],
                      "pairs")
        args.peer_list = _list(args.peers, PEER_NAMES, "peers")
    except ValueError as error:
        p.error(str(error))
    args.pair_list = [tuple(pair.split("+")) for pair in pairs]
    if not args.pair_list and not args.peer_list:
        p.error("--pairs and --peers are both empty: nothing to run.")
    if args.peer_threads < 1:
        p.error(f"--peer-threads must be positive. Received: {args.peer_threads}")
    if args.seeds < 1:
        p.error(f"--seeds must be positive. Received: {args.seeds}")
    if args.limit is not None and args.limit < 10:
        p.error(f"--limit must be at least 10. Received: {args.limit}")
    return args


def limited_spec(spec, limit, seed, directory):
    """The dataset spec to train on: `spec`, or for an npz file with `limit`, a subset file.

    `load_dataset` takes `limit` for the embedded dataset only; for `npz:PATH` a
    random subset of `limit` rows (drawn from `default_rng(seed)`, `split` kept)
    is written to `directory/seed<k>/<same name>.npz` so the dataset's name stays.

    Returns:
        `(spec, limit)` to hand to `load_dataset` and to the recipe.
    """
    if limit is None or not spec.startswith("npz:"):
        return spec, limit
    path = spec[len("npz:"):]
    with np.load(path, allow_pickle=False) as archive:
        arrays = {k: archive[k] for k in archive.files}
    rows = len(next(iter(arrays.values())))
    keep = np.sort(np.random.default_rng(seed).permutation(rows)[:limit])
    target = os.path.join(directory, f"seed{seed}", os.path.basename(path))
    os.makedirs(os.path.dirname(target), exist_ok=True)
    np.savez(target, **{k: v[keep] for k, v in arrays.items()})
    return f"npz:{target}", None


def _git(*args):
    try:
        out = subprocess.run(["git", *args], capture_output=True, text=True, timeout=20,
                             cwd=os.path.dirname(os.path.abspath(__file__)))
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def package_info():
    import hgfn_keras

    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {"version": hgfn_keras.__version__, "git_commit": commit,
            "git_dirty": bool(status) if status is not None else None}


def _progress(index, total, row, seed, metrics, seconds, extra=""):
    mean = metrics["mean"]
    decision = metrics.get("decision", {}).get("mean", {})
    at_threshold = (f"  F1 @ val thr {decision['f1']:.3f}  HL @ val thr "
                    f"{decision['hamming_loss']:.4f}" if decision else "")
    print(f"[{index}/{total}] seed {seed} {row:10s} F1 {mean['f1']:.3f}  "
          f"HL {mean['hamming_loss']:.4f}  MAP {mean['map']:.3f}{at_threshold}  "
          f"({seconds:.1f} s){extra}", flush=True)


def write_outputs(result, output_dir):
    """Writes quality.json (strict: no NaN) and quality.md; returns their paths."""
    from hgfn_keras.io_utils import atomic_write_text

    nulls = {}
    clean = strict({k: v for k, v in result.items() if k != "nulls"}, "", nulls)
    # A run's own warnings name the task whose metric is undefined: use them.
    for index, run in enumerate(result["runs"]):
        for key in [k for k in nulls if k.startswith(f"runs[{index}].metrics.")]:
            if run["metrics"].get("warnings"):
                nulls[key] = "; ".join(run["metrics"]["warnings"])
    clean["nulls"] = nulls
    result["nulls"] = nulls
    json_path = os.path.join(output_dir, "quality.json")
    md_path = os.path.join(output_dir, "quality.md")
    atomic_write_text(json_path, json.dumps(clean, indent=2, allow_nan=False) + "\n")
    atomic_write_text(md_path, markdown_report(result))
    return json_path, md_path


def main(argv=None):
    args = parse_args(argv)
    import sklearn

    from hgfn_keras.data import load_dataset

    os.makedirs(args.output_dir, exist_ok=True)
    started = time.time()
    seeds = list(range(args.seeds))
    pair_rows = [f"{f}+{m}" for f, m in args.pair_list]
    runs, dataset, skipped = [], None, {}
    total = None
    index = 0
    for seed in seeds:
        spec, limit = limited_spec(args.dataset, args.limit, seed,
                                   os.path.join(args.output_dir, "data"))
        dataset = load_dataset(spec, seed=seed, limit=limit)
        peers = [p for p in args.peer_list if p != "tfidf" or has_text(dataset)]
        if "tfidf" in args.peer_list and "tfidf" not in peers:
            skipped["tfidf"] = "the dataset has no text modality"
        if total is None:
            total = len(seeds) * (len(peers) + len(pair_rows))
            print(f"{dataset.description}\nScoring the {args.split} split "
                  f"({dataset.size(args.split)} rows); {total} runs.", flush=True)
        numeric = numeric_features(dataset, tuple(dict.fromkeys(("train", "validation",
                                                                 args.split))))
        for peer in peers:
            index += 1
            tick = time.time()
            metrics = run_peer(peer, dataset, numeric, args.split, seed, args.peer_threads)
            seconds = time.time() - tick
            runs.append({"row": peer, "kind": "peer", "seed": seed, "wall_seconds": seconds,
                         "metrics": metrics})
            _progress(index, total, peer, seed, metrics, seconds)
        for fusion, mtl in args.pair_list:
            index += 1
            row = f"{fusion}+{mtl}"
            tick = time.time()
            metrics = train_pair(spec, fusion, mtl, seed,
                                 os.path.join(args.output_dir, "runs", row, f"seed{seed}"),
                                 split=args.split, limit=limit)
            seconds = time.time() - tick
            recipe = metrics.pop("run", {})
            runs.append({"row": row, "kind": "pair", "seed": seed, "wall_seconds": seconds,
                         "epochs_run": recipe.get("epochs_run"), "recipe": recipe,
                         "metrics": metrics})
            extra = f", {recipe['epochs_run']} epochs" if "epochs_run" in recipe else ""
            own = recipe.get("recipe_test_mean") or {}
            if any(abs(own[m] - metrics["mean"][m]) > 1e-6 for m in own
                   if m in metrics["mean"] and math.isfinite(own[m])):
                extra += " (the reloaded model.keras scores unlike the recipe: see quality.json)"
            _progress(index, total, row, seed, metrics, seconds, extra)

    peer_rows = [p for p in args.peer_list if p not in skipped]
    task_names = dataset.task_names
    summary = summarise(runs, pair_rows + peer_rows, peer_rows, task_names)
    result = {
        "benchmark": "quality",
        "dataset": args.dataset,
        "dataset_name": dataset.name,
        "description": dataset.description,
        "split": args.split,
        "limit": args.limit,
        "seeds": seeds,
        "rows": {s: dataset.size(s) for s in ("train", "validation", "test")},
        "tasks": [{"name": t.name, "num_classes": t.num_classes} for t in dataset.tasks],
        "pairs": pair_rows,
        "peers": peer_rows,
        "skipped": skipped,
        "package": package_info(),
        "sklearn_version": sklearn.__version__,
        "python": sys.version.split()[0],
        "command": "python -m benchmarks.quality " + " ".join(
            sys.argv[1:] if argv is None else list(argv)),
        "started": datetime.datetime.fromtimestamp(started).isoformat(timespec="seconds"),
        "wall_seconds": time.time() - started,
        "runs": runs,
        "summary": summary,
    }
    json_path, md_path = write_outputs(result, args.output_dir)
    print()
    print(main_table(summary, markdown=False))
    print("(* best peer in the column)")
    for line in standing_lines(summary):
        print(line)
    print(f"\nWrote {json_path} and {md_path}; total wall time {result['wall_seconds']:.0f} s",
          flush=True)
    return result


if __name__ == "__main__":
    main()
