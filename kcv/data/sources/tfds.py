"""A tensorflow-datasets image classification dataset as a Source (read offline unless asked)."""
from __future__ import annotations

import os
import socket
import urllib.parse
import urllib.request

import numpy as np

from kcv.data.errors import DataError
from kcv.data.images import encode_png
from kcv.data.sources.base import Record, Source, SourceExample

# Most tfds downloads (and its GCS mirror of prepared data) come from here; if it cannot be
# reached, neither can the rest, and tfds would retry for minutes before saying so.
DOWNLOAD_HOST = ("storage.googleapis.com", 443)
CONNECT_TIMEOUT_S = 3.0


def default_data_dir() -> str:
    """The folder tfds reads without a data_dir (TFDS_DATA_DIR when tfds loaded, else ~/tensorflow_datasets)."""
    from tensorflow_datasets.core import constants

    return os.path.expanduser(constants.DATA_DIR)


def network_problem(host: tuple[str, int] = DOWNLOAD_HOST, timeout: float = CONNECT_TIMEOUT_S) -> str | None:
    """None if a TCP connection to `host` (or to the HTTPS proxy, when one is set) opens in time."""
    proxy = urllib.request.getproxies().get("https")
    if proxy:
        parsed = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        host = (parsed.hostname or "", parsed.port or 80)
    try:
        socket.create_connection(host, timeout=timeout).close()
    except OSError as err:
        return f"cannot reach {host[0]}:{host[1]}{' (the https proxy)' if proxy else ''}: {err.strerror or err}"
    return None


class TfdsSource(Source):
    """A tensorflow-datasets dataset read from `data_dir`; never downloads unless `download=True`.

    Ids are `<split>-<index:06d>`. A labelled test split is the source's `eval_split` (the book
    validates on the test split of Fashion-MNIST).
    """

    def __init__(self, name: str, data_dir: str | None = None, download: bool = False,
                 image_key: str = "image", label_key: str = "label"):
        import tensorflow_datasets as tfds  # slow to import: only when a tfds source is opened

        self.name, self.data_dir = name, data_dir
        self._image_key, self._label_key = image_key, label_key
        try:
            self._builder = tfds.builder(name, data_dir=data_dir)
        except Exception as err:  # tfds raises its own DatasetNotFoundError types
            raise DataError(f"tensorflow-datasets has no dataset {name!r} ({type(err).__name__})") from None
        if not self._builder.is_prepared():
            where = os.path.abspath(os.path.expanduser(data_dir)) if data_dir else default_data_dir()
            if not download:
                raise DataError(
                    f"tfds dataset {name!r} is not prepared in {where}: point data_dir (--data_dir) at a "
                    f"folder that holds it, or allow download=True (--download)"
                )
            failed = f"tfds dataset {name!r} is not prepared in {where} and downloading it failed"
            problem = network_problem()
            if problem:
                raise DataError(f"{failed} (no network: {problem}); copy a prepared folder there instead")
            try:
                self._builder.download_and_prepare()
            except Exception as err:  # tfds/requests/gfile each raise their own types
                first = (str(err).strip().splitlines() or [""])[0][:300]
                raise DataError(f"{failed}: {type(err).__name__}: {first}") from None
        info = self._builder.info
        missing = [k for k in (image_key, label_key) if k not in info.features.keys()]
        if missing:
            raise DataError(f"tfds dataset {name!r} has no feature {missing[0]!r} (features: {', '.join(info.features.keys())})")
        self.native_splits = tuple(s for s in ("train", "test") if s in info.splits)
        self.eval_split = "test" if "test" in self.native_splits else None
        self._names = list(info.features[label_key].names)
        self._cache: dict[str, list[tuple[str, np.ndarray, str | None]]] = {}

    def labels(self) -> list[str]:
        # tfds label ids are the class order; keep it (fashion_mnist: T-shirt/top, Trouser, ...).
        return list(self._names)

    def _load(self, split: str) -> list[tuple[str, np.ndarray, str | None]]:
        """[(id, image uint8 (H, W, 3), label)], decoded once per split and cached."""
        splits = self._builder.info.splits
        if split not in splits:
            raise ValueError(f"tfds {self.name} has splits {', '.join(splits)}, not {split!r}")
        if split not in self._cache:
            import tensorflow_datasets as tfds

            ds = self._builder.as_dataset(split=split, shuffle_files=False)
            rows = []
            for i, ex in enumerate(tfds.as_numpy(ds)):
                image = ex[self._image_key]
                if image.ndim == 2 or image.shape[-1] == 1:  # (H, W) or (H, W, 1) grey -> (H, W, 3)
                    image = np.repeat(image.reshape(image.shape[0], image.shape[1], 1), 3, axis=-1)
                label = int(ex[self._label_key])
                rows.append((f"{split}-{i:06d}", image.astype(np.uint8), self._names[label] if label >= 0 else None))
            self._cache[split] = rows
        return self._cache[split]

    def records(self, split: str = "train") -> list[Record]:
        return [Record(i, None, label) for i, _, label in self._load(split)]

    def read(self, record: Record) -> np.ndarray:
        split, _, index = record.id.rpartition("-")
        return self._load(split)[int(index)][1]

    def load(self, split: str = "train", max_image_pixels: int | None = None) -> list[SourceExample]:
        # Images come decoded (tfds checked its files; no header to guard, max_image_pixels is
        # unused): encode each as PNG, losslessly.
        return [SourceExample(i, encode_png(image), label) for i, image, label in self._load(split)]

    def validate(self, read_images: bool = True) -> None:
        return None  # tfds checks its own files
