"""kcv: the computer-vision chapter of Dive into Deep Learning on Keras 3 + TensorFlow."""
from setuptools import find_packages, setup

setup(
    name="kcv",
    version="0.1.0",
    description="D2L computer vision as Keras 3 / TensorFlow software: library, absl pipelines, SavedModels",
    packages=find_packages(include=["kcv", "kcv.*", "pipelines", "pipelines.*"]),
    python_requires=">=3.10",
    install_requires=[
        "keras>=3.15,<3.16",
        "keras-cv==0.9.0",  # last release: boxes, box-aware augmentation, NMS option, RetinaNet (imported lazily)
        "tensorflow-datasets",
        "importlib_resources",  # tensorflow-datasets 4.9.10 needs it and does not declare it
        "absl-py",
        "tensorboard",  # TensorFlow 2.21 no longer installs it
        "numpy",
        "pillow",
        "matplotlib",
    ],
    extras_require={
        "cpu": ["tensorflow-cpu>=2.21,<2.22"],
        "gpu": ["tensorflow[and-cuda]>=2.21,<2.22"],
        # pycocotools: keras_cv.metrics.BoxCOCOMetrics needs it; kcv's mAP is cross-checked against it
        "test": ["pytest", "pycocotools"],
    },
    entry_points={
        "console_scripts": [
            "kcv-train=pipelines.train:run",
            "kcv-predict=pipelines.predict:run",
            "kcv-anchors=pipelines.anchors:run",
            "kcv-style-transfer=pipelines.style_transfer:run",
            "kcv-optim=pipelines.optim_demo:run",
            "kcv-data=pipelines.data_demo:run",
        ]
    },
)
