"""Plain descriptions of a model's modalities and tasks.

A `Modality` says what one input looks like; a `Task` says what one output predicts.
Both are small frozen dataclasses that survive a JSON round trip (`to_config` /
`from_config`), so a model built from them can be saved and rebuilt.
"""

import dataclasses

MODALITY_KINDS = ("text", "vector", "sequence")


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
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise ValueError(
                "A modality name must be a Python identifier (it becomes an input "
                f"name). Received: name={self.name!r}"
            )
        if self.kind not in MODALITY_KINDS:
            raise ValueError(
                f"Modality {self.name!r}: `kind` must be one of {MODALITY_KINDS}. "
                f"Received: kind={self.kind!r}"
            )
        if self.kind != "text" and (not isinstance(self.width, int) or self.width < 1):
            raise ValueError(
                f"Modality {self.name!r}: `width` must be a positive integer for a "
                f"{self.kind!r} modality. Received: width={self.width!r}"
            )

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

    Example:

    >>> Task("rating", num_classes=5).is_binary
    False
    """

    name: str
    num_classes: int = 2
    class_names: tuple | None = None

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise ValueError(
                "A task name must be a Python identifier (it becomes an output "
                f"name). Received: name={self.name!r}"
            )
        if not isinstance(self.num_classes, int) or self.num_classes < 2:
            raise ValueError(
                f"Task {self.name!r}: `num_classes` must be an integer >= 2 "
                f"(2 = binary). Received: num_classes={self.num_classes!r}"
            )
        if self.class_names is not None:
            object.__setattr__(self, "class_names", tuple(str(c) for c in self.class_names))
            if len(self.class_names) != self.num_classes:
                raise ValueError(
                    f"Task {self.name!r}: {len(self.class_names)} class names for "
                    f"{self.num_classes} classes. Received: class_names={self.class_names!r}"
                )

    @property
    def is_binary(self) -> bool:
        return self.num_classes == 2

    @property
    def output_units(self) -> int:
        """1 sigmoid unit for a binary task, K softmax units otherwise."""
        return 1 if self.is_binary else self.num_classes

    def to_config(self) -> dict:
        config = dataclasses.asdict(self)
        if config["class_names"] is not None:
            config["class_names"] = list(config["class_names"])
        return config

    @classmethod
    def from_config(cls, config: dict) -> "Task":
        return cls(**config)
