"""Checks of values the config names that only the world can answer: files, certificates,
host names, MQTT topics. ``load_config`` runs them, so ``check-config`` refuses whatever
would stop ``run`` from starting or make a sink fail for sure, naming the key.

Standard library only: the installer reads configs with the system's Python.
Each function returns what is wrong, or None.
"""

from __future__ import annotations

import ipaddress
import os
import pwd
import ssl
import stat

# MQTT: a topic is at most 65,535 bytes of UTF-8 (the longest suffix added is this long).
MAX_TOPIC_BYTES = 65535 - len("/availability")
SECRET_MAX_BYTES = 4096


def path_problem(value: str) -> str | None:
    """An empty path, or one the operating system can't take."""
    if not value:
        return "must not be empty"
    if "\0" in value:
        return "contains a NUL character"
    return None


def _homes() -> dict[str, str]:
    """Every user's home folder, resolved: {folder: user}."""
    return {os.path.realpath(user.pw_dir): user.pw_name for user in pwd.getpwall()}


def folder_problem(value: str) -> str | None:
    """A folder the runtime must not keep its files in: the root, a folder directly under
    it (/etc, /home, /tmp...), or a user's home. Erase deletes there what it finds of its
    own; such a folder belongs to the system or to a person."""
    where = os.path.realpath(value)
    if os.path.dirname(where) == "/":                 # "/" itself too
        return (f"{value} is the root folder or a system folder directly under it: give the "
                "runtime a folder of its own (/var/lib/maskwatch/...)")
    user = _homes().get(where)
    if user is not None:
        return f"{value} is {user}'s home folder: give the runtime a folder of its own"
    return None


def store_path_problem(value: str) -> str | None:
    """A database path that is no file's: empty, a folder that exists, the root or a home."""
    if not value:
        return "must not be empty"
    where = os.path.realpath(value)
    if where == "/" or os.path.isdir(where) or where in _homes():
        return f"{value} is a folder: give the database file's path (.../events.db)"
    return None


def secret_problem(path: str) -> str | None:
    """A token or password file: a readable regular file of one line of text, not empty,
    not readable by others."""
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            return f"{path} is not a regular file"
        if info.st_mode & 0o077:
            return (f"{path} is readable by others (mode {info.st_mode & 0o777:04o}); "
                    "chmod 600 it")
        if info.st_size > SECRET_MAX_BYTES:
            return f"{path} is {info.st_size} bytes: not a token or password"
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        return f"cannot read {path} ({exc.strerror})"
    try:
        text = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        return f"{path} is not text (UTF-8)"
    if not text:
        return f"{path} is empty"
    if any(ord(c) < 32 for c in text):
        return f"{path} holds control characters or more than one line"
    return None


def ca_problem(path: str) -> str | None:
    """A CA file that does not parse as PEM certificates."""
    try:
        ssl.create_default_context().load_verify_locations(cafile=path)
    except (OSError, ssl.SSLError, ValueError) as exc:
        return f"{path} is not a PEM certificate file ({_reason(exc)})"
    return None


def cert_problem(cert: str, key: str) -> str | None:
    """A client certificate and key that do not parse as PEM, or don't belong together."""
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_cert_chain(cert, key or None)
    except (OSError, ssl.SSLError, ValueError) as exc:
        return f"{cert}{' and ' + key if key else ''}: not a PEM certificate and key ({_reason(exc)})"
    return None


def _reason(exc: Exception) -> str:
    return getattr(exc, "reason", None) or getattr(exc, "strerror", None) or str(exc)


def address(host: str):
    """``host`` as an IP address, or None if it is not one."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def is_loopback(bind: str) -> bool:
    """Whether a bind address (an IP address or ``localhost``) is reachable from this
    machine only."""
    return bind == "localhost" or bool(address(bind) and address(bind).is_loopback)


def bind_problem(bind: str) -> str | None:
    if bind != "localhost" and address(bind) is None:
        return (f"must be an IP address (0.0.0.0 or ::: every interface) or localhost, "
                f"got {bind!r}")
    return None


def host_problem(host: str) -> str | None:
    """A broker address that is neither an IP address nor a valid (IDNA) host name."""
    if not host:
        return "must not be empty"
    if address(host) is not None:
        return None
    try:
        ascii_name = host.encode("idna").decode("ascii")
    except UnicodeError as exc:
        return f"{host!r} is not a valid host name ({exc})"
    if len(ascii_name) > 253 or any(not label or len(label) > 63
                                    for label in ascii_name.rstrip(".").split(".")):
        return f"{host!r} is not a valid host name (a label of 1 to 63 characters each)"
    return None


def topic_problem(prefix: str) -> str | None:
    """A topic prefix MQTT can't publish under: wildcards, NUL, '$', too long."""
    if any(c in prefix for c in "+#"):
        return f"{prefix!r} holds a wildcard (+ or #), which no published topic may"
    if "\0" in prefix:
        return "contains a NUL character"
    if prefix.startswith("$"):
        return f"{prefix!r} starts with '$', which brokers keep for themselves"
    if len(prefix.encode("utf-8", "surrogatepass")) > MAX_TOPIC_BYTES:
        return f"is longer than MQTT allows ({MAX_TOPIC_BYTES} bytes with its suffixes)"
    return None
