#!/usr/bin/env bash
# The Debian packages some tests run for real: the mosquitto broker and headless Chromium.
# Installs the missing ones when it can (root, apt-get); otherwise says which tests will
# skip and how to install them. Called by `make test` before pytest.
set -u
missing=()
command -v mosquitto >/dev/null || missing+=(mosquitto)
command -v chromium >/dev/null || missing+=(chromium)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing for the tests: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 ||
        { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q "${missing[@]}" >/dev/null; } ||
        echo "could not install ${missing[*]}: the tests that need them will skip"
else
    echo "not installed: ${missing[*]} (sudo apt install ${missing[*]}); the MQTT and" \
         "browser tests will skip"
fi
exit 0
