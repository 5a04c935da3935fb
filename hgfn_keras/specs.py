"""Plain descriptions of a model's modalities and tasks.

A `Modality` says what one input looks like; a `Task` says what one output predicts.
Both are small frozen dataclasses that survive a JSON round trip (`to_config` /
`from_config`), so a model built from them can be saved and rebuilt.
"""

import dataclasses
import keyword
import re

from hgfn_keras.utils.arguments import is_integer

MODALITY_KINDS = ("text", "vector", "sequence")
#: Joins a one-vs-rest task's name and a class index into a concept's name,
#: `<task>.<k>`. A task name is a Python identifier, so it never holds a ".":
#: a concept's name cannot be a task's.
CONCEPT_SEPARATOR = "."


#: A modality's or a task's name: an ASCII Python identifier that starts with a letter.
#: It becomes an input or output name, a dict key passed as `**kwargs`, and the first
#: part of its layers' TensorFlow scope names, which must match
#: `[A-Za-z0-9.][A-Za-z0-9_.\-/]*` (so no leading "_" and no "größe").
NAME_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
#: Modality names taken by the model's own inputs (`hgfn_keras.data.dataset.MASK_KEY`).
RESERVED_MODALITY_NAMES = ("modality_mask",)
#: Task names that collide with what the logs and reports already name: Keras logs the
#: total as "loss" and prefixes validation logs with "val_" (a task "val" would log
#: "val_loss", a task "val_x" "val_x_loss", as validation does for a task "x"); the
#: results have a "mean" row and `mean_<metric>` columns; the SavedModel's output
#: `modality_weights` (`hgfn_keras.serving.export.MODALITY_WEIGHTS_KEY`).
RESERVED_TASK_NAMES = ("loss", "mean", "val", "modality_weights")
RESERVED_TASK_PREFIX = "val_"


def _check_name(name, what):
    """Raises a `ValueError` naming the rule a modality's or task's `name` breaks."""
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(
            f"A {what} name must be a Python identifier (it becomes an "
            f"{'input' if what == 'modality' else 'output'} name). Received: name={name!r}")
    if not name.isascii():
        raise ValueError(
            f"A {what} name may hold only ASCII letters, digits and '_' (TensorFlow's scope "
            f"names allow no other letters). Received: name={name!r}")
    if not NAME_PATTERN.fullmatch(name):
        raise ValueError(
            f"A {what} name must start with a letter: TensorFlow's scope names start with a "
            f"letter, a digit or '.', and a Python identifier not with a digit (an npz entry "
            f"`x__meta` names the modality '_meta'). Received: name={name!r}")
    if what == "modality" and keyword.iskeyword(name):
        raise ValueError(
            f"A modality name cannot be a Python keyword: it becomes a parameter name of the "
            f"SavedModel's serving function, which export would refuse. Received: name={name!r}")
    if what == "modality" and name in RESERVED_MODALITY_NAMES:
        raise ValueError(f"The modality name {name!r} is reserved for the model's own input. "
                         f"Reserved: {list(RESERVED_MODALITY_NAMES)}. Received: name={name!r}")
    if what == "task" and (name in RESERVED_TASK_NAMES
                           or name.startswith(RESERVED_TASK_PREFIX)):
        raise ValueError(
            f"The task name {name!r} is reserved: it would collide with Keras' log keys "
            f"('loss', validation's 'val_' prefix), the results' 'mean' row or the "
            f"SavedModel's 'modality_weights' output. Reserved: {list(RESERVED_TASK_NAMES)} "
            f"and any name starting with {RESERVED_TASK_PREFIX!r}. Received: name={name!r}")


def concept_name(task_name, index):
    """The name of concept `index` ("class `index` or not") of a one-vs-rest task.

    >>> concept_name("rating", 4)
    'rating.4'
    """
    return f"{task_name}{CONCEPT_SEPARATOR}{int(index)}"


@dataclasses.dataclass(frozen=True)
class Modality:
    """One input modality.

    Args:
        name: the modality's name; the model input of the same name feeds it.
        kind: `"text"` (one raw string per item, encoded inside the model),
            `"vector"` (a float vector `[width]` per item) or `"sequence"`
            (a float matrix `[steps, width]` per item).
        width: the feature width of a `"vector"` or `"sequence"` modality; for
            `"text"` it is ignored and may be left at 0.
        steps: the number of steps of a `"sequence"` modality (None: any).

    Example:

    >>> Modality("metadata", kind="vector", width=2)
    Modality(name='metadata', kind='vector', width=2, steps=None)
    """

    name: str
    kind: str = "vector"
    width: int = 0
    steps: int | None = None

    def __post_init__(self):
        _check_name(self.name, "modality")
        if self.kind not in MODALITY_KINDS:
            raise ValueError(
                f"Modality {self.name!r}: `kind` must be one of {MODALITY_KINDS}. "
                f"Received: kind={self.kind!r}"
            )
        if self.kind != "text" and (not is_integer(self.width) or self.width < 1):
            raise ValueError(
                f"Modality {self.name!r}: `width` must be a positive integer for a "
                f"{self.kind!r} modality. Received: width={self.width!r}"
            )
        if is_integer(self.width):  # a numpy integer: a Python int, for JSON configs
            object.__setattr__(self, "width", int(self.width))
        if self.steps is not None:
            if not is_integer(self.steps) or self.steps < 1:
                raise ValueError(
                    f"Modality {self.name!r}: `steps` must be a positive integer or None. "
                    f"Received: steps={self.steps!r}")
            object.__setattr__(self, "steps", int(self.steps))

    def to_config(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_config(cls, config: dict) -> "Modality":
        return cls(**config)


@dataclasses.dataclass(frozen=True)
class Task:
    """One prediction task.

    Args:
        name: the task's name; the model output and the label of the same name.
        num_classes: 2 for a binary task (one sigmoid unit), K > 2 for a K-class
            task (a softmax over K units). Labels are integers in `[0, K)`, and
            -1 marks a missing label, which adds no loss.
        class_names: optional names of the classes, for reports.
        one_vs_rest: train a K-class task as K binary concept tasks ("class k or
            not", the paper's concepts): one sigmoid per class, each with its
            own focal loss and its own weight in the task weighting
            (`concepts` names them `<task>.<k>`). The labels stay the K-class
            integers (a concept's 0/1 label is derived inside the model, -1
            stays missing for every concept), and the model's output `<task>`
            is the K sigmoids normalised to sum to 1, so predictions and
            metrics read as a K-class task's. Only for K > 2: a binary task is
            one concept already, and `one_vs_rest=True` on it is an error.

    Example:

    >>> Task("rating", num_classes=5).is_binary
    False
    >>> Task("rating", num_classes=3, one_vs_rest=True).concepts
    ['rating.0', 'rating.1', 'rating.2']
    """

    name: str
    num_classes: int = 2
    class_names: tuple | None = None
    one_vs_rest: bool = False

    def __post_init__(self):
        _check_name(self.name, "task")
        if not is_integer(self.num_classes) or self.num_classes < 2:
            raise ValueError(
                f"Task {self.name!r}: `num_classes` must be an integer >= 2 "
                f"(2 = binary). Received: num_classes={self.num_classes!r}"
            )
        object.__setattr__(self, "num_classes", int(self.num_classes))  # np.int64 -> int
        if self.class_names is not None:
            object.__setattr__(self, "class_names", tuple(str(c) for c in self.class_names))
            if len(self.class_names) != self.num_classes:
                raise ValueError(
                    f"Task {self.name!r}: {len(self.class_names)} class names for "
                    f"{self.num_classes} classes. Received: class_names={self.class_names!r}"
                )
        if not isinstance(self.one_vs_rest, bool):
            raise ValueError(f"Task {self.name!r}: `one_vs_rest` must be True or False. "
                             f"Received: one_vs_rest={self.one_vs_rest!r}")
        if self.one_vs_rest and self.num_classes == 2:
            raise ValueError(
                f"Task {self.name!r}: `one_vs_rest=True` splits a K-class task (K > 2) into "
                "K binary concepts; a binary task is one concept already. Received: "
                "num_classes=2, one_vs_rest=True")

    @property
    def is_binary(self) -> bool:
        return self.num_classes == 2

    @property
    def output_units(self) -> int:
        """1 sigmoid unit for a binary task, K softmax units otherwise."""
        return 1 if self.is_binary else self.num_classes

    @property
    def concepts(self) -> list:
        """The names of the task's weighted losses: `[name]`, or for a
        one-vs-rest task one binary concept per class, `<name>.<k>`."""
        if not self.one_vs_rest:
            return [self.name]
        return [concept_name(self.name, k) for k in range(self.num_classes)]

    def to_config(self) -> dict:
        config = dataclasses.asdict(self)
        if config["class_names"] is not None:
            config["class_names"] = list(config["class_names"])
        return config

    @classmethod
    def from_config(cls, config: dict) -> "Task":
        return cls(**config)
