"""The status page of a real ``python -m edge run``: rendered by headless Chromium (the Debian
package), its token on a non-loopback address, snapshots that can't be used to read other
files, /healthz and /metrics."""

from __future__ import annotations

import http.client
import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from edge.samples import write_frames
from tests.edge_process import CYCLE, config_file, finish, start
from tests.mosquitto import free_port

pytestmark = [pytest.mark.slow, pytest.mark.service]

CHROMIUM = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync"]



def web_config(tmp_path: Path, model: Path, frames: Path | None, port: int, bind="127.0.0.1",
               token: str | None = None, fps: float = 5.0) -> Path:
    token_line = ""
    if token is not None:
        secret = tmp_path / "token"
        secret.write_text(token + "\n")
        secret.chmod(0o600)
        token_line = f'token_file = "{secret}"'
    return config_file(tmp_path, model, frames, fps=fps, extra=f"""
[sinks.snapshot]
enabled = true
dir = "{tmp_path / 'snapshots'}"
[web]
enabled = true
bind = "{bind}"
port = {port}
{token_line}
""")


def get(port: int, path: str, headers: dict | None = None) -> tuple[int, bytes, dict]:
    """A raw request (the path goes out exactly as written, no client-side cleaning)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path, headers=headers or {})
    response = conn.getresponse()
    body = response.read() if not path.startswith("/stream") else response.read(20_000)
    conn.close()
    return response.status, body, dict(response.getheaders())


def wait_until(port: int, path: str, status: int = 200, headers=None, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            got = get(port, path, headers)
            if got[0] == status:
                return got
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{path} never answered {status}")


@pytest.fixture
def running(model, tmp_path):
    """The runtime on 8 violation cycles of the demo frames (12 s), serving the page."""
    frames = tmp_path / "frames"
    write_frames(frames, sequence=CYCLE * 8)
    port = free_port()
    proc = start(["run", "--config", str(web_config(tmp_path, model, frames, port, fps=10.0))])
    yield port, tmp_path
    proc.kill()
    proc.wait()


def test_the_page_renders_the_live_view_and_the_events_in_chromium(running):
    if shutil.which("chromium") is None:
        pytest.skip("needs headless Chromium (Debian: apt install chromium; make test "
                    "installs it when it runs as root)")
    port, tmp_path = running
    events = lambda: json.loads(get(port, "/api/status")[1])["events"]  # noqa: E731
    wait_until(port, "/healthz")
    deadline = time.monotonic() + 20
    while not any(e["event"] == "violation" for e in events()) and time.monotonic() < deadline:
        time.sleep(0.2)
    browser = CHROMIUM + [f"--user-data-dir={tmp_path / 'chromium'}", "--virtual-time-budget=5000"]
    url = f"http://127.0.0.1:{port}/"
    dom = subprocess.run(browser + ["--dump-dom", url], capture_output=True, text=True,
                         timeout=60).stdout
    assert 'data-width="640"' in dom                     # the live view drew a 640 px frame
    assert '<tr class="violation">' in dom               # the event list, from /api/status
    assert 'class="thumb" src="snapshots/violation-' in dom
    shot = tmp_path / "page.png"
    subprocess.run(browser + ["--window-size=1280,720", f"--screenshot={shot}", url],
                   capture_output=True, timeout=60)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000


def test_stream_health_metrics_and_snapshots(running):
    port, tmp_path = running
    wait_until(port, "/healthz")
    status, body, headers = get(port, "/stream.mjpg")
    assert status == 200 and headers["Content-Type"].startswith("multipart/x-mixed-replace")
    assert b"Content-Type: image/jpeg" in body and b"\xff\xd8" in body
    deadline = time.monotonic() + 20
    while not list((tmp_path / "snapshots").glob("violation-*.jpg")):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    time.sleep(0.5)
    metrics = get(port, "/metrics")[1].decode()
    for line in ("maskwatch_frames_total ", 'maskwatch_events_total{kind="violation"} ',
                 'maskwatch_stage_seconds_bucket{le="0.5",stage="detect"} ',
                 "maskwatch_source_reconnects_total 0.0", "maskwatch_fps "):
        assert line in metrics, line
    name = sorted((tmp_path / "snapshots").glob("violation-*.jpg"))[0].name
    status, body, headers = get(port, f"/snapshots/{name}")
    assert status == 200 and headers["Content-Type"] == "image/jpeg" and body[:2] == b"\xff\xd8"
    # Nothing but a snapshot's own name in the snapshot folder, however it is spelled.
    (tmp_path / "secret.txt").write_text("not for the web")
    for path in ("/snapshots/../secret.txt", "/snapshots/..%2fsecret.txt",
                 "/snapshots/%2e%2e/secret.txt", f"/snapshots/{name}/../../secret.txt",
                 "/snapshots//etc/passwd", "/snapshots/violation-1-track1.jpg",
                 "/../../etc/passwd", "/snapshots/" + name.replace(".jpg", ".JPG")):
        assert get(port, path)[0] == 404, path


def test_a_network_bind_needs_the_token_on_every_request(model, tmp_path):
    frames = tmp_path / "frames"
    write_frames(frames, sequence=CYCLE * 6)
    port = free_port()
    token = "t0ken-" + "x" * 26
    proc = start(["run", "--config", str(web_config(tmp_path, model, frames, port,
                                                    bind="0.0.0.0", token=token))])
    try:
        bearer = {"Authorization": f"Bearer {token}"}
        wait_until(port, "/healthz", headers=bearer)
        for path in ("/", "/api/status", "/healthz", "/metrics", "/stream.mjpg",
                     "/snapshots/x.jpg", "/?token=wrong"):
            status, _, headers = get(port, path)
            assert status == 401 and headers["WWW-Authenticate"] == "Bearer", path
        assert get(port, "/api/status", {"Authorization": "Bearer wrong"})[0] == 401
        assert get(port, "/api/status", bearer)[0] == 200
        assert get(port, f"/?token={token}")[0] == 200
    finally:
        proc.kill()
        proc.wait()


def test_healthz_says_503_while_no_frames_come(model, tmp_path):
    port = free_port()
    dead = f"rtsp://127.0.0.1:{free_port()}/nothing"    # refused at once, retried for ever
    proc = start(["run", "--config", str(web_config(tmp_path, model, None, port)),
                  "--source", dead])
    try:
        status, body, _ = wait_until(port, "/healthz", status=503)
        assert body == b"no frames\n"
        assert json.loads(get(port, "/api/status")[1])["healthy"] is False
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("bind, token_mode, problem", [
    ("0.0.0.0", None, "web.token_file: web.bind '0.0.0.0' is reachable from the network"),
    ("192.168.1.20", 0o644, "is readable by others (mode 0644); chmod 600 it"),
])
def test_the_config_refuses_an_open_or_leaky_page(model, tmp_path, bind, token_mode, problem):
    config = web_config(tmp_path, model, tmp_path, 8080, bind=bind,
                        token=None if token_mode is None else "abc")
    if token_mode is not None:
        (tmp_path / "token").chmod(token_mode)
    proc = start(["check-config", str(config)])
    _, err = finish(proc, 60)
    assert proc.returncode == 2 and problem in err


def test_a_busy_port_is_a_startup_error(model, tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = start(["run", "--config", str(web_config(tmp_path, model, tmp_path, port))])
        _, err = finish(proc, 60)
    assert proc.returncode == 2 and f"web: cannot serve on 127.0.0.1:{port}" in err


def test_counts_events_and_the_chart_offline_in_chromium(model, tmp_path):
    """A day of a busy door (edge.measure.store.simulate) in the store, the real runtime
    serving it: the APIs, then the page in Chromium with every name but 127.0.0.1 unresolvable
    and no proxy — the chart's bars must carry the API's counts, at heights in proportion."""
    import re
    from datetime import date, datetime, timedelta

    from edge.measure.store import simulate
    from edge.sinks.store import History

    db = tmp_path / "events.db"
    yesterday = date.today() - timedelta(days=1)
    written = simulate(db, days=2, end=yesterday)         # today stays empty until the run
    frames = tmp_path / "frames"
    write_frames(frames, sequence=CYCLE * 4)
    port = free_port()
    proc = start(["run", "--config", str(web_config(tmp_path, model, frames, port, fps=10.0))])
    try:
        wait_until(port, "/healthz")
        status, body, _ = get(port, "/api/counts?days=7")
        days = json.loads(body)["buckets"]
        assert status == 200 and len(days) == 7
        assert days[-2]["start"].startswith(yesterday.isoformat())
        assert sum(d["people"] for d in days[:-1]) == written.people
        assert sum(d["violations"] for d in days[:-1]) == written.violations
        hours = json.loads(get(port, "/api/counts?hours=24")[1])["buckets"]
        assert len(hours) == 24 and hours == History(db).hours(24)[:23] + hours[23:]
        status, body, _ = get(port, f"/api/events?since={yesterday.isoformat()}&limit=5")
        events = json.loads(body)["events"]
        assert status == 200 and len(events) == 5
        midnight = datetime.combine(yesterday, datetime.min.time()).timestamp()
        assert events == History(db).events(since=midnight, limit=5)
        assert events[0]["time"] >= yesterday.isoformat()
        for bad in ("/api/counts?hours=0", "/api/counts?hours=x", "/api/counts?days=9999",
                    "/api/events?since=yesterday", "/api/events?limit=-1"):
            status, body, _ = get(port, bad)
            assert status == 400 and body.strip(), bad
        if shutil.which("chromium") is None:
            pytest.skip("needs headless Chromium (Debian: apt install chromium)")
        browser = CHROMIUM + [f"--user-data-dir={tmp_path / 'chromium'}",
                              "--virtual-time-budget=5000",
                              "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                              "--no-proxy-server"]
        dom = subprocess.run(browser + ["--dump-dom", f"http://127.0.0.1:{port}/"],
                             capture_output=True, text=True, timeout=60).stdout
        assert 'id="hours" data-loaded="yes"' in dom and 'id="days" data-loaded="yes"' in dom
        week = dom[dom.index('id="days"'):]
        bars = re.findall(r'<rect class="(people|unmasked)" data-count="(\d+)" data-start="'
                          r'([^"]+)" x="[\d.]+" y="[\d.]+" width="[\d.]+" height="([\d.]+)"', week)
        people = [(int(n), float(h)) for kind, n, _, h in bars if kind == "people"]
        unmasked = [int(n) for kind, n, _, _ in bars if kind == "unmasked"]
        assert [n for n, _ in people[:6]] == [d["people"] for d in days[:6]]
        assert unmasked[:6] == [d["unmasked"] for d in days[:6]]
        tallest = max(people)
        for n, h in people:                                # one scale for every bar
            assert h == pytest.approx(tallest[1] * n / tallest[0], abs=0.05)
        assert re.search(r'id="compliance">(\d+(\.\d)?%|-)<', dom)
    finally:
        proc.kill()
        proc.wait()
