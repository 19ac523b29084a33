"""Model builders and the registry.

Every module in this package registers its builders on import. They are imported on first use
(`kcv.models.resnet18`, `get_model`, `list_models`), so adding a model means adding a module.
"""
from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from kcv.models import registry as _registry
from kcv.models.registry import register  # noqa: F401

_loaded = False


def _load_all() -> None:
    global _loaded
    if _loaded:
        return
    for info in pkgutil.iter_modules(__path__):
        if info.name != "registry" and not info.name.startswith("_"):
            module = importlib.import_module(f"{__name__}.{info.name}")
            # Importing kcv/models/densenet.py binds `kcv.models.densenet` to the module; the
            # public name is the builder of the same name (kcv.models.densenet(num_classes=...)).
            builder = getattr(module, info.name, None)
            if callable(builder):
                globals()[info.name] = builder
    _loaded = True


def get_model(name: str, **kwargs: Any):
    """Build the registered model `name`: `get_model("resnet18", num_classes=10)`."""
    _load_all()
    return _registry.get_model(name, **kwargs)


def list_models() -> list[str]:
    _load_all()
    return _registry.list_models()


def __getattr__(name: str) -> Any:
    # Builders and classes defined in submodules, e.g. kcv.models.resnet18 or kcv.models.GAN.
    _load_all()
    if name in globals():
        return globals()[name]
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, name) and not name.startswith("_"):
            return getattr(module, name)
    raise AttributeError(f"module 'kcv.models' has no attribute {name!r}")
