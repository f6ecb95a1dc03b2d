# maskwatch — every target creates .venv on first use, so each works on a fresh clone.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
PYTHON  := $(BIN)/python
STAMP   := $(VENV)/.installed-dev
DATA    ?= ../shared/data/prajna
NAME    ?= inception

.PHONY: setup test clean

$(STAMP): pyproject.toml
	test -x $(PYTHON) || $(PY) -m venv $(VENV)
	$(PYTHON) -m pip install -q --upgrade pip
	$(PYTHON) -m pip install -q -e '.[dev]'
	touch $@

setup: $(STAMP)  ## create .venv with everything a workstation needs

test: $(STAMP)  ## run the whole test suite
	$(PYTHON) -m pytest

clean:  ## remove the venv and caches (keeps models)
	rm -rf $(VENV) .pytest_cache
	find . -name __pycache__ -prune -exec rm -rf {} +

# --- Train and export on a workstation. DATA may name several class-folder datasets.
# TRAIN_ARGS passes more flags, e.g. TRAIN_ARGS="--weights none --input-size 128".
# The shared data comes from the one setting the tests use too (MASKWATCH_DATA).
MASKWATCH_DATA ?= ../shared/data
SCENES       ?= $(MASKWATCH_DATA)/scenes
# The scenes split once by photo: scene-faces cuts only its train photos, eval scores its eval ones.
SPLIT        ?= splits/scenes.json
SCENE_FACES  ?= build/scene-faces
# The bundled model's classes; SCENE_LABELS= (empty) keeps mask_weared_incorrect too.
SCENE_LABELS ?= with_mask,without_mask
TRAIN_ARGS  ?=
EXPORT_ARGS ?=
.PHONY: train export bench-models scene-faces detectors

train: $(STAMP)  ## fine-tune InceptionV3 on DATA into models/NAME
	$(PYTHON) -m train $(foreach d,$(DATA),--data $(d)) --out models/$(NAME) $(TRAIN_ARGS)

export: $(STAMP)  ## TFLite float32/float16/dynamic/int8 of models/NAME, parity-gated, + card.json
	$(PYTHON) -m export --model models/$(NAME)/model.keras $(EXPORT_ARGS)

bench-models: $(STAMP)  ## latency of each published format of models/NAME at 1, 2 and 4 threads
	$(PYTHON) -m export.bench --model models/$(NAME)

scene-faces: $(STAMP)  ## the shipped detector's face crops from the training photos of SPLIT, as class folders for DATA
	$(PYTHON) -m train.prepare --voc $(SCENES) --split $(SPLIT) --out $(SCENE_FACES) $(if $(SCENE_LABELS),--labels $(SCENE_LABELS))

detectors: $(STAMP)  ## every detector side by side on the shared scenes, per part of SPLIT
	$(PYTHON) -m edge.measure.compare_detectors --scenes $(SCENES) --split $(SPLIT) --json build/detectors.json

# --- Run on the edge (issue 3). Without SOURCE, run and bench use sample frames built from
# skimage's astronaut (build/demo/frames), so they work with no camera and no data; GPIO is
# simulated (gpiozero's mock pins) off a Pi. MODEL defaults to the bundled model.
MODEL   ?= models/default
SOURCE  ?=
CONFIG  ?=
DEMO    := build/demo
EDGE_CONFIG = $(if $(CONFIG),--config $(CONFIG))
.PHONY: run eval bench demo demo-frames

demo-frames: $(STAMP)
	$(PYTHON) -m edge demo --frames-only --out $(DEMO)

demo: $(STAMP)  ## the pipeline on astronaut frames: annotated images + events in build/demo
	$(PYTHON) -m edge demo $(EDGE_CONFIG) --model $(MODEL) --out $(DEMO)

run: $(if $(SOURCE),$(STAMP),demo-frames)  ## the service loop on SOURCE (default: the demo frames), annotated into build/run
	GPIOZERO_PIN_FACTORY=$${GPIOZERO_PIN_FACTORY:-mock} $(PYTHON) -m edge run $(EDGE_CONFIG) \
		--model $(MODEL) --source $(or $(SOURCE),$(DEMO)/frames) --annotate build/run

eval: $(STAMP)  ## detection and mask accuracy of the whole pipeline on the held-out photos of SPLIT
	$(PYTHON) -m edge eval $(EDGE_CONFIG) --model $(MODEL) --scenes $(SCENES) --split $(SPLIT) \
		--json build/eval-scenes.json

bench: $(if $(SOURCE),$(STAMP),demo-frames)  ## per-stage latency at 640x480, one face, vs the seed-style loop
	$(PYTHON) -m edge bench $(EDGE_CONFIG) --model $(MODEL) --source $(or $(SOURCE),$(DEMO)/frames) \
		--json build/bench.json

# --- Deploy on a Raspberry Pi (issue 4). install/uninstall need root: sudo make install.
# DESTDIR=, DRY_RUN=1, SKIP_PIP=1, FORCE=1 and PURGE=1 are passed to the scripts.
.PHONY: install uninstall check-arm

install:  ## install or upgrade the systemd service on this Pi (keeps config and state)
	deploy/install.sh

uninstall:  ## remove the service and code; PURGE=1 also removes config, state and user
	deploy/uninstall.sh

check-arm:  ## resolve the edge extra to arm64 wheels for Bookworm/Trixie (needs PyPI)
	PYTHON=$(PY) deploy/check-arm.sh
