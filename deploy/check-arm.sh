#!/usr/bin/env bash
# Can a Raspberry Pi install the `edge` extra? Resolve it here, for linux aarch64,
# with binary wheels only, so a missing arm64 wheel shows up on this machine and
# not halfway through an install on a Pi.      make check-arm
#
# Each target is a 64-bit Raspberry Pi OS: its CPython, and every manylinux tag
# its glibc accepts. pip doesn't widen `--platform manylinux_2_28_aarch64` to the
# older glibc tags, and LiteRT ships manylinux_2_27 wheels, so all are listed.
# Each is resolved twice: as pyproject.toml declares it, and with numpy pinned to
# the distro's python3-numpy, as install.sh does on the Pi.
# Needs the package index; skips with the reason when it can't reach it.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

# name  python  newest-glibc-minor  distro-numpy
TARGETS="bookworm 3.11 36 1.24.2
trixie 3.13 41 2.2.4"

index=${PIP_INDEX_URL:-$("$PYTHON" -m pip config get global.index-url 2>/dev/null || true)}
index=${index:-https://pypi.org/simple}
if ! "$PYTHON" - "$index" <<'EOF'; then
import sys, urllib.request
try:
    urllib.request.urlopen(sys.argv[1].rstrip("/") + "/pip/", timeout=15).close()
except Exception as exc:
    print(f"check-arm: SKIPPED - the package index {sys.argv[1]} is unreachable ({exc}); "
          "run it where PyPI can be reached")
    sys.exit(1)
EOF
    exit 0
fi

mapfile -t requirements < <("$PYTHON" - <<'EOF'
import tomllib
with open("pyproject.toml", "rb") as f:
    print("\n".join(tomllib.load(f)["project"]["optional-dependencies"]["edge"]))
EOF
)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=0
while read -r name python glibc numpy; do
    platforms=(--platform manylinux2014_aarch64)
    for minor in $(seq 17 "$glibc"); do platforms+=(--platform "manylinux_2_${minor}_aarch64"); done
    for pin in "" "numpy==$numpy"; do
        label="$name: CPython $python, glibc 2.$glibc, aarch64${pin:+, $pin}"
        dest=$tmp/$name${pin:+-pinned}
        if "$PYTHON" -m pip download --quiet --disable-pip-version-check --only-binary=:all: \
            --implementation cp --python-version "$python" "${platforms[@]}" \
            --dest "$dest" "${requirements[@]}" $pin >"$tmp/log" 2>&1; then
            echo "ok    $label"
            # One line per wheel: name-version and the tag pip chose.
            for wheel in "$dest"/*.whl; do
                w=$(basename "$wheel" .whl)
                IFS=- read -r dist version _ <<<"$w"
                echo "        $dist $version  (${w##*-})"
            done
        else
            failed=1
            echo "FAIL  $label"
            grep -v 'is ignored: it is neither a file nor a directory' "$tmp/log" | sed 's/^/        /'
        fi
    done
done <<<"$TARGETS"

if [ "$failed" = 1 ]; then
    echo "check-arm: a Raspberry Pi could not install the edge extra (FAIL above)"
    exit 1
fi
echo "check-arm: the edge extra installs from binary wheels on Bookworm (3.11) and Trixie (3.13), arm64"
