#!/usr/bin/env bash
# Install or upgrade maskwatch as a systemd service on a Raspberry Pi 4/5 (64-bit
# Raspberry Pi OS Bookworm or Trixie):
#     sudo deploy/install.sh        # or: sudo make install
# Running it again upgrades the code and keeps /etc/maskwatch/config.toml and
# /var/lib/maskwatch.
#
# Environment:
#   DESTDIR=/tmp/root   install under this root prefix; live-system steps are skipped
#   DRY_RUN=1           don't run apt-get, useradd, chown, systemctl: print them
#   SKIP_PIP=1          don't download Python packages (offline tests)
#   UPGRADE_DEPS=1      also move the Python dependencies to their newest allowed versions
#   FORCE=1             install even when the preflight reports a FAIL
#   SYSTEM_PYTHON=/usr/bin/python3  the system interpreter the venv is built on
#   RPI_PACKAGES=0      not on Raspberry Pi OS (an emulated Debian arm64 root, say): skip
#                       python3-picamera2 and python3-lgpio, which only the Raspberry Pi
#                       archive has, and take python3-numpy from apt as picamera2 would.
#                       The camera then needs source.kind = opencv or images.
# Without a running systemd (a chroot, a container) the unit is installed and enabled
# but not started: the installer says so and carries on.
#
# Layout and why: the code tree (edge/ and the bundled models/) is copied to
# /opt/maskwatch and a .pth file in /opt/maskwatch/venv puts it on sys.path. The
# package isn't pip-installed, because the runtime finds its bundled model beside
# the edge package (models/default next to edge/): a pip install would put edge/
# in site-packages without the models. pip only installs the `edge` extra's
# dependencies (read from pyproject.toml), so no build step, no TensorFlow.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(dirname "$HERE")
. "$HERE/lib.sh"
SYSTEM_PYTHON=${SYSTEM_PYTHON:-/usr/bin/python3}
SKIP_PIP=${SKIP_PIP:-0}
UPGRADE_DEPS=${UPGRADE_DEPS:-0}
FORCE=${FORCE:-0}
# apt packages: venv support; picamera2 with libcamera's Python bindings (only
# packaged by Raspberry Pi, never on PyPI); lgpio, gpiozero's pin factory on
# Bookworm/Trixie (works on the Pi 5, where RPi.GPIO doesn't).
APT_PACKAGES="python3-venv python3-picamera2 python3-lgpio"
[ "${RPI_PACKAGES:-1}" = 0 ] && APT_PACKAGES="python3-venv python3-numpy"

[ "$LIVE" = 0 ] || [ "$(id -u)" = 0 ] || die "run as root: sudo $0"
[ -f "$SRC/edge/maskwatch.toml" ] || die "$SRC doesn't look like a maskwatch tree (no edge/maskwatch.toml)"

# What a stop part-way leaves behind, for die() to say. The code and the unit are installed
# last, after every check, so an upgrade that stops keeps the running version; a first
# install that stops has made only what "made" lists, and nothing that runs.
fresh=1
[ -e "$DESTDIR$APP_DIR/edge" ] && fresh=0
made=""
left_behind() {
    local list=${made%,}
    if [ "$fresh" = 0 ]; then
        say "the installed version and its service are untouched${list:+ (this run updated:$list)}"
    else
        say "this first install stopped before the code and the unit: nothing runs yet."
        say "it made:${list:- nothing}. Run sudo $0 again once the problem is fixed (it reuses them),"
        say "or remove them with: sudo PURGE=1 $HERE/uninstall.sh"
    fi
}
[ "$LIVE" = 1 ] || say "(dry run: installing under '${DESTDIR:-/}', live-system commands are only printed)"

if ! SYSTEM_PYTHON=$SYSTEM_PYTHON "$HERE/preflight.sh"; then
    if [ "$LIVE" = 1 ] && [ "$FORCE" != 1 ]; then
        die "the preflight found a blocking problem (FAIL above); fix it, or FORCE=1 to install anyway"
    fi
    warn "preflight problems ignored (dry run or FORCE=1)"
fi

step "System packages (apt)"
# --no-install-recommends: on Raspberry Pi OS Lite, picamera2's recommends pull in Qt/GUI.
live apt-get update
live apt-get install -y --no-install-recommends $APT_PACKAGES ||
    die "apt-get failed; python3-picamera2 comes from the Raspberry Pi OS archive (archive.raspberrypi.com)"

step "Service user"
if id "$SERVICE_USER" >/dev/null 2>&1; then
    say "user $SERVICE_USER exists"
else
    # A system user with no home and no shell; its only writable place is the StateDirectory.
    live useradd --system --user-group --home-dir "$STATE_DIR" --no-create-home \
        --shell /usr/sbin/nologin "$SERVICE_USER"
fi
for group in $SERVICE_GROUPS; do
    getent group "$group" >/dev/null || live groupadd --system "$group"
done
live usermod --append --groups "${SERVICE_GROUPS// /,}" "$SERVICE_USER"
made="$made the $SERVICE_USER user,"

step "Python environment ($VENV_DIR)"
venv=$DESTDIR$VENV_DIR
py_version() { "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])'; }
# Rebuild the venv when it's missing, broken, lacks pip, or was built on another
# Python (an OS upgrade from Bookworm's 3.11 to Trixie's 3.13 strands it).
venv_version=$(sed -n 's/^version *= *\([0-9]*\.[0-9]*\).*/\1/p' "$venv/pyvenv.cfg" 2>/dev/null || true)
if [ -x "$venv/bin/python" ] && [ "$venv_version" = "$(py_version "$SYSTEM_PYTHON")" ] &&
   { [ "$SKIP_PIP" = 1 ] || "$venv/bin/python" -m pip --version >/dev/null 2>&1; }; then
    say "keeping the venv (Python $venv_version)"
else
    rm -rf "$venv"
    pip_opt=""
    [ "$SKIP_PIP" = 1 ] && pip_opt="--without-pip"   # ensurepip is slow and nothing will use it
    say "creating the venv on $SYSTEM_PYTHON (--system-site-packages: picamera2 comes from apt)"
    "$SYSTEM_PYTHON" -m venv --system-site-packages $pip_opt "$venv"
fi
made="$made the venv $VENV_DIR,"
site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
# The installed path, not the DESTDIR one: this is read on the Pi.
echo "$APP_DIR" >"$site/maskwatch.pth"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$SYSTEM_PYTHON" - "$SRC/pyproject.toml" >"$tmp/requirements.txt" <<'EOF'
import sys, tomllib
with open(sys.argv[1], "rb") as f:
    print("\n".join(tomllib.load(f)["project"]["optional-dependencies"]["edge"]))
EOF
# Keep apt's numpy: picamera2's compiled helpers (simplejpeg) are built against
# it, and a pip numpy 2 in the venv breaks `import picamera2` on Bookworm.
apt_numpy=$("$SYSTEM_PYTHON" -c 'import numpy; print(numpy.__version__ if numpy.__file__.startswith("/usr/lib/python3/") else "")' 2>/dev/null || true)
: >"$tmp/constraints.txt"
[ -n "$apt_numpy" ] && echo "numpy==$apt_numpy" >"$tmp/constraints.txt"
say "edge dependencies: $(tr '\n' ' ' <"$tmp/requirements.txt")${apt_numpy:+(numpy pinned to the apt version $apt_numpy)}"
if [ "$SKIP_PIP" = 1 ]; then
    say "skipped pip install (SKIP_PIP=1)"
else
    # No --upgrade unless asked: a second run installs only what pyproject.toml now
    # asks for and the venv lacks, so an upgrade doesn't silently move every library.
    upgrade=""
    [ "$UPGRADE_DEPS" = 1 ] && upgrade="--upgrade"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check $upgrade \
        --requirement "$tmp/requirements.txt" --constraint "$tmp/constraints.txt"
fi

step "Configuration ($CONF_FILE)"
conf=$DESTDIR$CONF_FILE
install -d -m 0750 "$DESTDIR$CONF_DIR"
# root owns it, the service's group may read it: the service can't rewrite its own config.
live chown "root:$SERVICE_USER" "$DESTDIR$CONF_DIR"
if [ -e "$conf" ]; then
    say "kept your $CONF_FILE (the shipped defaults are in $APP_DIR/edge/maskwatch.toml)"
else
    install -m 0640 "$SRC/edge/maskwatch.toml" "$conf"
    live chown "root:$SERVICE_USER" "$conf"
    say "installed the default $CONF_FILE"
    made="$made $CONF_FILE,"
fi
if [ "$SKIP_PIP" != 1 ]; then
    # Check the config with the new code before the running service is touched:
    # cwd=$SRC puts the new edge/ first on sys.path. Exit 2 is a problem in the file (each
    # line names its key); anything else is the code or the venv failing, not the config.
    checked=0
    (cd "$SRC" && "$venv/bin/python" -m edge check-config "$conf") || checked=$?
    if [ "$checked" = 2 ]; then
        die "$CONF_FILE doesn't pass this version's check (each line above names a key); fix it"
    elif [ "$checked" != 0 ]; then
        die "python -m edge check-config crashed (exit $checked, above) in $VENV_DIR: this version's code or one of its packages fails on this system, not your config. Report it with the lines above; UPGRADE_DEPS=1 tries the newest allowed packages"
    fi
fi

# MemoryDenyWriteExecute=yes in the unit is only safe if nothing in this Pi's
# stack (the apt libcamera/picamera2 included) needs writable+executable memory.
# Prove it here under the same restriction; if it fails, relax just that setting.
# (MDWE_CHECK=cmd replaces the check: the tests use `true` and `false`.)
allow_wx=0
mdwe_check=("$venv/bin/python" "$SRC/deploy/mdwe_check.py")
[ -n "${MDWE_CHECK:-}" ] && mdwe_check=("$MDWE_CHECK")
if [ "$SKIP_PIP" != 1 ] || [ -n "${MDWE_CHECK:-}" ]; then
    mdwe_status=0
    "${mdwe_check[@]}" || mdwe_status=$?
    if [ "$mdwe_status" = 1 ]; then
        allow_wx=1
        warn "this stack needs writable+executable memory: MemoryDenyWriteExecute is turned off by $DROPIN_WX"
    elif [ "$mdwe_status" != 0 ]; then
        # 2: the restriction can't even be applied here (emulation, no seccomp): no verdict.
        warn "MemoryDenyWriteExecute could not be tested here; the unit keeps it (yes)"
    fi
fi

step "Code ($APP_DIR)"
app=$DESTDIR$APP_DIR
install -d -m 0755 "$app" "$app/models"
# Replace, don't merge: a module deleted upstream must not linger.
# facedata: the photos and their scoring that `python -m edge eval` and `bench` need on the Pi.
for item in edge facedata deploy systemd models/default models/blazeface models/yunet pyproject.toml README.md LICENSE; do
    rm -rf "${app:?}/$item"
    if [ -e "$SRC/$item" ]; then
        cp -R "$SRC/$item" "$app/$item"
    fi
done
find "$app" -path "$venv" -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
# Byte-compile now, as root: the service can't write __pycache__ into a read-only
# tree, and compiling every module on each start is slow on a Pi 4. -d names the
# installed path in tracebacks even when installing under DESTDIR.
"$venv/bin/python" -m compileall -q -d "$APP_DIR/edge" "$app/edge" >/dev/null
"$venv/bin/python" -m compileall -q -d "$APP_DIR/facedata" "$app/facedata" >/dev/null
# root-owned and read-only for the service (ProtectSystem=strict makes /opt
# read-only anyway); world-readable so `python -m edge` works for any admin.
find "$app" -path "$venv" -prune -o -type d -exec chmod 0755 {} + -o -type f -exec chmod u=rw,go=r {} +
chmod 0755 "$app"/deploy/*.sh
if [ -f "$app/models/default/card.json" ]; then
    say "installed the bundled model: models/default"
else
    warn "models/default is missing from $SRC: the service will stop at start with" \
         "'card.json not found'. Export one (make export) and install again, or set" \
         "[model] path in $CONF_FILE to a model folder."
fi

step "State ($STATE_DIR)"
# systemd (StateDirectory=) would create it too; making it here lets an admin drop
# files in before the first start. Existing content is never touched.
install -d -m 0750 "$DESTDIR$STATE_DIR"
live chown "$SERVICE_USER:$SERVICE_USER" "$DESTDIR$STATE_DIR"

step "Service (maskwatch.service)"
install -d -m 0755 "$(dirname "$DESTDIR$UNIT_FILE")"
install -m 0644 "$SRC/systemd/maskwatch.service" "$DESTDIR$UNIT_FILE"
# The unit has no network; an MQTT sink or a status page gets exactly what it needs.
network=$("$venv/bin/python" "$SRC/deploy/network_dropin.py" "$conf") ||
    die "could not work out the network access $CONF_FILE needs (see above)"
rm -f "$DESTDIR$DROPIN_WX" "$DESTDIR$DROPIN_NET"
rmdir "$(dirname "$DESTDIR$DROPIN_WX")" 2>/dev/null || true   # only if no drop-ins of yours
if [ "$allow_wx" = 1 ]; then
    install -d -m 0755 "$(dirname "$DESTDIR$DROPIN_WX")"
    printf '# Written by deploy/install.sh: deploy/mdwe_check.py failed on this Pi.\n[Service]\nMemoryDenyWriteExecute=no\n' \
        >"$DESTDIR$DROPIN_WX"
fi
if [ -n "$network" ]; then
    install -d -m 0755 "$(dirname "$DESTDIR$DROPIN_NET")"
    printf '%s\n' "$network" >"$DESTDIR$DROPIN_NET"
    say "network for [sinks.mqtt]/[web]: $DROPIN_NET ($(grep '^IPAddressAllow=' <<<"$network"))"
fi
if [ "$LIVE" = 1 ] && [ ! -d /run/systemd/system ]; then
    # A chroot or a container: no systemd to tell. Enabling is only symlinks.
    if command -v systemctl >/dev/null; then
        systemctl --quiet enable maskwatch.service
        say "systemd is not running here (a chroot?): enabled the unit, not started"
    else
        say "no systemctl here (a chroot?): the unit is installed, not enabled or started"
    fi
elif [ "$LIVE" = 1 ]; then
    live systemctl daemon-reload
    live systemctl enable maskwatch.service
    # restart = start on a first install, reload code on an upgrade. It waits for READY=1.
    if ! live systemctl restart maskwatch.service; then
        warn "maskwatch did not start; the reason is in: journalctl -u maskwatch -e"
    fi
    systemctl --no-pager --lines=5 status maskwatch.service || true
else
    # Enabling is only symlinks, which systemctl can make inside DESTDIR.
    if [ -n "$DESTDIR" ] && command -v systemctl >/dev/null; then
        systemctl --root="$DESTDIR" --quiet enable maskwatch.service
        say "enabled in $DESTDIR (multi-user.target.wants)"
    fi
    live systemctl daemon-reload
    live systemctl enable maskwatch.service
    live systemctl restart maskwatch.service
fi

step "Done"
say "config:  $CONF_FILE  (then: sudo systemctl restart maskwatch)"
say "status:  systemctl status maskwatch"
say "log:     journalctl -u maskwatch -f"
