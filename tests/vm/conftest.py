"""Fixtures of the VM tier: the guest image is built (or found in /var/cache/amanda-dr/vm/) once per session."""

import shutil

import pytest

from .guest import build_guest


@pytest.fixture(scope="session")
def guest_image():
    if not shutil.which("qemu-system-x86_64"):
        pytest.fail("qemu-system-x86_64 is missing: run `make setup`")
    return build_guest()
