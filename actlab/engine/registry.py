"""Name-keyed registries: build an object from ``"name"`` or ``{"name": ..., **kwargs}``."""

from __future__ import annotations

from typing import Any


def build(kind: str, spec: str | dict, classes: dict[str, type], aliases: dict[str, str]) -> Any:
    """Instantiate ``classes[name](**kwargs)`` from a spec.

    Parameters
    ----------
    kind : str
        What is being built ("activation", "initializer", ...), for error messages.
    spec : str or dict
        A registered name or alias, or a mapping with a ``"name"`` key and keyword arguments.
    classes : dict
        Registered names to classes.
    aliases : dict
        Alternative names to registered names.

    Raises
    ------
    ValueError
        For a malformed spec, an unknown name (the message lists the valid names) or keyword
        arguments the class does not take.
    """
    if isinstance(spec, str):
        name, kwargs = spec, {}
    elif isinstance(spec, dict) and "name" in spec:
        name, kwargs = spec["name"], {k: v for k, v in spec.items() if k != "name"}
    else:
        raise ValueError(f"an {kind} is a name or a mapping with a 'name' key, got {spec!r}")
    key = aliases.get(name, name)
    if key not in classes:
        raise ValueError(f"unknown {kind} {name!r}; valid names: {', '.join(sorted(classes))}")
    try:
        return classes[key](**kwargs)
    except TypeError as err:
        raise ValueError(f"bad parameters for {kind} {name!r}: {err}") from None
