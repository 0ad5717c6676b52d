"""The VM tier: a qemu guest with a normal Debian kernel, for what this host's kernel cannot do."""
