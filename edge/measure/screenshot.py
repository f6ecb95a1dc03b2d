"""The status page with a week of a busy door behind it, as headless Chromium draws it.

    python -m edge.measure.screenshot --out docs/status-page.jpg

Six days and today so far of ``edge.measure.store.simulate`` go into a fresh event store;
the real ``python -m edge run`` then serves the page on 127.0.0.1 while it watches the demo
frames (looping), and Chromium (the Debian package) takes the picture. Chromium runs with
every host name but 127.0.0.1 unresolvable, as on an offline Pi. A ``.jpg`` output is the
PNG re-encoded (smaller in the repository).
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import cv2

from edge.measure.store import simulate
from edge.samples import write_frames

CHROMIUM = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1", "--no-proxy-server"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(port: int, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the status page never came up")


def shoot(out: Path, model: str | None, seconds: float) -> None:
    if shutil.which("chromium") is None:
        raise RuntimeError("needs headless Chromium (Debian: apt install chromium)")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        db = tmp / "events.db"
        simulate(db, days=7, end=date.today(), until=time.time())
        frames = tmp / "frames"
        write_frames(frames)
        port = _free_port()
        model_line = f'[model]\npath = "{model}"\n' if model else ""
        config = tmp / "maskwatch.toml"
        config.write_text(f'[source]\nkind = "images"\nfps = 10.0\nloop = true\n'
                          f'[source.images]\npath = "{frames}"\n{model_line}'
                          f'[sinks.gpio]\nenabled = false\n[sinks.store]\npath = "{db}"\n'
                          f'[tracker]\ncooldown = 0.5\n[web]\nenabled = true\nport = {port}\n')
        env = {**os.environ, "GPIOZERO_PIN_FACTORY": "mock"}
        proc = subprocess.Popen([sys.executable, "-m", "edge", "run", "--config", str(config)],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            _wait(port)
            time.sleep(seconds)                 # a violation or two in the event list
            png = tmp / "page.png"
            subprocess.run(CHROMIUM + [f"--user-data-dir={tmp / 'chromium'}",
                                       "--virtual-time-budget=5000", "--window-size=1280,1000",
                                       f"--screenshot={png}", f"http://127.0.0.1:{port}/"],
                           check=True, capture_output=True, timeout=120)
            out.parent.mkdir(parents=True, exist_ok=True)
            if out.suffix.lower() in (".jpg", ".jpeg"):
                cv2.imwrite(str(out), cv2.imread(str(png)), [cv2.IMWRITE_JPEG_QUALITY, 85])
            else:
                shutil.copyfile(png, out)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    print(f"screenshot: {out}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m edge.measure.screenshot", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("docs/status-page.jpg"))
    p.add_argument("--model", help="model folder (default: models/default)")
    p.add_argument("--seconds", type=float, default=4.0, help="frames to watch before the shot")
    args = p.parse_args(argv)
    shoot(args.out, args.model, args.seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
