"""Class folders: labelled `<class>/*.png` trees and flat unlabelled collections."""
import os

import pytest
from PIL import Image

from kcv.data.errors import DataError
from kcv.data.sources.class_folders import ClassFolderSource
from kcv.data.synthetic import shapes


def test_class_folders_and_flat_folders(tmp_path):
    root = shapes.write_class_folders(str(tmp_path / "cls"), n=40, seed=0, size=16)
    src = ClassFolderSource(root)
    assert len(src.records()) == 40 and src.labels() == sorted(shapes.SHAPE_CLASSES)
    assert src.records()[0].id.count("/") == 1
    Image.new("RGB", (8, 8)).save(os.path.join(root, "loose.png"))
    with pytest.raises(DataError, match="^1 images in .* are not inside a class folder: loose.png$"):
        ClassFolderSource(root)
    unlabelled = ClassFolderSource(root, labelled=False)
    assert len(unlabelled.records()) == 41 and all(r.label is None for r in unlabelled.records())
