"""`TrainConfig`: every choice of one training run, as one JSON-round-tripping object.

The recipe that runs it (`hgfn_keras.recipe`: build, compile, fit) is shared by
`python -m training.train`, `python -m training.experiments`, the KerasTuner
search (`tuning/`) and the benchmarks, so they all train the same way.
"""

import dataclasses
import inspect
import json

from hgfn_keras.fusion import FUSIONS
from hgfn_keras.fusion.alignment import ALIGNMENTS
from hgfn_keras.fusion.similarity_edge_weights import SIMILARITIES
from hgfn_keras.presets import PRESETS
from hgfn_keras.multitask.dynamic_task_balancing import GRAD_NORM_LAYERS, REBALANCE_ON
from hgfn_keras.multitask.strategies import MTL_STRATEGIES, TASK_WEIGHTINGS

OPTIMIZERS = ("adam", "adamw")
CLASS_WEIGHTS = (None, "balanced")
SEQUENCE_ENCODERS = ("temporal", "mean")

#: The fields whose values come from a closed list (besides None where the default is
#: None): `validate` checks them and `training.train` offers them as its flags' choices.
CHOICES = {
    "fusion": tuple(FUSIONS),
    "mtl": tuple(MTL_STRATEGIES),
    "optimizer": OPTIMIZERS,
    "class_weight": ("balanced",),
    "sequence_encoder": SEQUENCE_ENCODERS,
    "alignment": ALIGNMENTS,
    "similarity": SIMILARITIES,
    "grad_norm_layer": GRAD_NORM_LAYERS,
    "rebalance_on": REBALANCE_ON,
    "preset": PRESETS,
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
    `hgfn_keras.class_weights`); `decision_thresholds` (after training, each
    binary task's threshold is chosen on the validation F1 and stored in the
    model, see `hgfn_keras.decision_thresholds`). The defaults reproduce the
    package's runs.

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

    dataset: str = "clothing"
    fusion: str = "hgfn"
    mtl: str = "dmtl"
    epochs: int = 12
    seed: int = 0
    batch_size: int = 128
    learning_rate: float = 5e-3
    optimizer: str = "adam"
    weight_decay: float = 0.0
    patience: int = 3
    min_epochs: int = 0
    reduce_lr_patience: int = 0
    theta: float = 0.5
    max_order: int = None
    alignment: str = None
    units: int = None
    similarity: str = None
    keep_modalities: object = None
    projection_activation: str = None
    modality_dropout: float = None
    missing_placeholder: bool = False
    cfc_units: int = 128
    embedding_dim: int = 64
    token_dropout: float = 0.3
    max_vocabulary: int = 20000
    sequence_encoder: str = "temporal"
    head_units: int = 64
    dropout: float = 0.1
    beta: float = 0.0
    alpha: float = None
    tdb_learning_rate: float = None
    grad_norm_layer: str = None
    rebalance: bool = None
    tdb: bool = None
    sample_ratios: bool = None
    normalize_losses: bool = None
    rebalance_on: str = None
    max_weight_ratio: float = None
    limit: int = None
    class_weight: str = None
    num_classes: dict = None
    one_vs_rest: bool = False
    decision_thresholds: bool = False
    preset: str = "package"

    def __post_init__(self):
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
        if not isinstance(self.decision_thresholds, bool):
            fail("decision_thresholds", "must be True or False")
        for name in ("epochs", "batch_size", "embedding_dim", "max_vocabulary", "head_units",
                     "cfc_units"):
            if not is_int(getattr(self, name)) or getattr(self, name) < 1:
                fail(name, "must be a positive integer")
        for name in ("patience", "min_epochs", "reduce_lr_patience", "seed"):
            if not is_int(getattr(self, name)) or getattr(self, name) < 0:
                fail(name, "must be an integer >= 0")
        for name in ("max_order", "units", "limit"):
            value = getattr(self, name)
            if value is not None and (not is_int(value) or value < 1):
                fail(name, "must be a positive integer or None")
        if not is_number(self.learning_rate) or self.learning_rate <= 0:
            fail("learning_rate", "must be a positive number")
        if not is_number(self.weight_decay) or self.weight_decay < 0:
            fail("weight_decay", "must be a number >= 0")
        if not is_number(self.theta) or not 0 < self.theta <= 1:
            fail("theta", "must be in (0, 1]")
        if not is_number(self.dropout) or not 0 <= self.dropout < 1:
            fail("dropout", "must be in [0, 1)")
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
        if self.weight_decay and self.optimizer != "adamw":
            fail("weight_decay", "needs optimizer='adamw' (Adam has no decoupled decay)")
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
