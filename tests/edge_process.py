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


def run_measuring_peak(args: list[str],
                       timeout: float = 120) -> tuple[subprocess.CompletedProcess, float]:
    """Run ``python -m edge ARGS`` to its end in a fresh process; its result and its peak RSS
    in MB as the process itself reports it (VmHWM, not ru_maxrss: Linux carries ru_maxrss
    over exec from the big pytest parent)."""
    script = ("import sys\nfrom edge.__main__ import main\n"
              f"code = main({args!r})\n"
              "peak = [line for line in open('/proc/self/status') if line.startswith('VmHWM:')]\n"
              "print('peak-kb', peak[0].split()[1], file=sys.stderr)\nsys.exit(code)\n")
    env = {**os.environ, "GPIOZERO_PIN_FACTORY": "mock", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
    kb = [line.split()[1] for line in proc.stderr.splitlines() if line.startswith("peak-kb ")]
    assert kb, f"no peak reported (exit {proc.returncode}): {proc.stderr[-2000:]}"
    return proc, int(kb[-1]) / 1024
