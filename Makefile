# maskwatch — every target creates .venv on first use, so each works on a fresh clone, and
# installs only what it needs: the edge commands the Pi's packages (plus scikit-image for the
# demo frames), bench also Keras for its seed-style baseline, train/export/test everything.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
PYTHON  := $(BIN)/python
STAMP_EDGE  := $(VENV)/.installed-demo
STAMP_KERAS := $(VENV)/.installed-keras
STAMP_TRAIN := $(VENV)/.installed-train
STAMP       := $(VENV)/.installed-dev
# The shared datasets, as the tests find them (README: Data), and the mask templates beside them.
MASKWATCH_DATA ?= ../shared/data
MASKS   ?= $(dir $(MASKWATCH_DATA))masks
# make faces: the training face set cut from the datasets, with synthetic masks.
FACES   ?= build/faces
DATA    ?= $(FACES)/prajna $(FACES)/scenes $(FACES)/synth
NAME    ?= inception

# $(call install,EXTRAS): the venv, then pip install -e '.[EXTRAS]', then the stamp.
define install
	test -x $(PYTHON) || $(PY) -m venv $(VENV)
	$(PYTHON) -m pip install -q --upgrade pip
	$(PYTHON) -m pip install -q -e '.[$(1)]'
	touch $@
endef

# $(call need,PATH,WHAT): a shell test that stops with one line when data a target reads is
# missing. The need-* targets run it before anything is installed.
need = test -e "$(1)" || { echo "make: $(1) not found: $(2) (see README, Data)" >&2; exit 2; }
comma := ,

.PHONY: setup test pins clean

$(STAMP_EDGE): pyproject.toml
	$(call install,demo)
$(STAMP_KERAS): pyproject.toml
	$(call install,demo$(comma)keras)
$(STAMP_TRAIN): pyproject.toml
	$(call install,train)
$(STAMP): pyproject.toml
	$(call install,dev)
	touch $(STAMP_EDGE) $(STAMP_KERAS) $(STAMP_TRAIN)

setup: $(STAMP)  ## create .venv with everything a workstation needs

test: $(STAMP)  ## run the whole test suite (installs mosquitto and chromium for it when root), then the edge tests on the Pi's versions
	tests/system-packages.sh
	$(PYTHON) -m pytest
	$(PYTHON) tests/pins/run.py

pins: $(STAMP)  ## only the edge tests on the versions a Bookworm and a Trixie Pi get (tests/pins)
	$(PYTHON) tests/pins/run.py

clean:  ## remove the venv and caches (keeps models)
	rm -rf $(VENV) .pytest_cache
	find . -name __pycache__ -prune -exec rm -rf {} +

# --- Train and export on a workstation. DATA may name several class-folder datasets; by
# default the face set of make faces. TRAIN_ARGS passes more flags, e.g.
# TRAIN_ARGS="--weights none --input-size 128".
SCENES       ?= $(MASKWATCH_DATA)/scenes
PRAJNA       ?= $(MASKWATCH_DATA)/prajna
# The scenes split once by photo: faces cuts only its train photos, eval scores its eval ones.
SPLIT        ?= splits/scenes.json
# The one-person pictures no shipped model trains on (by person); eval's mask zoo uses them.
HOLDOUT      ?= splits/prajna.json
# The scene classes cut for training; empty: all three (with_mask, without_mask and
# mask_weared_incorrect), as the bundled model; SCENE_LABELS=with_mask,without_mask for two.
SCENE_LABELS ?=
# Synthetic masks put on each unmasked face: worn right, and worn wrong (nose, mouth, chin).
PER_FACE     ?= 2
WRONG_PER_FACE ?= 3
# Smallest annotated scene face cut for training, px in the 640x480 frame: 20 gave the
# bundled model's recipe (cross-validation: models/default/README.md).
SCENE_MIN    ?= 20
TRAIN_ARGS  ?=
EXPORT_ARGS ?=
CV_ARGS     ?= --backbone efficientnet_lite0 --epochs-head 3 --epochs-finetune 2
.PHONY: train export bench-models faces cv detectors need-data need-scenes need-sources

need-data:
	@$(foreach d,$(DATA),$(call need,$(d),class folders for DATA= (make faces builds the default));) true

need-scenes:
	@$(call need,$(SCENES),the VOC photos for SCENES= (or MASKWATCH_DATA=))

need-sources: need-scenes
	@$(call need,$(PRAJNA),the one-person pictures for PRAJNA= (or MASKWATCH_DATA=))
	@$(call need,$(MASKS)/masks.cfg,the mask templates for MASKS=)

faces: need-sources $(STAMP_TRAIN)  ## the training face set in FACES: the shipped detector's crops of PRAJNA and of SPLIT's training photos, and PER_FACE synthetic masks worn right and WRONG_PER_FACE worn wrong on each unmasked one
	$(PYTHON) -m train.prepare --folders $(PRAJNA) --out $(FACES)/prajna
	$(PYTHON) -m train.prepare --voc $(SCENES) --split $(SPLIT) --out $(FACES)/scenes --min-size $(SCENE_MIN) $(if $(SCENE_LABELS),--labels $(SCENE_LABELS))
	$(PYTHON) -m train.synth --data $(FACES)/prajna --data $(FACES)/scenes --masks $(MASKS) --per-face $(PER_FACE) --wrong-per-face $(WRONG_PER_FACE) --out $(FACES)/synth

train: need-data $(STAMP_TRAIN)  ## fine-tune InceptionV3 on DATA into models/NAME, leaving out HOLDOUT's pictures
	$(PYTHON) -m train $(foreach d,$(DATA),--data $(d)) --exclude-photos $(HOLDOUT) --out models/$(NAME) $(TRAIN_ARGS)

cv: need-data need-scenes $(STAMP_TRAIN)  ## cross-validation by photo over SPLIT's training photos: threshold, gate, K of N for NAME's recipe (CV_ARGS)
	$(PYTHON) -m train.cv --name $(NAME) --scenes $(SCENES) --split $(SPLIT) $(foreach d,$(DATA),--data $(d)) -- --exclude-photos $(HOLDOUT) $(CV_ARGS)

export: $(STAMP_TRAIN)  ## TFLite float32/float16/dynamic/int8 of models/NAME, parity-gated, + card.json
	$(PYTHON) -m export --model models/$(NAME)/model.keras $(EXPORT_ARGS)

bench-models: $(STAMP_TRAIN)  ## latency of each published format of models/NAME at 1, 2 and 4 threads
	$(PYTHON) -m export.bench --model models/$(NAME)

detectors: need-scenes $(STAMP_EDGE)  ## every detector side by side on the shared scenes, per part of SPLIT
	$(PYTHON) -m edge.measure.compare_detectors --scenes $(SCENES) --split $(SPLIT) --json build/detectors.json

# --- Run on the edge (issue 3). Without SOURCE, run and bench use sample frames built from
# skimage's astronaut (build/demo/frames), so they work with no camera and no data; GPIO is
# simulated (gpiozero's mock pins) off a Pi. MODEL defaults to the bundled model.
MODEL   ?= models/default
SOURCE  ?=
CONFIG  ?=
# BASELINE=0: bench without the seed-style loop, and so without installing TensorFlow.
BASELINE ?= 1
# LOOP=1: make run replays its frames for ever (Ctrl-C stops it): time to open the page.
LOOP    ?=
DEMO    := build/demo
EDGE_CONFIG = $(if $(CONFIG),--config $(CONFIG))
# FRAMES: how many frames make soak measures (after 500 of warm-up).
FRAMES  ?= 20000
# SCENARIO_FRAMES: frames per doorway scenario (empty door, poster, passer-by) and gate.
SCENARIO_FRAMES ?= 1000
.PHONY: run eval bench demo demo-frames soak screenshot

demo-frames: $(STAMP_EDGE)
	$(PYTHON) -m edge demo --frames-only --out $(DEMO)

demo: $(STAMP_EDGE)  ## the pipeline on astronaut frames: annotated images + events in build/demo
	$(PYTHON) -m edge demo $(EDGE_CONFIG) --model $(MODEL) --out $(DEMO)

run: $(STAMP_EDGE) $(if $(SOURCE),,demo-frames)  ## the service loop on SOURCE (default: the demo frames), annotated into build/run
	GPIOZERO_PIN_FACTORY=$${GPIOZERO_PIN_FACTORY:-mock} $(PYTHON) -m edge run $(or $(EDGE_CONFIG),$(if $(SOURCE),,--config $(DEMO)/run.toml)) \
		--model $(MODEL) --source $(or $(SOURCE),$(DEMO)/frames) --annotate build/run \
		$(if $(filter 1,$(LOOP)),--loop)

eval: need-sources $(STAMP_EDGE)  ## the whole pipeline on the held-out photos of SPLIT, the mask zoo on held-out faces, and the model's cross-validation
	$(PYTHON) -m edge eval $(EDGE_CONFIG) --model $(MODEL) --scenes $(SCENES) --split $(SPLIT) \
		--zoo $(MASKS) --prajna $(PRAJNA) --prajna-split $(HOLDOUT) --json build/eval-scenes.json

bench: $(if $(filter 0,$(BASELINE)),$(STAMP_EDGE),$(STAMP_KERAS)) $(if $(SOURCE),,demo-frames)  ## per-stage latency at 640x480, one face, then the seed-style loop on the same frames, the doorway scenarios with the motion gate on and off, and the event store's costs
	$(PYTHON) -m edge bench $(EDGE_CONFIG) --model $(MODEL) --source $(or $(SOURCE),$(DEMO)/frames) \
		--json build/bench.json
	$(if $(filter 0,$(BASELINE)),,$(PYTHON) -m train.seed_loop --bench build/bench.json)
	$(PYTHON) -m edge.measure.scenarios $(EDGE_CONFIG) --model $(MODEL) --frames $(SCENARIO_FRAMES) \
		--json build/scenarios.json
	$(PYTHON) -m edge.measure.store $(EDGE_CONFIG) --model $(MODEL) --source $(or $(SOURCE),$(DEMO)/frames) \
		--json build/store.json

screenshot: $(STAMP_EDGE)  ## docs/status-page.jpg: the status page with a simulated week, in headless Chromium
	$(PYTHON) -m edge.measure.screenshot --model $(MODEL) --out docs/status-page.jpg

soak: $(STAMP_EDGE)  ## FRAMES frames through the whole pipeline, looping: fails if RSS or open files creep
	GPIOZERO_PIN_FACTORY=$${GPIOZERO_PIN_FACTORY:-mock} $(PYTHON) -m edge.measure.soak $(EDGE_CONFIG) \
		--model $(MODEL) $(if $(SOURCE),--source $(SOURCE)) --frames $(FRAMES) --json build/soak.json

# --- Deploy on a Raspberry Pi (issue 4). install/uninstall need root: sudo make install.
# DESTDIR=, DRY_RUN=1, SKIP_PIP=1, FORCE=1 and PURGE=1 are passed to the scripts.
.PHONY: install uninstall check-arm arm64-check need-root

install:  ## install or upgrade the systemd service on this Pi (keeps config and state)
	deploy/install.sh

uninstall:  ## remove the service and code; PURGE=1 also removes config, state and user
	deploy/uninstall.sh

check-arm:  ## resolve the edge extra to arm64 wheels for Bookworm/Trixie (needs PyPI)
	PYTHON=$(PY) deploy/check-arm.sh

need-root:
	@[ "$$(id -u)" = 0 ] || { echo "make arm64-check needs root (debootstrap, chroot, mount, binfmt_misc): sudo make arm64-check" >&2; exit 2; }

arm64-check: need-root $(STAMP_EDGE)  ## (root) install and run on emulated arm64 Bookworm and Trixie, compared with x86; REBUILD=1, SUITES=
	$(PYTHON) tests/arm64/check.py
