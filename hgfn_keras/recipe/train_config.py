"""`TrainConfig`: every choice of one training run, as one JSON-round-tripping object.

The recipe that runs it (`hgfn_keras.recipe`: build, compile, fit) is shared by
`python -m training.train`, `python -m training.experiments`, the KerasTuner
search (`tuning/`) and the benchmarks, so they all train the same way.
"""

import dataclasses
import inspect
import json
import warnings

from hgfn_keras.fusion import FUSIONS
from hgfn_keras.fusion.alignment import ALIGNMENTS
from hgfn_keras.fusion.similarity_edge_weights import SIMILARITIES
from hgfn_keras.multitask.dynamic_task_balancing import GRAD_NORM_LAYERS, REBALANCE_ON
from hgfn_keras.multitask.task_weightings import (HEADS, MTINET_MOVED, MTL_CHOICES,
                                                 TASK_WEIGHTINGS)
from hgfn_keras.presets import PRESETS
from hgfn_keras.recipe.size_aware_defaults import AUTO_FIELDS

OPTIMIZERS = ("adam", "adamw")
CLASS_WEIGHTS = (None, "balanced")
SEQUENCE_ENCODERS = ("temporal", "mean")
#: What early stopping may watch: the validation loss, or a validation metric that
#: `ValidationMetrics` computes at each epoch's end (the mean over the tasks).
MONITORS = ("val_loss", "val_mean_map", "val_mean_f1")

#: The fields whose values come from a closed list (besides None where the default is
#: None): `validate` checks them and `training.train` offers them as its flags' choices.
CHOICES = {
    "fusion": tuple(FUSIONS),
    "mtl": tuple(MTL_CHOICES),
    "optimizer": OPTIMIZERS,
    "class_weight": ("balanced",),
    "sequence_encoder": SEQUENCE_ENCODERS,
    "alignment": ALIGNMENTS,
    "similarity": SIMILARITIES,
    "grad_norm_layer": GRAD_NORM_LAYERS,
    "rebalance_on": REBALANCE_ON,
    "preset": PRESETS,
    "heads": HEADS,
    "monitor": MONITORS,
}

#: Config field -> the fusion constructor argument it sets. A field applies to a
#: fusion whose constructor (or, through `**kwargs`, a base class's) takes that
#: argument; `cfc_units` is the fused width of the fusions without a graph.
FUSION_FIELDS = {"theta": "theta", "max_order": "max_order", "alignment": "alignment",
                 "units": "units", "similarity": "similarity",
                 "keep_modalities": "keep_modalities",
                 "projection_activation": "projection_activation"}
#: Config field -> the task weighting's constructor argument it sets (same rule).
WEIGHTING_FIELDS = {"alpha": "alpha", "tdb_learning_rate": "learning_rate",
                   "grad_norm_layer": "grad_norm_layer", "rebalance": "rebalance",
                   "tdb": "tdb", "sample_ratios": "use_sample_ratios",
                   "normalize_losses": "normalize_losses", "rebalance_on": "rebalance_on",
                   "max_weight_ratio": "max_weight_ratio"}


def constructor_arguments(cls):
    """The keyword arguments `cls(...)` takes, following `**kwargs` up the bases."""
    names = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        parameters = inspect.signature(init).parameters
        names.update(n for n, p in parameters.items()
                     if n != "self" and p.kind is not p.VAR_KEYWORD)
        if not any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
            break
    return names


def weighting_class(mtl):
    """The `TaskWeighting` class of a `--mtl` choice (MTI-Net: equal weights)."""
    return TASK_WEIGHTINGS["lsew" if mtl == "mtinet" else mtl]


def fusion_fields(fusion):
    """The config fields that apply to `fusion` (a key of `FUSIONS`)."""
    takes = constructor_arguments(FUSIONS[fusion])
    fields = [f for f, argument in FUSION_FIELDS.items() if argument in takes]
    if "theta" not in takes and "units" in takes:
        fields.append("cfc_units")
    return fields


def weighting_fields(mtl):
    """The config fields that apply to the task weighting `mtl` (from its constructor)."""
    takes = constructor_arguments(weighting_class(mtl))
    return [f for f, argument in WEIGHTING_FIELDS.items() if argument in takes]


def option(default, help):
    """A `TrainConfig` field with its help, the one place the field is described
    (`training.train --help` prints it; the flag's type and default come from the field)."""
    return dataclasses.field(default=default, metadata={"help": help})


@dataclasses.dataclass
class TrainConfig:
    """One training run's choices: data, model, task weighting, recipe.

    Its fields are the `python -m training.train` arguments of the same names
    (its `config.json`, `--config FILE`). A field that belongs to one fusion or
    task weighting (e.g. `theta`, `alpha`) and is set to something other than its
    default while another is chosen is an error that says so; which field
    belongs to which comes from the constructors in the registries
    (`FUSIONS`, `TASK_WEIGHTINGS`). Weighting fields left at None take the
    weighting's own default (DMTL: α = 1, η = 0.02 (normalised step), `"task"`,
    TDB, N / n_f and re-balancing on;
    GradNorm: α = 1.5, Adam(0.025), `"shared"`, off).

    Recipe knobs: `optimizer` ("adam" or "adamw", with `weight_decay`),
    `learning_rate`, `batch_size`, `epochs`; `patience` and `min_epochs` of the
    early stopping on `val_loss` (best weights restored; `patience=0`: none);
    `reduce_lr_patience` (0: off; else `ReduceLROnPlateau(monitor="val_loss",
    factor=0.5, patience=...)`); `class_weight` (None, or "balanced": each task's
    training rows weighted by N / (K n_c) of their class, see
    `hgfn_keras.multitask.class_weights`); `decision_thresholds` (after training, each
    binary task's threshold is chosen on the validation F1 and stored in the
    model, see `hgfn_keras.evaluation.decision_thresholds`; `"auto"`: kept only for the
    tasks where it wins the validation F1). `input_dropout`: dropout on the
    (normalised) features of the vector and sequence modalities in training,
    one rate for all or `{modality: rate}`.

    Size-aware defaults: `epochs`, `batch_size`, `patience`, `optimizer`,
    `weight_decay`, `head_units`, `input_dropout`, `decision_thresholds` (and
    HGFN's `units`) left at None are filled from the training data by
    `hgfn_keras.recipe.resolve_config` before training: under the package
    preset by the rule `hgfn_keras.recipe.size_aware_defaults.size_aware_settings`
    (training length in optimizer steps, AdamW, widths from the rows, ...),
    under the paper preset with the fixed settings
    (`size_aware_defaults.FIXED_SETTINGS`: 12 epochs at batch 128, Adam, ...). A
    value given is always kept.

    `preset` (`--preset`): `"package"` (default) fills what is left at None
    with the package's defaults (`hgfn_keras.presets`: HGFN projected to 128
    by Dense + ReLU with its modality vectors kept, weighted; DMTL without the
    epoch-end re-balancing; `modality_dropout` 0.3); `"paper"` (or
    `TrainConfig.paper(...)`) leaves the layers' own defaults, the paper's
    reading, and no modality dropout. `keep_modalities`, `projection_activation`,
    `alignment` and `units` are HGFN's; `rebalance_on` and `max_weight_ratio`
    DMTL's.

    `one_vs_rest` (`--one-vs-rest`): every task with K > 2 classes is trained as
    K binary concept tasks (`Task(..., one_vs_rest=True)`: one sigmoid, focal
    loss and task weight per concept, as the paper's tables); binary tasks
    stay as they are.

    >>> config = TrainConfig(fusion="cfc", mtl="lsew", epochs=2)
    >>> TrainConfig.from_json(config.to_json()) == config
    True
    >>> TrainConfig(mtl="lsew", alpha=2.0)
    Traceback (most recent call last):
    ...
    ValueError: `alpha` (--alpha) does not apply to mtl='lsew': TaskWeighting takes none of it. Received: alpha=2.0
    """

    dataset: str = option("clothing",
        "'clothing' (the embedded reviews), 'npz:PATH' (a feature file; see "
        "docs/DESIGN.md, 'The feature-file contract') or 'tfrecord:DIR' (its sharded "
        "form, from python -m training.convert; streamed, for data larger than memory).")
    fusion: str = option("hgfn",
        "Fusion layer: HGFN (the paper's), or a baseline: CFC (concatenate), tensor "
        "fusion (TFN/LMF, for MATF), GFN.")
    mtl: str = option("dmtl",
        "Task weighting: DMTL (dynamic task balancing, the paper's), LSEW (equal "
        "weights), MOO (MGDA-UB), or beyond the paper GradNorm, uncertainty weighting, "
        "DWA. ('mtinet', MTI-Net's heads with equal weights, is now --heads mtinet "
        "--mtl lsew; the old spelling works until 0.3.)")
    heads: str = option("dense",
        "Task heads: dense (a Dense-Dropout-Dense head per task) or mtinet (MTI-Net's "
        "intermediate predictions and distillation unit; the paper's MTI-NET row is "
        "--heads mtinet --mtl lsew).")
    ensemble: int = option(1,
        "Members K of a parameter-efficient ensemble of the task heads (TabM-style: the "
        "fusion and hidden layers shared, each member its own input scales and last "
        "layer; trained on the mean of the members' losses, predicting the mean of "
        "their probabilities; dense heads only). 1 (default): no ensemble; 8 gained "
        "validation MAP below 1,000 training rows, not F1, at 1.35x the step "
        "(docs/QUALITY.md, 'Ensembles of the heads').")
    epochs: int = option(None,
        "Most epochs (early stopping, --monitor, may stop sooner). Default: the "
        "preset's (package: what a budget of optimizer steps takes, from the training "
        "rows, hgfn_keras.recipe.size_aware_defaults; paper 12)")
    seed: int = option(0, "Seeds the split, the weights and the shuffling.")
    batch_size: int = option(None,
        "Rows per training batch. Default: the preset's (package: training rows / 8 as "
        "a power of two in [16, 128]; paper 128)")
    learning_rate: float = option(5e-3, "The main optimizer's learning rate.")
    optimizer: str = option(None,
        "The main optimizer. Default: the preset's (package adamw, paper adam)")
    weight_decay: float = option(None,
        "AdamW's decoupled weight decay (not with --optimizer adam). Default: the "
        "preset's (package: hgfn_keras.recipe.size_aware_defaults; paper 0)")
    patience: int = option(None,
        "Early-stopping patience in epochs on --monitor, best weights restored (0: no "
        "early stopping). Default: the preset's (package: a number of optimizer steps "
        "in epochs, at least 3; paper 3)")
    monitor: str = option(None,
        "What early stopping watches on the validation split, best weights restored: "
        "val_loss, or the tasks' mean MAP or F1 (val_mean_map, val_mean_f1; computed "
        "at each epoch's end). Default: the preset's (package val_mean_map, paper "
        "val_loss)")
    min_epochs: int = option(0, "Epochs before early stopping may stop the run.")
    reduce_lr_patience: int = option(0,
        "Halve the learning rate after this many epochs without a better val_loss "
        "(ReduceLROnPlateau; 0: off).")
    theta: float = option(0.5, "HGFN's θ in (0, 1] (eq. 5).")
    max_order: int = option(None, "HGFN's deepest level. Default: min(M, 3)")
    alignment: str = option(None,
        "How HGFN brings the modalities to one width: auto (pad up to width 256, "
        "project wider ones to 256), pad (the paper) or project. Default: the preset's "
        "(package project to 128, paper auto)")
    units: int = option(None,
        "HGFN's aligned width D. Default: the preset's (package 128, paper the widest "
        "modality)")
    similarity: str = option(None,
        "Edge similarity of the graph fusions. Default: the fusion's (HGFN cosine, GFN "
        "dot)")
    keep_modalities: object = option(None,
        "HGFN also outputs the aligned modality vectors beside its levels: yes, no (the"
        " paper's eq. 7, levels only) or weighted (each scaled by M times its DAU "
        "weight). Default: the preset's (package weighted, paper no)")
    projection_activation: str = option(None,
        "Activation of HGFN's learned projections when it projects (a Keras activation "
        "name). Default: the preset's (package relu, paper linear)")
    modality_dropout: float = option(None,
        "During training only, mask each present modality of a row with probability P "
        "(never all of a row's modalities), so the model learns to answer when a "
        "modality is missing. Default: the preset's (package 0.3, paper 0)")
    missing_placeholder: bool = option(False,
        "Where a modality is missing, use a learned vector per modality and fuse all M "
        "(off: zeroed slots the fusion masks, the paper's).")
    cfc_units: int = option(128, "Fused width of CFC and tensor fusion.")
    embedding_dim: int = option(64, "Width of each text encoder's output.")
    token_dropout: float = option(0.3, "Word dropout in the text encoders during training.")
    max_vocabulary: int = option(20000,
        "Most words in a text encoder's vocabulary (from the training split).")
    sequence_encoder: str = option("temporal",
        "Encoder of sequence modalities ([N, T, D] in an npz): 2 Bi-GRU layers with "
        "attention (the paper's, for video) or the mean over steps.")
    head_units: int = option(None,
        "Width of each task head's hidden Dense layer. Default: the preset's (package: "
        "D / 2; paper 64)")
    dropout: float = option(0.1, "Dropout in each task head.")
    input_dropout: object = option(None,
        "Dropout on the normalised features of the vector and sequence modalities in "
        "training: a rate P for all, or MODALITY=P,... Default: the preset's (package: "
        "on inputs of 1000 features or more; paper none)")
    beta: float = option(0.0, "Focal loss β >= 0 (eq. 10; 0 = cross-entropy).")
    alpha: float = option(None,
        "α of eq. 11 (dmtl, gradnorm only). Default: the weighting's (DMTL 1.0, "
        "GradNorm 1.5)")
    tdb_learning_rate: float = option(None,
        "Learning rate of the task weights' optimizer (dmtl, gradnorm only). Default: "
        "the weighting's (DMTL SGD 0.02, its step divided by the mean N / n_f; GradNorm"
        " Adam 0.025)")
    grad_norm_layer: str = option(None,
        "Where the gradient norms are taken (dmtl, gradnorm only): each task's last "
        "layer (the paper) or a last shared layer (adds a shared Dense). Default: the "
        "weighting's (DMTL task, GradNorm shared)")
    rebalance: bool = option(None,
        "Turn off the epoch-end re-balancing (dmtl, gradnorm only; TDB alone). Default:"
        " the preset's (package: off for dmtl; paper: on)")
    tdb: bool = option(None,
        "Turn off DMTL's dynamic task balancing step (dmtl only). Default: on")
    sample_ratios: bool = option(None,
        "Leave DMTL's N / n_f out of the balancing (dmtl only). Default: on")
    normalize_losses: bool = option(None,
        "Re-balance on the tasks' raw mean losses, not on each divided by its chance "
        "loss log K (dmtl only; no effect when all tasks have the same number of "
        "classes). Default: divided")
    rebalance_on: str = option(None,
        "Which losses DMTL's epoch-end re-balancing reads: the epoch's training losses "
        "(the paper) or each task's validation loss (dmtl only). Default: the "
        "weighting's (train)")
    max_weight_ratio: float = option(None,
        "Cap on how far DMTL's re-balancing sets two tasks' weights apart (a factor >= "
        "1; dmtl only). Default: the weighting's (none)")
    limit: int = option(None,
        "Use a random subset of this many rows (clothing only; for quick runs). "
        "Default: every row")
    class_weight: str = option(None,
        "'balanced': weigh each task's training rows by N / (K n_c) of their class (N "
        "labelled rows, K classes, n_c rows of the class), in the losses and in DMTL's "
        "N / n_f. Default: none (every row weighs 1)")
    num_classes: dict = option(None,
        "Declare an npz task's number of classes (repeat per task), for a task whose "
        "labels do not show every class. Default: max label + 1, which must leave no "
        "class unseen")
    one_vs_rest: bool = option(False,
        "Train every task with K > 2 classes as K binary concept tasks (one sigmoid, "
        "focal loss and weight per concept, as the paper's tables; concepts named "
        "<task>.<k>); the task's output stays its K-class probabilities (the sigmoids "
        "normalised), and metrics.json adds each concept under 'concepts'. Default: off")
    decision_thresholds: object = option(None,
        "After training, choose each binary task's decision threshold on the validation"
        " F1 (not 0.5), store it in the model (model.keras, and the SavedModel's extra "
        "output <task>_decision) and report the test metrics at it under \"decision\" in "
        "metrics.json (yes, the flag alone: every binary task; auto: only where the "
        "threshold wins the cross-fitted validation F1; no: 0.5). Default: the preset's "
        "(package auto, paper no)")
    preset: str = option("package",
        "package: the package's recommended settings for what is not given (HGFN "
        "projected to 128 by Dense+ReLU with its modality vectors kept, weighted; DMTL "
        "without the epoch-end re-balancing; modality dropout); paper: the paper's "
        "exact reading.")

    def __post_init__(self):
        if isinstance(self.mtl, str) and self.mtl.lower() == "mtinet":
            warnings.warn(MTINET_MOVED, FutureWarning, stacklevel=3)
            self.heads, self.mtl = "mtinet", "lsew"
        self.validate()

    def validate(self):
        """Checks every field; raises `ValueError` naming the field and the value."""
        def fail(name, what):
            raise ValueError(f"`{name}` {what}. Received: {name}={getattr(self, name)!r}")

        def is_int(value):
            return isinstance(value, int) and not isinstance(value, bool)

        def is_number(value):
            # Finite only: NaN passes every `<`/`<=` range check (`nan <= 0` is False) and
            # a NaN learning rate or alpha trains to NaN weights.
            return (isinstance(value, (int, float)) and not isinstance(value, bool)
                    and float("-inf") < value < float("inf"))

        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        for name, allowed in CHOICES.items():
            value = getattr(self, name)
            if not (value is None and defaults[name] is None) and value not in allowed:
                fail(name, f"must be one of {list(allowed)}"
                     + (" or None" if defaults[name] is None else ""))
        if self.num_classes is not None and not (
                isinstance(self.num_classes, dict) and self.num_classes
                and all(isinstance(k, str) and is_int(v) and v >= 2
                        for k, v in self.num_classes.items())):
            fail("num_classes", "must be None or a non-empty {task: K >= 2} dict (an npz "
                 "file's declared numbers of classes)")
        if not isinstance(self.missing_placeholder, bool):
            fail("missing_placeholder", "must be true or false")
        if not isinstance(self.one_vs_rest, bool):
            fail("one_vs_rest", "must be True or False")
        if self.decision_thresholds not in (None, True, False, "auto") or (
                self.decision_thresholds in (0, 1)
                and not isinstance(self.decision_thresholds, bool)):
            fail("decision_thresholds", "must be True, False, 'auto' or None")
        auto = set(AUTO_FIELDS) | {"units"}  # None: the size-aware rule's (size_aware_defaults)
        for name in ("epochs", "batch_size", "embedding_dim", "max_vocabulary", "head_units",
                     "cfc_units", "ensemble"):
            value = getattr(self, name)
            if not (value is None and name in auto) and (not is_int(value) or value < 1):
                fail(name, "must be a positive integer" + (" or None" if name in auto else ""))
        for name in ("patience", "min_epochs", "reduce_lr_patience", "seed"):
            value = getattr(self, name)
            if not (value is None and name in auto) and (not is_int(value) or value < 0):
                fail(name, "must be an integer >= 0" + (" or None" if name in auto else ""))
        for name in ("max_order", "units", "limit"):
            value = getattr(self, name)
            if value is not None and (not is_int(value) or value < 1):
                fail(name, "must be a positive integer or None")
        if not is_number(self.learning_rate) or self.learning_rate <= 0:
            fail("learning_rate", "must be a positive number")
        if self.weight_decay is not None and (
                not is_number(self.weight_decay) or self.weight_decay < 0):
            fail("weight_decay", "must be a number >= 0 or None")
        if not is_number(self.theta) or not 0 < self.theta <= 1:
            fail("theta", "must be in (0, 1]")
        if not is_number(self.dropout) or not 0 <= self.dropout < 1:
            fail("dropout", "must be in [0, 1)")
        rates = (self.input_dropout.values() if isinstance(self.input_dropout, dict)
                 else [] if self.input_dropout is None else [self.input_dropout])
        if not all(is_number(r) and 0 <= r < 1 for r in rates) or (
                isinstance(self.input_dropout, dict)
                and not all(isinstance(k, str) for k in self.input_dropout)):
            fail("input_dropout", "must be a rate in [0, 1), a {modality: rate} dict or None")
        if not is_number(self.token_dropout) or not 0 <= self.token_dropout < 1:
            fail("token_dropout", "must be in [0, 1)")
        if self.modality_dropout is not None and (
                not is_number(self.modality_dropout) or not 0 <= self.modality_dropout < 1):
            fail("modality_dropout", "must be in [0, 1) or None")
        if self.keep_modalities is not None and not (
                isinstance(self.keep_modalities, bool) or self.keep_modalities == "weighted"):
            fail("keep_modalities", "must be True, False, 'weighted' or None")
        if self.max_weight_ratio is not None and (
                not is_number(self.max_weight_ratio) or not self.max_weight_ratio >= 1):
            fail("max_weight_ratio", "must be a number >= 1 or None")
        if not is_number(self.beta) or self.beta < 0:
            fail("beta", "must be a number >= 0")
        if self.alpha is not None and (not is_number(self.alpha) or self.alpha < 0):
            fail("alpha", "must be a number >= 0 or None")
        if self.tdb_learning_rate is not None and (
                not is_number(self.tdb_learning_rate) or self.tdb_learning_rate <= 0):
            fail("tdb_learning_rate", "must be a positive number or None")
        if self.weight_decay and self.optimizer == "adam":
            fail("weight_decay", "needs optimizer='adamw' (Adam has no decoupled decay)")
        if self.ensemble > 1 and self.heads != "dense":
            fail("ensemble", f"works with the dense heads only, not heads={self.heads!r}")
        self._check_applicable()

    def _check_applicable(self):
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        fusion_owned = [*FUSION_FIELDS, "cfc_units"]
        applies = fusion_fields(self.fusion)
        for name in fusion_owned:
            if name not in applies and getattr(self, name) != defaults[name]:
                raise ValueError(
                    f"`{name}` (--{name.replace('_', '-')}) does not apply to "
                    f"fusion={self.fusion!r}: {FUSIONS[self.fusion].__name__} takes none of "
                    f"it. Received: {name}={getattr(self, name)!r}")
        applies = weighting_fields(self.mtl)
        for name in WEIGHTING_FIELDS:
            if name not in applies and getattr(self, name) != defaults[name]:
                switch = name in ("rebalance", "tdb", "sample_ratios", "normalize_losses")
                flag = (f"--no-{name.replace('_', '-')}" if switch and getattr(self, name) is False
                        else f"--{name.replace('_', '-')}")
                raise ValueError(
                    f"`{name}` ({flag}) does not apply to mtl={self.mtl!r}: "
                    f"{weighting_class(self.mtl).__name__} takes none of it. "
                    f"Received: {name}={getattr(self, name)!r}")

    def fusion_kwargs(self):
        """The fusion's constructor arguments (the fields that apply to it; a
        field left at None leaves the preset's or the fusion's own default)."""
        kwargs = {}
        for name in fusion_fields(self.fusion):
            if name == "cfc_units":
                kwargs["units"] = self.cfc_units
            elif getattr(self, name) is not None:
                kwargs[FUSION_FIELDS[name]] = getattr(self, name)
        return kwargs

    @classmethod
    def paper(cls, **changes):
        """The paper's exact reading (`preset="paper"`): the layers' own defaults
        (HGFN padded, levels only; DMTL re-balanced on training losses) and no
        modality dropout; `changes` as in the constructor.

        >>> TrainConfig.paper(fusion="cfc", mtl="lsew").preset
        'paper'
        """
        return cls(**dict(changes, preset="paper"))

    def mtl_kwargs(self):
        """The task weighting's constructor arguments (the fields set, not None)."""
        return {WEIGHTING_FIELDS[name]: getattr(self, name) for name in weighting_fields(self.mtl)
                if getattr(self, name) is not None}

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values):
        """A config from `{field: value}`; an unknown field is an error that lists the known."""
        known = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(k for k in values if k not in known)
        if unknown:
            raise ValueError(f"Unknown TrainConfig field(s) {unknown}. Known: {known}")
        return cls(**values)

    def replace(self, **changes):
        """A copy with `changes` applied (checked)."""
        return self.from_dict(dict(self.to_dict(), **changes))

    def to_json(self):
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text):
        return cls.from_dict(json.loads(text))


#: The fields of `TrainConfig` and their defaults.
DEFAULTS = {f.name: f.default for f in dataclasses.fields(TrainConfig)}

# The names these had before one word was kept for the task weighting (one release).
strategy_class, strategy_fields = weighting_class, weighting_fields
STRATEGY_FIELDS = WEIGHTING_FIELDS
