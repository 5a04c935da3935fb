"""The quality benchmark's report: statistics over seeds, quality.md and quality.json.

`summarise` takes every run's metrics to the mean ± sample standard deviation
over seeds per row (`hgfn_keras.evaluation.report.seed_statistics`), the best peer per
column and each pair's standing against it; `markdown_report` renders
`quality.md` from the result, `write_outputs` writes it beside `quality.json`
(strict JSON, `hgfn_keras.utils.io_utils.atomic_write_json`: an undefined number is
`null` with its reason beside it under `<key>_undefined`).
"""

import math
import os

from benchmarks.peers import PEER_TITLES
from hgfn_keras.evaluation.report import (
    markdown_table,
    mean_std_text,
    seed_statistics,
    text_table,
)
from hgfn_keras.utils.io_utils import (
    atomic_write_json,
    atomic_write_text,
    strict_json_value,
)

#: The summary's columns: (metric, title, whether higher is better).
COLUMNS = (("f1", "F1", True), ("hamming_loss", "HL", False), ("map", "MAP", True))
#: The columns at the decision thresholds chosen on the validation split.
DECISION_COLUMNS = (("f1", "F1 @ val thr", True), ("hamming_loss", "HL @ val thr", False))
#: A pair's Hamming loss may exceed the best peer's by this much and still pass.
HL_TOLERANCE = 0.01



def summarise(runs, rows, peers, task_names):
    """Mean and std over seeds per row, the best peer per column, each pair's standing."""
    by_row = {row: [r for r in runs if r["row"] == row] for row in rows}
    summary = {}
    for row, row_runs in by_row.items():
        if not row_runs:
            continue
        summary[row] = {
            "kind": row_runs[0]["kind"],
            "mean": {m: seed_statistics([r["metrics"]["mean"][m] for r in row_runs])
                     for m in ("f1", "hamming_loss", "map", "accuracy")},
            "tasks": {t: {m: seed_statistics([r["metrics"]["tasks"][t][m] for r in row_runs])
                          for m in ("f1", "hamming_loss", "map", "accuracy")}
                      for t in task_names},
            "decision": {
                "mean": {m: seed_statistics([r["metrics"]["decision"]["mean"][m] for r in row_runs])
                         for m in ("f1", "hamming_loss", "accuracy")},
                "tasks": {t: {m: seed_statistics([r["metrics"]["decision"]["tasks"][t][m]
                                         for r in row_runs])
                              for m in ("f1", "hamming_loss")}
                          for t in task_names},
            },
            "wall_seconds": seed_statistics([r["wall_seconds"] for r in row_runs]),
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
    return mean_std_text(stats, digits, undefined="–")


def _mean_cell(stats):
    return f"{stats['mean']:.3f}" if math.isfinite(stats["mean"]) else "–"


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
        return markdown_table(header, body, right_aligned=True)
    return text_table(header, body)


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
    per_task = [(f"## Per task: {title} (mean over seeds)", metric, False)
                for metric, title, _ in COLUMNS]
    per_task.append(("## Per task: F1 @ val threshold (mean over seeds)", "f1", True))
    for heading, metric, at_threshold in per_task:
        body = []
        for row, values in summary["rows"].items():
            tasks = values["decision"]["tasks"] if at_threshold else values["tasks"]
            body.append([row] + [_mean_cell(tasks[t][metric]) for t in task_names])
        lines += [heading, "", markdown_table(["row", *task_names], body, right_aligned=True),
                  ""]
    nulls = {}
    strict_json_value(result, "quality.json", nulls)
    if nulls:
        lines += ["Undefined numbers (null in quality.json): " + "; ".join(
            sorted(set(nulls.values()))), ""]
    lines += [f"Total wall time {result['wall_seconds']:.0f} s. Command: `{result['command']}`", ""]
    return "\n".join(lines)


def write_outputs(result, output_dir):
    """Writes quality.json (strict: no NaN) and quality.md; returns their paths."""
    json_path = os.path.join(output_dir, "quality.json")
    md_path = os.path.join(output_dir, "quality.md")
    atomic_write_json(json_path, result)
    atomic_write_text(md_path, markdown_report(result))
    return json_path, md_path
