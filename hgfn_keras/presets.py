"""Presets: the package's recommended settings, and the paper's exact reading.

The layers' own constructor defaults are the paper's reading (docs/DESIGN.md):
`HierarchicalGraphFusion()` is eqs. 1-7 with the paper's padding, and
`DynamicTaskBalancing()` re-balances on the epoch's training losses as III-C
says. The package's defaults, which `build_model` and `TrainConfig` use unless
told `preset="paper"`, add what was chosen on the development sets' **validation**
splits (docs/DESIGN.md, "Defaults and the paper preset", has the numbers):

- HGFN: each modality projected by a learned Dense to the aligned width
  (`alignment="project"`) instead of zero-padded, so that unrelated features of
  different modalities are not summed coordinate by coordinate; and the aligned
  modality vectors kept beside the levels (`keep_modalities=True`), so the fused
  vector never holds less than a concatenation does;
- DMTL: the epoch-end re-balancing reads each task's validation loss
  (`rebalance_on="validation"`), not its training loss, which on small data
  gives the largest weights to the tasks the model has already overfitted;
- modality dropout in training (`modality_dropout`), so that the model answers
  when a modality is missing.

`preset="paper"` leaves all of that out: the layers' own defaults and no
modality dropout.
"""

PRESETS = ("package", "paper")

#: Constructor arguments that `build_model(preset="package")` gives a fusion named
#: here (a `fusion_kwargs` entry of the caller's wins).
PACKAGE_FUSION_KWARGS = {"hgfn": {"alignment": "project", "keep_modalities": True}}
#: Likewise for a multi-task strategy given by name.
PACKAGE_MTL_KWARGS = {"dmtl": {"rebalance_on": "validation"}}
#: `build_model(preset="package")`'s modality dropout.
PACKAGE_MODALITY_DROPOUT = 0.2


def check_preset(preset):
    """Raises a `ValueError` naming `preset` unless it is one of `PRESETS`."""
    if preset not in PRESETS:
        raise ValueError(f"`preset` must be one of {PRESETS}. Received: preset={preset!r}")
    return preset


def preset_fusion_kwargs(preset, fusion, kwargs=None):
    """`kwargs` completed with the preset's arguments for `fusion` (a name).

    >>> preset_fusion_kwargs("package", "hgfn", {"theta": 0.3})
    {'theta': 0.3, 'alignment': 'project', 'keep_modalities': True}
    >>> preset_fusion_kwargs("paper", "hgfn", {"theta": 0.3})
    {'theta': 0.3}
    """
    kwargs = dict(kwargs or {})
    if check_preset(preset) == "package" and isinstance(fusion, str):
        for name, value in PACKAGE_FUSION_KWARGS.get(fusion.lower(), {}).items():
            kwargs.setdefault(name, value)
    return kwargs


def preset_mtl_kwargs(preset, mtl, kwargs=None):
    """`kwargs` completed with the preset's arguments for the strategy `mtl` (a name).

    >>> preset_mtl_kwargs("package", "dmtl")
    {'rebalance_on': 'validation'}
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
