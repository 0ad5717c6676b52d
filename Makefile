# amanda-dr: make setup | test | demo | bench
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PYTHON ?= /usr/bin/python3

.PHONY: setup test unit demo demo-tui bench vm-image drill-sources drill iso clean

# make setup: the Debian packages come from the tool inventory
# (essentials/inventory.py), the project's Python dependencies from Debian too,
# so the tests run on the interpreter and library versions the live image carries
setup:
	@test "$$(id -u)" = 0 || { echo "make setup must run as root"; exit 1; }
	apt-get update -qq
	test -x $(PYTHON) || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		$$($(PYTHON) -m essentials.inventory packages setup)
	# the venv sees Debian's python3-* packages; pip adds only this project (no downloads)
	grep -qsx 'include-system-site-packages = true' $(VENV)/pyvenv.cfg \
		&& grep -qsx 'home = /usr/bin' $(VENV)/pyvenv.cfg || { rm -rf $(VENV); \
		$(PYTHON) -m venv --system-site-packages $(VENV); }
	$(PY) -m pip install -q --no-deps --no-build-isolation --no-index -e .
	$(PY) -m essentials.inventory check-python

test:
	$(PY) -m pytest -ra --durations=30

unit:
	$(PY) -m pytest -ra tests/unit

# the VM tier's guest (Debian kernel + debootstrapped root), cached in /var/cache/amanda-dr/vm/ (AMDR_CACHE);
# `make test` builds it when missing
vm-image:
	$(PY) -m tests.vm.image

# the boot drill's three source systems (tests/drill/systems.py: trees, disks,
# a first boot with amdump + amdr-essentials), cached in /var/cache/amanda-dr/drill/ (AMDR_CACHE)
drill-sources:
	$(PY) -m tests.drill.systems a b c

# the boot drill: each source system recovered onto other disks, bus and NIC, then booted;
# prints a table per layout, the last line `drill: N/N layouts booted` (make test runs it too,
# two at a time); DRILL_ARGS="--jobs 2 a c" picks layouts and how many run at once
drill: drill-sources
	$(PY) -m tests.drill.run $(DRILL_ARGS)

# the live image: build/iso/amanda-dr-live-VERSION.iso (image/build.py), built once per
# content hash in /var/cache/amanda-dr/iso/; SITE=site.yaml bakes in site settings
iso:
	$(PY) -m image.build $(if $(SITE),--site $(SITE))

demo:
	$(PY) -m tests.lab.demo

demo-tui:
	$(PY) -m tests.lab.demo_tui

bench:
	rc=0; $(PY) -m tests.lab.bench || rc=1; echo; \
	$(PY) -m tests.lab.bench_restore || rc=1; echo; \
	$(PY) -m tests.lab.bench_essentials || rc=1; echo; \
	$(PY) -m tests.lab.bench_catalog_scan || rc=1; echo; \
	$(PY) -m tests.lab.bench_chains || rc=1; echo; \
	$(PY) -m tests.lab.bench_siteplan || rc=1; exit $$rc

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
