"""The handles of a `MultiTaskModel`: the layers that the task weightings, export and inspection use."""

import dataclasses

from hgfn_keras.fusion import Fusion


@dataclasses.dataclass(frozen=True)
class Handles:
    """The parts of a `MultiTaskModel`'s network that the task weightings, export and
    inspection use: the fusion layer, the last shared layer (or None) and each
    weighted loss's last layer (`heads`, keyed by `MultiTaskModel.loss_names`:
    a task's name, or a one-vs-rest task's concept names). Kept as one plain
    object (not layer attributes), so that saving walks the layers once,
    through the network."""

    fusion: object = None
    shared: object = None
    heads: dict = dataclasses.field(default_factory=dict)


def find_layer(network, layer, argument):
    """A layer of `network`, given as the layer or its name (or None)."""
    if layer is None:
        return None
    if isinstance(layer, str):
        try:
            return network.get_layer(layer)
        except ValueError:
            raise ValueError(f"`{argument}`: the network has no layer {layer!r}. "
                             f"Received: {argument}={layer!r}") from None
    if not any(layer is candidate for candidate in network.layers):
        raise ValueError(f"`{argument}` must be a layer of the network. "
                         f"Received: {argument}={layer.name!r}")
    return layer


def _find_heads(network, loss_names, head_layers):
    """`{loss name: last layer}`: given, or the layer producing each output."""
    if head_layers is not None:
        unknown = sorted(set(head_layers) - set(loss_names))
        if unknown:
            raise ValueError(f"`head_layers` names unknown tasks {unknown}. "
                             f"Tasks (one-vs-rest ones by concept): {loss_names}")
        return {name: find_layer(network, layer, f"head_layers[{name!r}]")
                for name, layer in head_layers.items()}
    outputs = network.output if isinstance(network.output, dict) else {}
    heads = {}
    for name in loss_names:
        tensor = outputs.get(name)
        for layer in network.layers:
            try:
                produced = layer.output
            except (AttributeError, ValueError):  # called more than once
                continue
            if tensor is not None and produced is tensor:
                heads[name] = layer
    return heads


def find_handles(network, loss_names, fusion_layer=None, shared_layer=None, head_layers=None):
    """The `Handles` of `network`, each given as a layer or its name, or found.

    Args:
        network: the functional network.
        loss_names: the weighted losses' names (`MultiTaskModel.loss_names`).
        fusion_layer: the fusion layer; None: the network's one `Fusion` layer, if any.
        shared_layer: the last shared layer, or None.
        head_layers: `{loss name: last layer}`; None: the layer producing each output
            of that name.
    """
    fusion = find_layer(network, fusion_layer, "fusion_layer")
    if fusion_layer is None:
        fusions = [layer for layer in network.layers if isinstance(layer, Fusion)]
        fusion = fusions[0] if len(fusions) == 1 else None
    return Handles(fusion=fusion, shared=find_layer(network, shared_layer, "shared_layer"),
                   heads=_find_heads(network, loss_names, head_layers))


def require_head_layers(heads, loss_names, who):
    """Raises unless every weighted loss has a head layer with a kernel (for `who`)."""
    missing = [n for n in loss_names if getattr(heads.get(n), "kernel", None) is None]
    if missing:
        raise ValueError(
            f"{who} takes gradient norms on each task's last layer, and the model has "
            f"none with a kernel for task(s) {missing}: pass `head_layers={{task name: "
            "Dense layer}` to `MultiTaskModel`, or name the network's outputs after "
            f"the tasks {loss_names}.")
