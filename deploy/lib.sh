# Shared by install.sh, uninstall.sh and preflight.sh: where things go, and how
# commands that change the live system are run (or only printed).
# shellcheck shell=bash

# Where things go. maskwatch.service names these same paths; tests/test_deploy.py
# checks that the unit's ExecStart exists in an installed tree.
APP_DIR=/opt/maskwatch                  # code tree: edge/ + models/ (+ deploy/, systemd/)
VENV_DIR=$APP_DIR/venv                  # python -m venv --system-site-packages
CONF_DIR=/etc/maskwatch
CONF_FILE=$CONF_DIR/config.toml
STATE_DIR=/var/lib/maskwatch            # the service's StateDirectory=
UNIT_FILE=/etc/systemd/system/maskwatch.service
DROPIN_WX=$UNIT_FILE.d/50-allow-wx-memory.conf   # written only if mdwe_check.py fails
DROPIN_NET=$UNIT_FILE.d/60-network.conf          # written only for [sinks.mqtt] or [web]
SERVICE_USER=maskwatch
SERVICE_GROUPS="video gpio"             # camera and dma_heap nodes; /dev/gpiochip*

DESTDIR=${DESTDIR:-}                    # install under this root prefix (tests, staging)
DRY_RUN=${DRY_RUN:-0}

# With DRY_RUN=1 or a DESTDIR, nothing outside DESTDIR is touched: apt-get,
# useradd, chown to the service user, systemctl and friends are printed instead.
if [ "$DRY_RUN" = 1 ] || [ -n "$DESTDIR" ]; then LIVE=0; else LIVE=1; fi

step() { printf '\n== %s\n' "$*"; }
say()  { printf '   %s\n' "$*"; }
warn() { printf '   WARNING: %s\n' "$*" >&2; }
# A script that defines left_behind() says there what a stop leaves installed.
die()  {
    printf '\nERROR: %s\n' "$*" >&2
    if declare -F left_behind >/dev/null; then left_behind >&2; fi
    exit 1
}

# Run a command that changes the live system, or show it when not live.
live() {
    if [ "$LIVE" = 1 ]; then
        say "+ $*"
        "$@"
    else
        say "would run: $*"
    fi
}
