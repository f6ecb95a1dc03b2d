#!/usr/bin/env bash
# The Debian packages some tests run for real (README: Tests): mosquitto (the MQTT broker),
# chromium (the status page, headless) and iproute2 (ip: a network namespace in which a
# broker is really unreachable). Installs the missing ones when it can (root, apt-get), with
# --no-install-recommends and without touching what is installed already; otherwise says
# which tests will skip and how to install them. Called by `make test` before pytest.
set -u
missing=()
command -v mosquitto >/dev/null || missing+=(mosquitto)
command -v chromium >/dev/null || missing+=(chromium)
command -v ip >/dev/null || missing+=(iproute2)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing for the tests: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    install=(apt-get install -y -q --no-install-recommends --no-upgrade "${missing[@]}")
    "${install[@]}" >/dev/null 2>&1 ||
        { apt-get update -q >/dev/null 2>&1 && "${install[@]}" >/dev/null; } ||
        echo "could not install ${missing[*]}: the tests that need them will skip"
else
    echo "not installed: ${missing[*]} (sudo apt install ${missing[*]}); the MQTT," \
         "browser and network-namespace tests will skip"
fi
exit 0
