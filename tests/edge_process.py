"""Running the real ``python -m edge run`` process in tests: its config, start and stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import ROOT

# Masked, then bare long enough for a violation (3 of 5 frames), then masked long enough
# (0.6 s at 10 frames/s) for it to clear: one violation every 1.5 s.
CYCLE = (("masked", 3), ("plain", 6), ("masked", 6))


def config_file(folder: Path, model: Path, frames: Path | None, fps: float = 10.0,
                extra: str = "") -> Path:
    path = folder / "maskwatch.toml"
    kind = 'kind = "images"\n' if frames else ""
    images = f'[source.images]\npath = "{frames}"\n' if frames else ""
    store = "" if "[sinks.store]" in extra else f'[sinks.store]\npath = "{folder}/events.db"\n'
    path.write_text(f"[source]\n{kind}fps = {fps}\nreconnect_min = 1.0\n{images}"
                    f'[model]\npath = "{model}"\n[tracker]\ncooldown = 0.5\n{store}{extra}')
    return path


def start(args: list[str], env: dict | None = None, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "GPIOZERO_PIN_FACTORY": "mock", "PYTHONPATH": str(ROOT), **(env or {})}
    kwargs.setdefault("stdout", subprocess.PIPE)
    return subprocess.Popen([sys.executable, "-m", "edge", *args], cwd=ROOT, env=env,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def finish(proc: subprocess.Popen, timeout: float) -> tuple[str, str]:
    """Wait for ``proc`` to end; kill it when it overruns, so no test leaves one behind."""
    try:
        return proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def stop_and_time(proc: subprocess.Popen, sig=signal.SIGTERM, limit: float = 30.0):
    """Send ``sig``; return (seconds until the process ended, its stderr)."""
    sent = time.monotonic()
    proc.send_signal(sig)
    try:
        _, err = proc.communicate(timeout=limit)
    finally:
        proc.kill()
    return time.monotonic() - sent, err
