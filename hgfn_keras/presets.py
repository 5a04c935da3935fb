"""Presets: the package's recommended settings, and the paper's exact reading.

The layers' own constructor defaults are the paper's reading (docs/DESIGN.md):
`HierarchicalGraphFusion()` is eqs. 1-7 with the paper's padding, and
`DynamicTaskBalancing()` re-balances the task weights at each epoch's end as
III-C says. The package's defaults, which `build_model` and `TrainConfig` use
unless told `preset="paper"`, were chosen on the development sets' **validation**
splits (docs/DESIGN.md, "Defaults and the paper preset", has the numbers):

- HGFN: each modality projected to D = 128 by a learned Dense + ReLU
  (`alignment="project"`, `units=128`, `projection_activation="relu"`) instead
  of zero-padded, so that unrelated features of different modalities are not
  summed coordinate by coordinate and every modality gets a non-linear
  encoding; and the projected modality vectors kept beside the levels, each
  scaled by M times its DAU weight (`keep_modalities="weighted"`), so the fused
  vector never holds less than a concatenation does and the per-sample
  weights still gate it;
- DMTL: TDB (eq. 11) and the focal loss, without the epoch-end re-balancing
  (`rebalance=False`): re-balancing on training losses gives the largest
  weights to the tasks the model has already fitted, and cost up to 0.03 mean
  F1 on validation; read on validation losses or capped it did not do better
  than off;
- modality dropout in training (`modality_dropout`), so that the model answers
  when a modality is missing.

`preset="paper"` leaves all of that out: the layers' own defaults and no
modality dropout.
"""

PRESETS = ("package", "paper")

#: Constructor arguments that `build_model(preset="package")` gives a fusion named
#: here (a `fusion_kwargs` entry of the caller's wins).
PACKAGE_FUSION_KWARGS = {"hgfn": {"alignment": "project", "units": 128,
                                  "projection_activation": "relu",
                                  "keep_modalities": "weighted"}}
#: Likewise for a task weighting given by name.
PACKAGE_MTL_KWARGS = {"dmtl": {"rebalance": False}}
#: `build_model(preset="package")`'s modality dropout.
PACKAGE_MODALITY_DROPOUT = 0.3


def check_preset(preset):
    """Raises a `ValueError` naming `preset` unless it is one of `PRESETS`."""
    if preset not in PRESETS:
        raise ValueError(f"`preset` must be one of {PRESETS}. Received: preset={preset!r}")
    return preset


def preset_fusion_kwargs(preset, fusion, kwargs=None):
    """`kwargs` completed with the preset's arguments for `fusion` (a name).

    >>> preset_fusion_kwargs("package", "hgfn", {"theta": 0.3, "units": 64})["units"]
    64
    >>> sorted(preset_fusion_kwargs("package", "hgfn"))
    ['alignment', 'keep_modalities', 'projection_activation', 'units']
    >>> preset_fusion_kwargs("paper", "hgfn", {"theta": 0.3})
    {'theta': 0.3}
    """
    kwargs = dict(kwargs or {})
    if check_preset(preset) == "package" and isinstance(fusion, str):
        for name, value in PACKAGE_FUSION_KWARGS.get(fusion.lower(), {}).items():
            kwargs.setdefault(name, value)
    return kwargs


def preset_mtl_kwargs(preset, mtl, kwargs=None):
    """`kwargs` completed with the preset's arguments for the task weighting `mtl` (a name).

    >>> preset_mtl_kwargs("package", "dmtl")
    {'rebalance': False}
    >>> preset_mtl_kwargs("package", "lsew")
    {}
    """
    kwargs = dict(kwargs or {})
    if check_preset(preset) == "package" and isinstance(mtl, str):
        for name, value in PACKAGE_MTL_KWARGS.get(mtl.lower(), {}).items():
            kwargs.setdefault(name, value)
    return kwargs


def preset_modality_dropout(preset, modality_dropout=None):
    """`modality_dropout`, or the preset's when it is None (the paper: 0)."""
    if modality_dropout is not None:
        return modality_dropout
    return PACKAGE_MODALITY_DROPOUT if check_preset(preset) == "package" else 0.0
