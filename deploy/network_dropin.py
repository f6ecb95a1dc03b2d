"""Print the systemd drop-in that gives maskwatch.service exactly the network its config needs.

    python deploy/network_dropin.py /etc/maskwatch/config.toml    # the drop-in, or nothing

The unit ships with no network at all (``PrivateNetwork=yes``, ``AF_UNIX`` only). An MQTT
sink must reach its broker and a status page must be reached; ``install.sh`` writes this
drop-in (``60-network.conf``) for them, and removes it when neither is enabled:

- ``PrivateNetwork=no`` and ``AF_INET``/``AF_INET6`` sockets;
- ``IPAddressDeny=any``, then ``IPAddressAllow=`` only for: the broker's addresses (a name is
  resolved now, and then the DNS servers of /etc/resolv.conf are allowed too, for the
  runtime's own lookups: re-run the installer if the broker moves); ``localhost`` for a page
  on loopback; the private ranges (RFC 1918, link-local, ULA) for a page on a network
  address, so that the LAN reaches it and nothing reaches the Internet;
- ``SocketBindDeny=any`` with ``SocketBindAllow=`` for the page's port only: an MQTT client
  connects, it binds nothing.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.checks import is_loopback  # noqa: E402  (after the path)
from edge.config import ConfigError, read_tables  # noqa: E402

PRIVATE = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16",
           "fc00::/7", "fe80::/10")


def nameservers(resolv_conf: Path = Path("/etc/resolv.conf")) -> list[str]:
    try:
        lines = resolv_conf.read_text().splitlines()
    except OSError:
        return []
    return [line.split()[1] for line in lines if line.startswith("nameserver ")
            and len(line.split()) > 1]


def broker_addresses(host: str) -> tuple[list[str], bool]:
    """The broker's IP addresses, and whether ``host`` was a name that needed resolving."""
    if host == "localhost":
        return ["localhost"], False
    try:
        ipaddress.ip_address(host)
        return [host], False
    except ValueError:
        pass
    try:
        found = {info[4][0] for info in socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)}
    except socket.gaierror as exc:
        raise SystemExit(f"network_dropin: cannot resolve the MQTT broker {host!r} ({exc}); "
                         "give sinks.mqtt.host as an address, or fix the name") from None
    return sorted(found), True


def dropin(tables: dict, resolv_conf: Path = Path("/etc/resolv.conf")) -> str:
    """The drop-in for a config's tables (``edge.config.read_tables``), or ""."""
    mqtt, web = (SimpleNamespace(**tables["sinks"]["mqtt"]), SimpleNamespace(**tables["web"]))
    if not mqtt.enabled and not web.enabled:
        return ""
    allow, why = [], []
    if mqtt.enabled:
        addresses, named = broker_addresses(mqtt.host)
        allow += addresses
        why.append(f"the MQTT broker {mqtt.host}:{mqtt.port}")
        if named:
            allow += nameservers(resolv_conf)
            why.append("the DNS servers that resolve it")
    lines = ["# Written by deploy/install.sh from /etc/maskwatch/config.toml: exactly the",
             "# network the config needs. Run the installer again after changing [sinks.mqtt]",
             "# or [web]. Your own drop-ins (systemctl edit maskwatch) still apply after it.",
             "[Service]", "PrivateNetwork=no", "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
             "IPAddressDeny=any"]
    if web.enabled:
        loopback = is_loopback(web.bind)
        allow += ["localhost"] if loopback else ["localhost", *PRIVATE]
        why.append(f"the status page on {web.bind}:{web.port}"
                   + ("" if loopback else " from the local network, not the Internet"))
    lines.insert(3, "# Allows: " + "; ".join(why) + ".")
    lines.append("IPAddressAllow=" + " ".join(dict.fromkeys(allow)))
    lines.append("SocketBindDeny=any")
    if web.enabled:
        lines.append(f"SocketBindAllow=tcp:{web.port}")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.splitlines()[2].strip(), file=sys.stderr)
        return 2
    try:
        tables = read_tables(argv[0])
    except ConfigError as exc:
        print(f"network_dropin: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(dropin(tables))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
