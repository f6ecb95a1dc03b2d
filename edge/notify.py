"""systemd's notify protocol (``sd_notify``), with the standard library only.

Under ``Type=notify`` systemd sets ``NOTIFY_SOCKET`` to a unix datagram socket; each
datagram is newline-separated ``KEY=value`` lines. The runtime sends:

* ``READY=1`` once the first frame has gone through the whole pipeline — so
  ``systemctl start`` returns only when the camera, model and sinks really work;
* ``WATCHDOG=1`` after frames, never from a timer thread — with ``WatchdogSec=`` set, a
  stalled camera or a hung loop stops the pings and systemd restarts the service;
* ``STATUS=…`` with the frame rate, shown by ``systemctl status``;
* ``STOPPING=1`` on the way out.

Without ``NOTIFY_SOCKET`` (a terminal, a test) every call does nothing.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass

from edge.shared.params import Params, param

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServiceParams(Params):
    """what systemd hears"""

    watchdog: bool = param(True, help="send WATCHDOG=1 to systemd while frames flow (when "
                                      "NOTIFY_SOCKET is set)")
    status_seconds: float = param(5.0, gt=0.0, max=3600.0,
                                  help="how often STATUS= with the frame rate is sent")


class Notifier:
    def __init__(self, address: str | None = None):
        address = os.environ.get("NOTIFY_SOCKET") if address is None else address
        self._address = None
        self._sock = None
        if address:
            # A leading '@' names a socket in the abstract namespace (a NUL byte on the wire).
            self._address = "\0" + address[1:] if address.startswith("@") else address
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            # Never block the frame loop: when the receiver's queue is full (it holds only
            # net.unix.max_dgram_qlen datagrams) a message is dropped, not waited for.
            self._sock.setblocking(False)
        self._failed = False

    @property
    def enabled(self) -> bool:
        return self._sock is not None

    def send(self, *lines: str) -> bool:
        """Send one datagram; return whether it went. Failures are logged once, never raised."""
        if self._sock is None:
            return False
        try:
            self._sock.sendto("\n".join(lines).encode(), self._address)
        except OSError as exc:
            if not self._failed:
                log.warning("sd_notify to %r failed: %s", self._address, exc)
            self._failed = True
            return False
        self._failed = False
        return True

    def ready(self, status: str = "") -> bool:
        return self.send("READY=1", *([f"STATUS={status}"] if status else []))

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")

    def status(self, text: str) -> bool:
        return self.send(f"STATUS={text}")

    def stopping(self) -> bool:
        return self.send("STOPPING=1")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
