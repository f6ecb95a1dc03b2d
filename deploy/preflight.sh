#!/usr/bin/env bash
# Can this machine run maskwatch? Each check says what it found and why it matters.
#   deploy/preflight.sh          (install.sh runs it first)
# Exit 0: go ahead (maybe with warnings); 1: something blocks the install.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
SYSTEM_PYTHON=${SYSTEM_PYTHON:-/usr/bin/python3}
MIN_FREE_MB=${MIN_FREE_MB:-500}   # the arm64 wheels (LiteRT, OpenCV, numpy) unpack to ~300 MB

failed=0
ok()   { printf '   ok    %-8s %s\n' "$1" "$2"; }
note() { printf '   warn  %-8s %s\n' "$1" "$2"; }
bad()  { printf '   FAIL  %-8s %s\n' "$1" "$2"; failed=1; }

step "Preflight"

# OS: the installer uses apt and the Raspberry Pi archive (python3-picamera2).
codename=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-unknown}")
case $codename in
    bookworm|trixie) ok os "Debian/Raspberry Pi OS $codename" ;;
    *) note os "'$codename' is not Bookworm or Trixie: untested, apt package names may differ" ;;
esac

# Python: the venv is built on the system interpreter, because picamera2 and
# libcamera's bindings come from apt and only exist for it.
if ver=$("$SYSTEM_PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null); then
    case $ver in
        3.11|3.13) ok python "$SYSTEM_PYTHON is $ver (Bookworm ships 3.11, Trixie 3.13)" ;;
        3.1[2-9]) ok python "$SYSTEM_PYTHON is $ver (tested on 3.11 and 3.13)" ;;
        *) bad python "$SYSTEM_PYTHON is $ver; maskwatch needs 3.11 or newer (Bookworm or later)" ;;
    esac
else
    bad python "$SYSTEM_PYTHON not found: install python3 (sudo apt install python3)"
fi

# Architecture: LiteRT publishes manylinux aarch64 wheels, none for 32-bit ARM.
# A 64-bit kernel with a 32-bit userland says aarch64 in uname but armhf in dpkg.
machine=$(uname -m)
userland=$(dpkg --print-architecture 2>/dev/null || echo unknown)
if [ "$machine" = aarch64 ] && [ "$userland" = arm64 ]; then
    ok arch "aarch64 kernel, arm64 userland"
elif [ "$machine" = aarch64 ]; then
    bad arch "64-bit kernel but a $userland userland: LiteRT has no 32-bit ARM wheels; use the 64-bit Raspberry Pi OS"
else
    bad arch "$machine/$userland: this installer is for a 64-bit Raspberry Pi (aarch64/arm64)"
fi

# Camera: rpicam-hello asks libcamera, exactly what picamera2 will do. Without it,
# V4L2 nodes at least show a camera driver is loaded. A missing camera is only a
# warning: the config can point the source at a USB camera, a stream or images.
cam_tool=$(command -v rpicam-hello || command -v libcamera-hello || true)
if [ -n "$cam_tool" ]; then
    out=$(timeout 20 "$cam_tool" --list-cameras 2>&1)
    if grep -q '^[[:space:]]*[0-9][0-9]* : ' <<<"$out"; then
        ok camera "$(grep -m1 '^[[:space:]]*[0-9][0-9]* : ' <<<"$out" | sed 's/^[[:space:]]*//')"
    elif grep -qi 'busy' <<<"$out"; then
        note camera "the camera is busy - probably the running maskwatch service (fine for an upgrade)"
    else
        note camera "$cam_tool lists no camera: check the ribbon cable (contacts the right way round) and power off before reseating"
    fi
else
    videos=$(ls /dev/video* 2>/dev/null | tr '\n' ' ')
    if [ -n "$videos" ]; then
        ok camera "V4L2 devices: $videos(rpicam-hello not installed, so not asked which is a camera)"
    else
        note camera "no /dev/video* and no rpicam-hello: no camera driver is loaded"
    fi
fi

# GPIO: the LED and buzzer sink opens /dev/gpiochip* through lgpio.
chips=$(ls /dev/gpiochip* 2>/dev/null | tr '\n' ' ')
if [ -n "$chips" ]; then
    ok gpio "$chips"
else
    note gpio "no /dev/gpiochip*: the LEDs and buzzer won't work; set [sinks.gpio] enabled = false"
fi
for group in $SERVICE_GROUPS; do
    getent group "$group" >/dev/null || note groups "no '$group' group: the installer creates it, but device nodes only use it if udev assigns them (Raspberry Pi OS does)"
done

# Disk: the wheels, the venv and the model.
# The nearest existing folder on the way to /opt (DESTDIR may not exist yet).
target=$DESTDIR/opt
while [ ! -d "$target" ]; do target=$(dirname "$target"); done
free_mb=$(df -Pm "$target" 2>/dev/null | awk 'NR==2 {print $4}')
if [ -z "$free_mb" ]; then
    note disk "could not read free space on $target"
elif [ "$free_mb" -ge "$MIN_FREE_MB" ]; then
    ok disk "$free_mb MB free on $target (needs about $MIN_FREE_MB MB)"
else
    bad disk "only $free_mb MB free on $target; the dependencies need about $MIN_FREE_MB MB"
fi

if [ "$failed" = 1 ]; then
    say "preflight: a FAIL line above blocks the install"
    exit 1
fi
say "preflight: ready to install"
