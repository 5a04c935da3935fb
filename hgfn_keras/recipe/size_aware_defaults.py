"""Size-aware defaults: the recipe's settings chosen from the data it is given.

`size_aware_settings(train_rows, input_widths, label_frequencies)` is the rule;
`resolve_config(config, train_rows, input_widths, label_frequencies)` fills the
fields of a `TrainConfig` left at None ("auto") with it (preset `"package"`) or
with the fixed settings of the paper's reading (preset `"paper"`: 12 epochs at
batch 128, Adam, heads of 64, no input dropout, thresholds at 0.5). A field the
user set is never changed. The numbers behind each choice are in docs/DESIGN.md
("Size-aware defaults"), measured on the validation splits of the development
sets and of their 100-, 300- and 1000-row training subsamples
(`python -m benchmarks.recipe_sweep`).
"""

import math

#: The paper's reading, and the package's settings before issue 28: what a field
#: left at None becomes under `preset="paper"`.
FIXED_SETTINGS = {"epochs": 12, "batch_size": 128, "patience": 3, "optimizer": "adam",
                  "weight_decay": 0.0, "head_units": 64, "input_dropout": 0.0,
                  "decision_thresholds": False, "monitor": "val_loss"}
#: The fields `resolve_config` may fill (HGFN's `units` too, where it applies).
AUTO_FIELDS = tuple(FIXED_SETTINGS)


def _power_of_two_at_most(value):
    return 2 ** int(math.floor(math.log2(max(value, 1))))


def size_aware_settings(train_rows, input_widths, label_frequencies, *,
                        rows_per_batch=8, min_batch=16, max_batch=128, step_budget=1500,
                        max_epochs=200, patience_steps=200, min_epochs=12, min_patience=3,
                        weight_decay=0.004, rows_per_unit=8, min_units=128, max_units=128,
                        wide_input=1000, input_dropout=0.2, monitor="val_mean_map"):
    """The package's recipe settings for a training split of `train_rows` rows.

    Args:
        train_rows: rows in the training split (N).
        input_widths: `{modality: feature width}` (0 for text: encoded inside).
        label_frequencies: `{task: fraction of labelled training rows in its
            rarest class}` (kept for the rules that read it; see the reasons).
        The keyword arguments are the rule's constants (the defaults are the
        chosen ones; `benchmarks.recipe_sweep` tries others).

    Returns:
        `{field: value}` for `epochs`, `batch_size`, `patience`, `optimizer`,
        `weight_decay`, `units` (HGFN's aligned width D), `head_units`,
        `input_dropout`, `decision_thresholds` (`"auto"`: per task, where
        the chosen threshold wins the validation F1) and `monitor` (what early
        stopping watches).

    Reasons:
        - Training length is counted in optimizer steps, not epochs. At batch
          128 a 100-row split got one step per epoch, 12 in all; the batch is
          N / `rows_per_batch` rounded down to a power of two within
          [`min_batch`, `max_batch`] (100 rows: 16; 300: 32; 1000: 64; 1,024
          and more: 128, so large sets train as before), the epochs are what
          `step_budget` steps take (at least `min_epochs`, at most
          `max_epochs`) and the early-stopping patience is `patience_steps`
          steps in epochs (at least `min_patience`); the best weights are
          restored. A large set (N / 128 >= `step_budget` / 12 steps per
          epoch) keeps 12 epochs, patience 3.
        - AdamW with decoupled weight decay `weight_decay` (Keras' default
          0.004): the regularisation every small-data recipe uses (Kadra et
          al. 2021; RealMLP), at no cost per step.
        - Widths: HGFN's D is N / `rows_per_unit` rounded down to a power of
          two within [`min_units`, `max_units`], halved (not below
          `min_units`) for each factor of 8 by which the widest input exceeds
          N, and the heads' hidden width is D / 2. Measured on validation,
          shrinking (to 32 at 100 rows, 32-64 at 300) LOST 0.01-0.04 MAP on
          htad, scene and human at 100 and 300 rows, so the chosen bounds are
          [128, 128]: D stays 128 and the heads 64 (the rule is kept, with its
          constants, for `benchmarks.recipe_sweep`).
        - Input dropout `input_dropout` on each modality at least
          `wide_input` features wide (thousands of word counts): such inputs
          are sparse and wider than the rows that fit them.
        - Early stopping watches `monitor`, the tasks' mean validation MAP
          (`ValidationMetrics`), not the validation loss: on small multi-label
          splits the loss turns up after a few steps (overconfidence on rare
          labels) while the ranking still improves, so stopping on the loss
          cut training at 2-4 epochs. Measured on validation (2 seeds), steps
          + MAP stopping against steps + loss stopping: MAP +0.011 to +0.020
          on htad, scene and human at 100 and 300 rows.
        - Decision thresholds: `"auto"`, chosen on validation per task and used
          where they win the validation F1 (the rare labels that 0.5 never
          predicts).
        - The learning rate stays 5e-3: 1e-3 with the same rule helped htad
          and lost on human and scene (docs/DESIGN.md).
    """
    rows = int(train_rows)
    if rows < 1:
        raise ValueError(f"`train_rows` must be a positive integer. Received: {train_rows!r}")
    batch = min(max(_power_of_two_at_most(rows / rows_per_batch), min_batch), max_batch)
    steps_per_epoch = max(1, math.ceil(rows / batch))
    epochs = min(max(math.ceil(step_budget / steps_per_epoch), min_epochs), max_epochs)
    patience = max(math.ceil(patience_steps / steps_per_epoch), min_patience)
    units = min(max(_power_of_two_at_most(rows / rows_per_unit), min_units), max_units)
    widest = max([int(w or 0) for w in dict(input_widths).values()] or [0])
    while widest > 8 * rows and units > min_units:
        units //= 2
        widest //= 8
    wide = {name: input_dropout for name, w in dict(input_widths).items()
            if int(w or 0) >= wide_input and input_dropout}
    return {"epochs": epochs, "batch_size": batch, "patience": patience,
            "optimizer": "adamw", "weight_decay": weight_decay, "units": units,
            "head_units": max(units // 2, 16),  # 64 at D = 128, as before
            "input_dropout": wide or 0.0,
            "decision_thresholds": "auto", "monitor": monitor}


def resolve_settings(config, train_rows, input_widths, label_frequencies):
    """`config` (a `TrainConfig`) with its fields left at None filled: under the
    package preset by `size_aware_settings`, under the paper preset by
    `FIXED_SETTINGS`. HGFN's `units` is filled (package preset) only where the
    fusion takes it and projects (`alignment` None or `"project"`). A field
    already set is kept; a config with nothing left at None comes back as it is.

    >>> from hgfn_keras import TrainConfig
    >>> config = resolve_settings(TrainConfig(epochs=5), 100, {"a": 20, "b": 400}, {})
    >>> config.epochs, config.batch_size, config.optimizer, config.units
    (5, 16, 'adamw', 128)
    >>> resolve_settings(TrainConfig.paper(), 100, {"a": 20}, {}).batch_size
    128
    """
    from hgfn_keras.train_config import fusion_fields

    missing = [name for name in AUTO_FIELDS if getattr(config, name) is None]
    takes_units = ("alignment" in fusion_fields(config.fusion) and config.units is None
                   and config.alignment in (None, "project"))
    if not missing and not (takes_units and config.preset == "package"):
        return config
    if config.preset == "paper":
        settings = dict(FIXED_SETTINGS)
    else:
        settings = size_aware_settings(train_rows, input_widths, label_frequencies)
    if config.weight_decay:  # a decay given asks for AdamW
        settings["optimizer"] = "adamw"
    if config.optimizer == "adam" or settings["optimizer"] == "adam":
        settings["weight_decay"] = 0.0
    changes = {name: settings[name] for name in missing}
    if takes_units and config.preset == "package":
        changes["units"] = settings["units"]
    return config.replace(**changes)


__all__ = ["AUTO_FIELDS", "FIXED_SETTINGS", "resolve_settings", "size_aware_settings"]
