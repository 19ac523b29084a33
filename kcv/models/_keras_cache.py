"""Finding pretrained weight files in Keras' download cache, without downloading."""
from __future__ import annotations

import os


def keras_cache_dir() -> str:
    """Keras' cache root as keras.utils.get_file uses it: $KERAS_HOME or ~/.keras."""
    return os.path.expanduser(os.environ.get("KERAS_HOME", os.path.join("~", ".keras")))


def find_cached(file_name: str, cache_dir: str | None = None) -> tuple[str | None, list[str], str]:
    """(path or None, the places looked in, the cache root) for `<root>/models/<file_name>`.

    When the root is not writable Keras keeps its downloads in /tmp/.keras, so look there too.
    """
    root = cache_dir or keras_cache_dir()
    candidates = [os.path.join(root, "models", file_name)]
    if not os.access(root, os.W_OK):
        candidates.append(os.path.join("/tmp", ".keras", "models", file_name))
    found = next((p for p in candidates if os.path.isfile(p)), None)
    return found, candidates, root
