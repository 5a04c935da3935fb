"""Look-up of a component by name or instance (fusions, task weightings)."""


def resolve(value, registry, base_class, what, kwargs):
    """`registry[value](**kwargs)` for a name, `value` itself for a `base_class` instance.

    Args:
        value: a name in `registry` (case-insensitive) or an instance of `base_class`.
        registry: `{name: class}`.
        base_class: the class an instance must derive from.
        what: how errors name the component ("fusion", "task weighting").
        kwargs: constructor arguments, only for a component given by name.

    >>> resolve("a", {"a": dict}, dict, "thing", {"x": 1})
    {'x': 1}
    """
    if isinstance(value, base_class):
        if kwargs:
            raise ValueError(
                f"Constructor arguments are for a {what} given by name; this one is already "
                f"built. Received: {sorted(kwargs)}"
            )
        return value
    if not isinstance(value, str) or value.lower() not in registry:
        raise ValueError(
            f"Unknown {what} {value!r}. Use one of {sorted(registry)} or a "
            f"{base_class.__name__} layer."
        )
    return registry[value.lower()](**kwargs)
