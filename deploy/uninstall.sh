#!/usr/bin/env bash
# Remove the maskwatch service and code:
#     sudo deploy/uninstall.sh          # or: sudo make uninstall
# keeps /etc/maskwatch (config), /var/lib/maskwatch (state) and the maskwatch user,
# so installing again picks up where it left off. PURGE=1 removes those too.
# DESTDIR and DRY_RUN work as for install.sh.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
PURGE=${PURGE:-0}

[ "$LIVE" = 0 ] || [ "$(id -u)" = 0 ] || die "run as root: sudo $0"

step "Service"
if [ "$LIVE" = 1 ]; then
    # Not installed is fine: uninstall twice is not an error.
    live systemctl disable --now maskwatch.service || true
else
    if [ -n "$DESTDIR" ] && command -v systemctl >/dev/null && [ -e "$DESTDIR$UNIT_FILE" ]; then
        systemctl --root="$DESTDIR" --quiet disable maskwatch.service
    fi
    live systemctl disable --now maskwatch.service
fi
rm -f "$DESTDIR$UNIT_FILE" "$DESTDIR$DROPIN_WX" "$DESTDIR$DROPIN_NET"
# Your own drop-ins (`systemctl edit maskwatch`) are configuration: kept unless PURGE=1.
if [ "$PURGE" = 1 ]; then
    rm -rf "$DESTDIR$UNIT_FILE.d"
else
    rmdir "$DESTDIR$UNIT_FILE.d" 2>/dev/null || true
fi
live systemctl daemon-reload
live systemctl reset-failed maskwatch.service || true
say "removed $UNIT_FILE"

step "Code"
rm -rf "${DESTDIR}${APP_DIR:?}"
say "removed $APP_DIR (code, models, venv)"

step "Config, state and user"
if [ "$PURGE" = 1 ]; then
    rm -rf "$DESTDIR$CONF_DIR" "$DESTDIR$STATE_DIR"
    say "removed $CONF_DIR and $STATE_DIR"
    if id "$SERVICE_USER" >/dev/null 2>&1 || [ "$LIVE" = 0 ]; then
        live userdel "$SERVICE_USER"   # also removes its own group
    fi
else
    say "kept $CONF_DIR, $STATE_DIR and the $SERVICE_USER user (PURGE=1 removes them)"
fi
