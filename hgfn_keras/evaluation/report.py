"""Statistics over seeds and the tables that the programs print and write.

A comparison runs each setting with several seeds and reports, per number, the
mean ± sample standard deviation over the seeds where it is defined: the quality
benchmark's `quality.md`, `python -m training.experiments`' `results.md` and the
benchmarks' printed tables all use these helpers, so they cannot drift apart.

An undefined mean or standard deviation (no finite value; one value) is NaN with
its reason beside it under `<key>_undefined`, the convention of
`hgfn_keras.evaluation.metrics`, so that `hgfn_keras.utils.io_utils.atomic_write_json` writes it as
`null` beside that reason.
"""

import math
import statistics

from hgfn_keras.utils.io_utils import UNDEFINED_SUFFIX

#: Why a standard deviation over one value is undefined.
ONE_VALUE = "standard deviation of fewer than 2 finite values (one seed)"
#: Why a mean over no finite value is undefined.
NO_VALUE = "no finite value over the seeds"


def seed_statistics(values):
    """Mean, sample standard deviation and count of the finite values.

    Args:
        values: numbers, one per seed; None, NaN and infinity are left out.

    Returns:
        `{"mean", "std", "n"}`: NaN where undefined (std with fewer than 2
        values, mean with none), then with `"std_undefined"` / `"mean_undefined"`
        saying why.

    >>> seed_statistics([0.5, None, 0.7])["n"]
    2
    >>> seed_statistics([0.5])["std_undefined"]
    'standard deviation of fewer than 2 finite values (one seed)'
    """
    kept = [float(v) for v in values if v is not None and math.isfinite(v)]
    if not kept:
        return {"mean": math.nan, "std": math.nan, "n": 0,
                "mean" + UNDEFINED_SUFFIX: NO_VALUE, "std" + UNDEFINED_SUFFIX: NO_VALUE}
    if len(kept) == 1:
        return {"mean": statistics.mean(kept), "std": math.nan, "n": 1,
                "std" + UNDEFINED_SUFFIX: ONE_VALUE}
    return {"mean": statistics.mean(kept), "std": statistics.stdev(kept), "n": len(kept)}


def mean_std_text(stats, digits=3, undefined="n/a", total=None):
    """A table cell of `seed_statistics`: "0.612 ± 0.013", or "0.612" for one value.

    Args:
        stats: a `seed_statistics` dict.
        digits: decimals of the mean and the standard deviation.
        undefined: the cell when the mean is undefined.
        total: the number of seeds; when given and some values were left out,
            the cell says over how many seeds it was taken ("(2 of 3 seeds)").

    >>> mean_std_text(seed_statistics([0.5, 0.7, None]), total=3)
    '0.600 ± 0.141 (2 of 3 seeds)'
    """
    if not math.isfinite(stats["mean"]):
        return undefined
    text = f"{stats['mean']:.{digits}f}"
    if stats["n"] > 1:
        text += f" ± {stats['std']:.{digits}f}"
    if total is not None and stats["n"] < total:
        text += f" ({stats['n']} of {total} seeds)"
    return text


def markdown_table(header, rows, right_aligned=False):
    """A GitHub markdown table of string cells (no trailing newline).

    Args:
        header: the column titles.
        rows: lists of cells, as many as `header`.
        right_aligned: whether every column but the first is right-aligned
            (numbers); otherwise all keep markdown's default alignment.

    >>> print(markdown_table(["row", "F1"], [["lr", "0.600"]], right_aligned=True))
    | row | F1 |
    |---|---:|
    | lr | 0.600 |
    """
    rule = "|---|" + ("---:|" if right_aligned else "---|") * (len(header) - 1)
    lines = ["| " + " | ".join(header) + " |", rule]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def text_table(header, rows):
    """A plain-text table for a terminal: left-justified columns two spaces apart.

    >>> print(text_table(["row", "value"], [["lr", "0.600"]]))
    row  value
    ---  -----
    lr   0.600
    """
    header = [str(c) for c in header]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(header, widths)),
             "  ".join("-" * w for w in widths)]
    return "\n".join(lines + ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows])


__all__ = ["NO_VALUE", "ONE_VALUE", "markdown_table", "mean_std_text", "seed_statistics",
           "text_table"]
