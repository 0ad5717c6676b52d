"""The boot drill (issue 12): real bootable Debian 12 source systems, backed up by Amanda, recovered and booted."""
