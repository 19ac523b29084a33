"""Embedded, deterministic data generators that write the on-disk layout of a real source.

shapes (Kaggle CIFAR-10 / class folders), dogs (Kaggle dog breeds), sprites (image folders),
bananas (the book's banana detection) and toy_gaussian (the toy GAN's points); the registry
`GENERATORS` names each with the source spec that reads it, and `write` generates one safely.
"""
from kcv.data.synthetic import bananas, dogs, shapes, sprites, toy_gaussian  # noqa: F401
from kcv.data.synthetic.registry import GENERATORS, Generator, get_generator, list_generators, write  # noqa: F401

__all__ = ["GENERATORS", "Generator", "bananas", "dogs", "get_generator", "list_generators", "shapes",
           "sprites", "toy_gaussian", "write"]
