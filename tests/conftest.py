import os

import pytest


def pytest_collection_modifyitems(config, items):
    # integration and vm tests need root; CI runs as root, so there they always run
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="needs root (loop devices, mounts, Amanda)")
    for item in items:
        if "integration" in item.keywords or "vm" in item.keywords:
            item.add_marker(skip)
