"""A real mosquitto broker for the tests: on 127.0.0.1, a free port, a password file.

Started and stopped by its process id; persistence on, so a subscriber's session (and the
QoS 1 messages waiting for it) survives the broker's restart as it would a real one's.
The Debian package provides it (``tests/system-packages.sh`` installs it for ``make test``).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

USER, PASSWORD = "maskwatch", "s3cret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Mosquitto:
    def __init__(self, folder: Path):
        if shutil.which("mosquitto") is None or shutil.which("mosquitto_passwd") is None:
            pytest.skip("needs the mosquitto broker (Debian: apt install mosquitto; "
                        "make test installs it when it runs as root)")
        self.folder = folder
        self.port = free_port()
        self.passwords = folder / "passwords"
        self.passwords.touch(mode=0o600)
        subprocess.run(["mosquitto_passwd", "-b", str(self.passwords), USER, PASSWORD],
                       check=True, capture_output=True)
        self.conf = folder / "mosquitto.conf"
        lines = [f"listener {self.port} 127.0.0.1", "allow_anonymous false",
                 f"password_file {self.passwords}", "persistence true",
                 f"persistence_location {folder}/", "log_dest stderr"]
        if os.geteuid() == 0:
            lines.append("user root")  # as root it would switch to 'mosquitto', locked out of tmp
        self.conf.write_text("\n".join(lines) + "\n")
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(["mosquitto", "-c", str(self.conf)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not start listening")

    def stop(self) -> None:
        if self.process is not None:
            os.kill(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=10)
            self.process = None


class Subscriber:
    """A paho client on ``#`` that records (topic, payload, retain) as they arrive."""

    def __init__(self, broker: Mosquitto, client_id: str = "test-subscriber",
                 persistent: bool = False):
        import paho.mqtt.client as mqtt

        self.messages: list[tuple[str, bytes, bool]] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                                  clean_session=not persistent)
        self.client.username_pw_set(USER, PASSWORD)
        self.client.reconnect_delay_set(0.1, 0.5)
        self.client.on_connect = lambda c, *_: c.subscribe("#", qos=1)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", broker.port, 10)
        self.client.loop_start()

    def _on_message(self, _client, _userdata, message) -> None:
        with self.lock:
            self.messages.append((message.topic, message.payload, bool(message.retain)))

    def wait_for(self, predicate, timeout: float = 20.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                found = [m for m in self.messages if predicate(m)]
            if found:
                return found
            time.sleep(0.05)
        raise AssertionError(f"no such message within {timeout}s; got "
                             f"{[(t, p[:60]) for t, p, _ in self.messages]}")

    def on(self, topic: str) -> list[tuple[str, bytes, bool]]:
        with self.lock:
            return [m for m in self.messages if m[0] == topic]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
