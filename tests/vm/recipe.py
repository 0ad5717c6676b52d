"""What goes into the test guest, and the cache key that names the built image.

The guest exists because this host's kernel has no device-mapper, md or vfat:
it runs a normal Debian kernel with the tools amanda-dr calls, so the LVM, MD
RAID, LUKS and btrfs paths run for real.  Everything the image depends on is
in this module or in the two scripts beside it, and all of it feeds the key:
change a package, a script or RECIPE_VERSION and the next build makes a new
image instead of reusing a stale one.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from essentials import inventory

HERE = Path(__file__).resolve().parent
BUILD_SCRIPT = HERE / "build-root.sh"
INIT_SCRIPT = HERE / "guest-init.sh"
GUEST_INIT_PATH = "/usr/local/sbin/amdr-vm-init"

# bump when the build steps in image.py change in a way the scripts do not show
RECIPE_VERSION = 1
SUITE = "bookworm"  # Python 3.11, like the host and the live image
DEFAULT_MIRROR = "http://deb.debian.org/debian"

# Debian packages only (no pip in the guest): the project's Python
# dependencies come from Debian, as they will on the live image.  The tools
# and Python packages come from the tool inventory's "guest" profile; what is
# here is what the guest itself needs around them.
GUEST_ONLY = (
    # the kernel (its modules: dm-*, md/raid*, btrfs, vfat, 9p, virtio) and boot
    "linux-image-amd64", "initramfs-tools", "zstd", "kmod", "udev",
    # partition tools the tests use beside the product's, a shell's worth of tools
    "gdisk", "procps", "openssh-client", "openssh-server", "acl", "attr",
)
PACKAGES = tuple(sorted(set(GUEST_ONLY) | set(inventory.packages("guest"))))

# what the initrd needs to find and mount the root disk; the rest of the
# kernel's modules are on the root filesystem
INITRD_MODULES = ("virtio_pci", "virtio_blk", "ext4", "crc32c_generic")


def recipe() -> dict:
    """The inputs of a build, as plain data (saved beside the image)."""
    return {
        "version": RECIPE_VERSION,
        "suite": SUITE,
        "packages": sorted(PACKAGES),
        "initrd_modules": list(INITRD_MODULES),
        "build_script": BUILD_SCRIPT.read_text(),
        "init_script": INIT_SCRIPT.read_text(),
    }


def cache_key() -> str:
    blob = json.dumps(recipe(), sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
