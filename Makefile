# amanda-dr: make setup | test | demo | bench
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PYTHON ?= python3

# Debian packages the product and its tests call
DEB_PACKAGES := amanda-server amanda-client dump fdisk util-linux e2fsprogs xfsprogs \
	dosfstools btrfs-progs lvm2 thin-provisioning-tools mdadm cryptsetup-bin efibootmgr mt-st \
	gnupg openssh-server openssh-client tar gzip acl attr \
	python3 python3-venv python3-pip \
	qemu-system-x86 qemu-utils debootstrap

.PHONY: setup test unit demo bench vm-image clean

setup:
	@test "$$(id -u)" = 0 || { echo "make setup must run as root"; exit 1; }
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(DEB_PACKAGES)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'

test:
	$(PY) -m pytest -ra

unit:
	$(PY) -m pytest -ra tests/unit

# the VM tier's guest (Debian kernel + debootstrapped root), cached under build/vm/;
# `make test` builds it when missing
vm-image:
	$(PY) -m tests.vm.image

demo:
	$(PY) -m tests.lab.demo

bench:
	rc=0; $(PY) -m tests.lab.bench || rc=1; echo; \
	$(PY) -m tests.lab.bench_essentials || rc=1; echo; \
	$(PY) -m tests.lab.bench_catalog_scan || rc=1; echo; \
	$(PY) -m tests.lab.bench_chains || rc=1; exit $$rc

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
