"""Name -> model builder registry: `get_model("resnet18", num_classes=10)`."""
from __future__ import annotations

from typing import Any, Callable

import keras

_BUILDERS: dict[str, Callable[..., keras.Model]] = {}


def register(name: str) -> Callable[[Callable[..., keras.Model]], Callable[..., keras.Model]]:
    """Decorator that registers a builder under `name`; a duplicate name raises ValueError."""

    def wrap(builder: Callable[..., keras.Model]) -> Callable[..., keras.Model]:
        if name in _BUILDERS:
            raise ValueError(f"model {name!r} is already registered")
        _BUILDERS[name] = builder
        return builder

    return wrap


def get_model(name: str, **kwargs: Any) -> keras.Model:
    """Build the registered model `name` with keyword arguments."""
    try:
        builder = _BUILDERS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(list_models())}") from None
    return builder(**kwargs)


def list_models() -> list[str]:
    return sorted(_BUILDERS)
