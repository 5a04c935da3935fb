"""`build_model`: modality inputs → encoders → fusion → one head per task."""

import warnings

import keras

from hgfn_keras.feature_checks import MASK_KEY
from hgfn_keras.feature_normalization import FeatureNormalization
from hgfn_keras.fusion import MissingPlaceholder, ModalityDropout, get_fusion
from hgfn_keras.multitask import HEADS, MultiTaskModel, get_task_weighting
from hgfn_keras.multitask.concept_probabilities import ConceptProbabilities
from hgfn_keras.multitask.ensemble import (
    MEMBERS_SUFFIX,
    EnsembleAdapter,
    EnsembleDense,
    MemberMean,
    check_ensemble,
    member_output_name,
)
from hgfn_keras.multitask.mti_net import mtinet_heads
from hgfn_keras.multitask.task_weightings import MTINET_MOVED
from hgfn_keras.presets import (
    check_preset,
    preset_fusion_kwargs,
    preset_modality_dropout,
    preset_mtl_kwargs,
)
from hgfn_keras.specs import Modality, Task
from hgfn_keras.utils.arguments import is_number


def build_model(
    modalities,
    tasks,
    fusion="hgfn",
    fusion_kwargs=None,
    encoders=None,
    head_units=64,
    dropout=0.1,
    input_dropout=0.0,
    use_modality_mask=True,
    modality_dropout=None,
    missing_placeholder=False,
    mtl="dmtl",
    mtl_kwargs=None,
    beta=0.0,
    shared_units=None,
    heads="dense",
    ensemble=1,
    normalize=True,
    normalization_data=None,
    preset="package",
    name="hgfn_model",
):
    """Builds a multi-task model: one input per modality, one output per task.

    Each vector and sequence modality is first standardised by a
    `FeatureNormalization` layer (with `normalize=True`): raw features go in,
    and the statistics of the training rows where the modality is present are
    weights of the model, so a saved or served model scales raw inputs the same
    way. They are set by `normalization_data`, by `model.adapt(x_train)`, or by
    the first `fit` on numpy inputs. Then each modality goes through its encoder
    to one vector (text: a `TextEncoder`,
    which must be given; vector: as it is; sequence: the mean over steps until a
    temporal encoder is given), the fusion makes one vector of the M, and every
    task has its own head: Dense(head_units, relu), Dropout, and Dense(1,
    sigmoid) for a binary task or Dense(K, softmax) for a K-class one. The last
    Dense of each head is the paper's "last task-specific layer". A one-vs-rest
    task (`Task(..., one_vs_rest=True)`) keeps the hidden Dense and Dropout,
    then has K concept heads Dense(1, sigmoid) named `<task>.<k>` (each its
    own last task-specific layer, in `model.handles.heads`, and a network
    output of that name, which `predict` returns too) and the output `<task>`:
    the K sigmoids normalised to sum to 1 (`ConceptProbabilities`), so that
    `predict`, the metrics and the SavedModel read it as a K-class task.

    Args:
        modalities: a list of `Modality` (at least 2).
        tasks: a list of `Task` (at least 1).
        fusion: a fusion name (`"hgfn"`, `"cfc"`) or a `Fusion` layer.
        fusion_kwargs: constructor arguments for a fusion given by name.
        encoders: `{modality name: keras layer}` mapping that modality's input to
            a vector `[batch, width]`. Required for text modalities.
        head_units: width of each task head's hidden layer.
        dropout: dropout rate in each head.
        input_dropout: dropout on the normalised features of the vector and
            sequence modalities, in training only: one rate for all of them, or
            `{modality name: rate}` (those left out: none). For very wide,
            sparse inputs (thousands of word counts); 0 or None: none.
        use_modality_mask: add a `modality_mask` input `[batch, M]` (1 = present).
        modality_dropout: during training only, each present modality of a row
            is masked with this probability (never all of a row's modalities;
            `ModalityDropout`), so the model learns to answer when a modality
            is missing. Needs `use_modality_mask`. None: the preset's (package
            `PACKAGE_MODALITY_DROPOUT`, paper 0); 0: off.
        missing_placeholder: where a modality's mask is 0, use a learned vector
            per modality (`MissingPlaceholder`) and give the fusion all M as
            present; False (default, and the paper's reading): zeroed slots the
            fusion masks. Needs `use_modality_mask`.
        mtl: the task weighting: `"dmtl"` (default, the paper's dynamic
            task balancing), `"lsew"` (equal weights), `"moo"` (MGDA-UB),
            `"gradnorm"`, `"uncertainty"`, `"dwa"`, or a `TaskWeighting` layer.
            `"mtinet"` (the paper's MTI-NET row; deprecated, until 0.3) is short
            for `heads="mtinet", mtl="lsew"`.
        mtl_kwargs: constructor arguments for a task weighting given by name (DMTL:
            `alpha`, `learning_rate`, `grad_norm_layer`, `rebalance`).
        beta: the focal loss' β (0: cross-entropy).
        shared_units: if set, a shared Dense(shared_units, relu) named "shared"
            between the fusion and the heads (the "last shared layer" that
            `grad_norm_layer="shared"` needs; added with `head_units` when such a
            weighting is chosen and this is None). None: no such layer.
        heads: the task heads' architecture: `"dense"` (default, one
            Dense-Dropout-Dense head per task) or `"mtinet"` (MTI-Net's
            intermediate predictions and distillation, `mtinet_heads`).
        ensemble: k ≥ 1 members of the task heads (TabM-style,
            `hgfn_keras.multitask.ensemble`): each member sees the fused vector
            through its own trained scales (random signs at first) and has its
            own last layer per task; the hidden layers and the fusion are
            shared. Training minimises the mean of the members' losses; each
            output is the mean of the members' probabilities, so `predict`,
            the `.keras` file and the SavedModel look as with 1 (the default:
            no ensemble). Dense heads only.
        normalize: standardise each vector and sequence modality inside the
            model (True).
        normalization_data: optional training inputs `{modality name: array}`
            (with `modality_mask` if some rows miss a modality) to adapt the
            normalisation to; without it, `fit` adapts on its numpy inputs.
        preset: `"package"` (default): a fusion or task weighting given by name gets
            the package's recommended arguments where `fusion_kwargs` /
            `mtl_kwargs` do not set them (HGFN: projected to 128 by Dense +
            ReLU, its modality vectors kept beside the levels, weighted; DMTL:
            no epoch-end re-balancing), and modality dropout
            (`hgfn_keras.presets.PACKAGE_MODALITY_DROPOUT`); `"paper"`: the
            layers' own defaults, the paper's exact reading, and no modality
            dropout. See `hgfn_keras.presets`.
        name: the model's name.

    Returns:
        A `MultiTaskModel` (not yet compiled) holding handles to its fusion
        layer, its shared layer and each task's last layer (`model.handles`).

    Example:

    >>> import numpy as np, keras
    >>> from hgfn_keras import Modality, Task, build_model
    >>> model = build_model(
    ...     [Modality("image", width=8), Modality("audio", width=4)],
    ...     [Task("flood", 2), Task("damage", 3)],
    ...     fusion="hgfn", fusion_kwargs={"theta": 0.5})
    >>> model.compile(optimizer=keras.optimizers.Adam(1e-3))
    >>> x = {"image": 100 * np.random.rand(16, 8), "audio": np.random.rand(16, 4)}
    >>> y = {"flood": np.random.randint(0, 2, 16), "damage": np.random.randint(0, 3, 16)}
    >>> history = model.fit(x, y, epochs=1, verbose=0)  # adapts the normalisation to x
    >>> sorted(model.predict(x, verbose=0))
    ['damage', 'flood']
    >>> model.adapt(x)  # or explicitly, e.g. before fitting on a tf.data.Dataset
    """
    modalities, tasks, encoders, input_rates = _check_specs(modalities, tasks, encoders,
                                                            input_dropout)
    fusion, mtl, heads, modality_dropout = _check_choices(
        tasks, fusion, mtl, heads, preset, use_modality_mask, modality_dropout,
        missing_placeholder)
    task_weighting = get_task_weighting(mtl, **preset_mtl_kwargs(preset, mtl, mtl_kwargs))
    ensemble = check_ensemble(ensemble, heads)
    if getattr(task_weighting, "grad_norm_layer", None) == "shared":
        shared_units = shared_units or head_units  # GradNorm's last shared layer

    inputs, vectors = _modality_vectors(modalities, encoders, normalize, input_rates)
    fusion_layer, fused, mask_input = _fuse(
        vectors, modalities, fusion, fusion_kwargs, preset, use_modality_mask,
        modality_dropout, missing_placeholder)
    if mask_input is not None:
        inputs[MASK_KEY] = mask_input
    shared_layer, outputs, head_layers, auxiliary, members = _heads(
        fused, tasks, heads, head_units, dropout, shared_units, ensemble)

    # A list of inputs (not a dict): a dict input structure is compared by type at
    # call time, and TF's tracking wraps it when the model is exported.
    network = keras.Model(list(inputs.values()), outputs, name=f"{name}_network")
    model = MultiTaskModel(network, tasks, task_weighting=task_weighting, beta=beta,
                           fusion_layer=fusion_layer, shared_layer=shared_layer,
                           head_layers=head_layers, auxiliary_outputs=auxiliary,
                           member_outputs=members, name=name)
    if normalization_data is not None:
        model.adapt(normalization_data)
    return model


# The parts of `build_model`, in the order it calls them. Layers are created in
# the same order as before the split (names and weights order are part of a
# saved file's contract: tests/test_layout.py).


def _check_specs(modalities, tasks, encoders, input_dropout):
    """Checks the modalities, the tasks and the encoders' names; returns them as lists/dict."""
    modalities = list(modalities)
    tasks = list(tasks)
    for m in modalities:
        if not isinstance(m, Modality):
            raise TypeError(f"`modalities` must hold `Modality` objects. Received: {m!r}")
    for t in tasks:
        if not isinstance(t, Task):
            raise TypeError(f"`tasks` must hold `Task` objects. Received: {t!r}")
    names = [m.name for m in modalities]
    if len(modalities) < 2:
        raise ValueError(f"A multimodal model needs at least 2 modalities. Received: {names}")
    if len(set(names)) != len(names) or MASK_KEY in names:
        raise ValueError(
            f"Modality names must be distinct and not {MASK_KEY!r}. Received: {names}"
        )
    task_names = [t.name for t in tasks]
    if not tasks or len(set(task_names)) != len(task_names):
        raise ValueError(f"Task names must be distinct, at least one. Received: {task_names}")
    encoders = dict(encoders or {})
    unknown = [k for k in encoders if k not in names]
    if unknown:
        raise ValueError(f"`encoders` names unknown modalities {unknown}. Modalities: {names}")
    input_rates = (dict(input_dropout) if isinstance(input_dropout, dict)
                   else {n: input_dropout or 0.0 for n in names})
    for key, rate in input_rates.items():
        if key not in names or not is_number(rate) or not 0 <= rate < 1:
            raise ValueError("`input_dropout` must be a rate in [0, 1) or a {modality: rate} "
                             f"dict of known modalities {names}. Received: "
                             f"input_dropout={input_dropout!r}")
    return modalities, tasks, encoders, input_rates


def _check_choices(tasks, fusion, mtl, heads, preset, use_modality_mask, modality_dropout,
                   missing_placeholder):
    """Checks the preset and the fusion / weighting / heads / mask choices.

    Returns `(fusion, mtl, heads, modality_dropout)`: names lower-cased,
    `mtl="mtinet"` rewritten to MTI-Net heads (with its deprecation warning),
    and the preset's modality dropout where `modality_dropout` is None.
    """
    check_preset(preset)
    # Names are case-insensitive: normalised once, so that the presets and the
    # registries see the same name (`fusion="HGFN"` gets the package's preset).
    fusion = fusion.lower() if isinstance(fusion, str) else fusion
    mtl = mtl.lower() if isinstance(mtl, str) else mtl
    if modality_dropout is None:  # the preset's; none without a mask to act on
        modality_dropout = preset_modality_dropout(preset) if use_modality_mask else 0.0
    if not is_number(modality_dropout) or not 0 <= modality_dropout < 1:
        raise ValueError("`modality_dropout` must be a number in [0, 1) or None. "
                         f"Received: modality_dropout={modality_dropout!r}")
    if modality_dropout and not use_modality_mask:
        raise ValueError("`modality_dropout` acts on the modality mask: it needs "
                         f"use_modality_mask=True. Received: modality_dropout={modality_dropout!r}")
    if not isinstance(missing_placeholder, bool) or (missing_placeholder and not use_modality_mask):
        raise ValueError("`missing_placeholder` must be True or False, and True needs "
                         "use_modality_mask=True. Received: "
                         f"missing_placeholder={missing_placeholder!r}")
    if mtl == "mtinet":  # a choice of heads, once listed among the weightings
        # stacklevel 3: the warning names the line that called `build_model`.
        warnings.warn(MTINET_MOVED, FutureWarning, stacklevel=3)
        heads, mtl = "mtinet", "lsew"
    if heads not in HEADS:
        raise ValueError(f"`heads` must be one of {HEADS}. Received: heads={heads!r}")
    one_vs_rest = [t.name for t in tasks if t.one_vs_rest]
    if heads == "mtinet" and one_vs_rest:
        raise ValueError(f"MTI-Net heads (`heads='mtinet'`) do not support one-vs-rest "
                         f"tasks yet. Received one-vs-rest task(s): {one_vs_rest}")
    return fusion, mtl, heads, modality_dropout


def _modality_vectors(modalities, encoders, normalize, input_rates):
    """One `keras.Input` per modality and its vector `[batch, width]`.

    Each input is normalised (vector and sequence modalities, with
    `normalize`), dropped out in training at its rate in `input_rates`
    (`{modality: rate}`; 0 or absent: no layer), then encoded: by its encoder in `encoders`, a sequence
    without one by the mean over steps, a vector as it is.
    Returns `(inputs, vectors)`, two dicts keyed by modality name.
    """
    inputs, vectors = {}, {}
    for m in modalities:
        if m.kind == "text":
            inputs[m.name] = keras.Input(shape=(), dtype="string", name=m.name)
            if m.name not in encoders:
                raise ValueError(
                    f"Text modality {m.name!r} needs an encoder in `encoders` (for "
                    "example `TextEncoder.from_texts(train_texts)`)."
                )
        elif m.kind == "vector":
            inputs[m.name] = keras.Input(shape=(m.width,), name=m.name)
        else:
            inputs[m.name] = keras.Input(shape=(m.steps, m.width), name=m.name)
        features = inputs[m.name]
        if normalize and m.kind != "text":
            features = FeatureNormalization(m.name, name=f"{m.name}_normalization")(features)
        if m.kind != "text" and input_rates.get(m.name):
            features = keras.layers.Dropout(input_rates[m.name],
                                            name=f"{m.name}_input_dropout")(features)
        encoder = encoders.get(m.name)
        if encoder is None and m.kind == "sequence":
            encoder = keras.layers.GlobalAveragePooling1D(name=f"{m.name}_mean_over_steps")
        vector = encoder(features) if encoder is not None else features
        if len(vector.shape) != 2:
            raise ValueError(
                f"The encoder of modality {m.name!r} must return one vector per item "
                f"[batch, width]. Received: shape={tuple(vector.shape)}"
            )
        vectors[m.name] = vector
    return inputs, vectors


def _fuse(vectors, modalities, fusion, fusion_kwargs, preset, use_modality_mask,
          modality_dropout, missing_placeholder):
    """The fusion of the modality vectors into one vector.

    With `use_modality_mask`, a `modality_mask` input (through
    `ModalityDropout` when `modality_dropout`, through `MissingPlaceholder`
    when `missing_placeholder`). Returns `(fusion_layer, fused, mask_input)`,
    `mask_input` None without a mask.
    """
    names = [m.name for m in modalities]
    kwargs = preset_fusion_kwargs(preset, fusion, fusion_kwargs)
    if isinstance(fusion, str):
        kwargs.setdefault("modality_names", names)
        kwargs.setdefault("name", "fusion")
    fusion_layer = get_fusion(fusion, **kwargs)
    mask = mask_input = None
    if use_modality_mask:
        mask = mask_input = keras.Input(shape=(len(modalities),), name=MASK_KEY)
        if modality_dropout:
            mask = ModalityDropout(modality_dropout, name="modality_dropout")(mask)
    if missing_placeholder:  # missing slots hold a learned vector; the fusion sees all M
        vectors = MissingPlaceholder(names, name="missing_placeholder")(vectors, modality_mask=mask)
        mask = None
    fused = fusion_layer(vectors, modality_mask=mask) if mask is not None else fusion_layer(vectors)
    return fusion_layer, fused, mask_input


def _heads(fused, tasks, heads, head_units, dropout, shared_units, ensemble=1):
    """The optional shared layer, then one head per task (`heads`: "dense" or "mtinet").

    Returns `(shared_layer, outputs, head_layers, auxiliary, members)`: the
    shared Dense or None, the network's outputs by name, each task's (or
    concept's) last task-specific layer, MTI-Net's auxiliary outputs (else
    empty) and, with an ensemble, `{output name: its members' output name}`.
    """
    shared_layer = None
    if shared_units:
        shared_layer = keras.layers.Dense(shared_units, activation="relu", name="shared")
        fused = shared_layer(fused)
    auxiliary, members = {}, {}
    if heads == "mtinet":
        outputs, head_layers, auxiliary = mtinet_heads(fused, tasks, head_units, dropout)
    else:
        outputs, head_layers, members = _dense_heads(fused, tasks, head_units, dropout,
                                                     ensemble)
    return shared_layer, outputs, head_layers, auxiliary, members


def _dense_heads(fused, tasks, head_units, dropout, ensemble=1):
    """Dense(head_units, relu), Dropout, then each task's last layer(s); see `build_model`.

    With `ensemble` k > 1 the heads run on `[batch, k, width]` from an
    `EnsembleAdapter`, each last layer is an `EnsembleDense` (k members) and
    each output the `MemberMean` of its members, whose own output
    `<output>_members` the training loss reads.
    """
    outputs, head_layers, members = {}, {}, {}
    if ensemble > 1:
        fused = EnsembleAdapter(ensemble, name="ensemble_adapter")(fused)

    def last_layer(name, units, activation, h):
        # float32 under a mixed policy (Keras' convention for the last layer): the
        # probabilities, the losses and the SavedModel's outputs stay float32.
        if ensemble == 1:
            head_layers[name] = keras.layers.Dense(units, activation=activation, name=name,
                                                   dtype="float32")
            return head_layers[name](h)
        head_layers[name] = EnsembleDense(units, activation=activation, name=name,
                                          dtype="float32")
        members[name] = member_output_name(name)
        outputs[members[name]] = head_layers[name](h)
        return MemberMean(name=f"{name}_mean", dtype="float32")(outputs[members[name]])

    for t in tasks:
        h = keras.layers.Dense(head_units, activation="relu", name=f"{t.name}_hidden")(fused)
        if dropout:
            h = keras.layers.Dropout(dropout, name=f"{t.name}_dropout")(h)
        if t.one_vs_rest:  # K binary concepts, each its own last layer
            for concept in t.concepts:
                outputs[concept] = last_layer(concept, 1, "sigmoid", h)
            outputs[t.name] = ConceptProbabilities(name=t.name)(
                [outputs[c] for c in t.concepts])
            continue
        activation = "sigmoid" if t.is_binary else "softmax"
        outputs[t.name] = last_layer(t.name, t.output_units, activation, h)
    clashes = sorted(set(members.values()) & {n for t in tasks for n in (t.name, *t.concepts)})
    if clashes:
        raise ValueError(f"With an ensemble, each output's members are the output "
                         f"`<name>{MEMBERS_SUFFIX}`, and task(s) already have the "
                         f"name(s) {clashes}: rename them.")
    return outputs, head_layers, members
