"""Test tiers: the default run skips `large` tests unless --run_large or `-m large` asks for them."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import pytest  # noqa: E402


def pytest_addoption(parser):
    parser.addoption("--run_large", action="store_true", default=False, help="also run tests marked large")


def pytest_collection_modifyitems(config, items):
    markexpr = config.getoption("-m") or ""
    if config.getoption("--run_large") or "large" in markexpr.replace("not large", ""):
        return
    skip = pytest.mark.skip(reason="large: run with --run_large or -m large")
    for item in items:
        if "large" in item.keywords:
            item.add_marker(skip)
