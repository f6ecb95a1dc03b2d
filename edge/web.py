"""A status page for the device: what the camera sees, how fast, what happened.

``[web] enabled = true`` serves, with the standard library's threading HTTP server (no
framework to install or patch on a Pi):

- ``/``: the page — a live view, frames/s and per-stage ms, the model and detector, and
  the last ``events`` events with their snapshot thumbnails;
- ``/stream.mjpg``: the live view, annotated frames as MJPEG at ``stream_fps`` at most;
- ``/api/status``: the page's data as JSON, with today's counts;
- ``/api/counts?hours=24`` (or ``?days=7``): people, unmasked people and violations per
  local hour (day) from the event store, oldest first: ``{"buckets": [{"start": ISO-8601,
  "people": n, "unmasked": n, "violations": n}, …]}``;
- ``/api/events?since=…&limit=…``: the stored events from ``since`` (ISO-8601 or seconds
  since 1970; default: the last 24 h), oldest first, at most ``limit`` (100; up to 10,000);
- ``/chart.svg?hours=24`` (or ``?days=7``): the same counts as a bar chart (``edge.chart``);
- ``/snapshots/NAME``: a violation snapshot from the snapshot sink's folder, by its exact
  file name only (``violation-…-trackN.jpg``): no other file can be asked for;
- ``/healthz``: 200 while frames flow, 503 when none came for ``HEALTHY_WITHIN`` seconds;
- ``/metrics``: Prometheus metrics — frames, faces, events by kind, stage latency
  histograms, source reconnects, frames/s, the MQTT queue's depth and drops.

The camera loop's cost is one reference per frame (:class:`WebSink`): frames are drawn and
JPEG-encoded in the server's threads, once per frame however many watch, and only while
someone does. The server binds to 127.0.0.1 by default (an IPv6 address such as ``::1``
serves IPv6); an address reachable from the network needs ``token_file`` (mode 0600,
checked by the config), and then every request needs the token, as ``Authorization:
Bearer TOKEN`` or ``?token=TOKEN`` (the page passes it on to its own requests).

Bounded, whatever clients do (:class:`BoundedServer`):

- at most ``MAX_CONNECTIONS`` connections are served at once, each by one thread; the next
  one gets an immediate 503 and is closed, from the accepting thread, without a thread;
- a request's headers must all arrive within ``HEADER_TIMEOUT`` seconds (a slowloris
  client that trickles them is cut off), and every read or write waits at most
  ``CLIENT_TIMEOUT``;
- at most ``MAX_STREAMS`` live views run at once. A viewer whose socket buffer is full (it
  stopped reading) for ``STALLED_AFTER`` seconds is *stalled*; when all the slots are taken,
  a new viewer takes the slot of the viewer stalled longest (oldest stalled first: a stalled
  viewer sees nothing anyway, and real viewers keep theirs). Each live view's send buffer is
  small, so a viewer that stops reading shows as stalled within a frame or two;
- a client that resets or times out is a debug line, not a traceback (``handle_error``).
"""

from __future__ import annotations

import hmac
import json
import logging
import socket
import sqlite3
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from edge import checks
from edge.chart import chart
from edge.shared.params import Params, param
from edge.sinks.log import event_json
from edge.sinks.snapshot import NAME as SNAPSHOT_NAME
from edge.sinks.snapshot import snapshot_name
from edge.sinks.store import History
from edge.stats import Stats

log = logging.getLogger(__name__)

HEALTHY_WITHIN = 10.0   # seconds since the last frame for /healthz to say 200
CLIENT_TIMEOUT = 10.0   # the longest a read or a write may wait
HEADER_TIMEOUT = 5.0    # the longest a request's headers may take to arrive, in all
MAX_CONNECTIONS = 48    # connections served at once (one thread each)
MAX_STREAMS = 32        # of them, live views
STALLED_AFTER = 1.0     # a live view's write blocked this long: the viewer stopped reading
STREAM_SNDBUF = 64 * 1024
BOUNDARY = "maskwatch-frame"


@dataclass(frozen=True)
class WebParams(Params):
    """a status page: live view, frames/s, events, /healthz, /metrics"""

    enabled: bool = param(False, help="a status page: live view, frames/s, events, /healthz, "
                                      "/metrics")
    bind: str = param("127.0.0.1", help="an address that is not loopback needs token_file")
    port: int = param(8080, min=1, max=65535)
    token_file: str = param("", path="file",
                            help="a file holding an access token (mode 0600): requests need it")
    stream_fps: float = param(5.0, gt=0.0, max=30.0, help="the live view's frame-rate cap")
    events: int = param(20, min=1, max=1000, help="events the page lists")

    @classmethod
    def problems(cls, values):
        bind = values.get("bind")
        if bind is not None and checks.bind_problem(bind):
            return [("bind", checks.bind_problem(bind))]
        if not values.get("enabled"):
            return []
        if bind is not None and not checks.is_loopback(bind) and not values.get("token_file"):
            return [("token_file", f"web.bind {bind!r} is reachable from the network; it needs "
                                   "a token file (mode 0600) so that only you can see the camera")]
        if values.get("token_file"):
            problem = checks.secret_problem(values["token_file"])
            return [("token_file", problem)] if problem else []
        return []


class WebSink:
    """The loop's side: keeps the latest result and the recent events; counts for /metrics."""

    def __init__(self, events: int, registry: CollectorRegistry, snapshots: bool):
        self.latest = None
        self.sequence = 0
        self.events: deque[dict] = deque(maxlen=events)
        self.snapshots = snapshots
        self.changed = threading.Condition()
        self.faces = Counter("maskwatch_faces", "Faces detected", registry=registry)
        self.event_count = Counter("maskwatch_events", "Events raised", ["kind"],
                                   registry=registry)
        self.stages = Histogram("maskwatch_stage_seconds", "Seconds per frame in each stage",
                                ["stage"], registry=registry,
                                buckets=(.001, .002, .005, .01, .02, .05, .1, .2, .5, 1, 2))

    def handle(self, result) -> bool:
        if result.image is None:
            return False
        self.faces.inc(len(result.tracks))
        for stage, seconds in result.timings.items():
            self.stages.labels(stage).observe(seconds)
        for event in result.events:
            self.event_count.labels(event.kind).inc()
            item = event_json(event, result.wall, result.fps)
            if event.kind == "violation" and self.snapshots:
                item["snapshot"] = snapshot_name(result.wall, event.track_id)
            self.events.appendleft(item)
        with self.changed:
            self.latest = result
            self.sequence += 1
            self.changed.notify_all()
        return True

    def close(self) -> None:
        pass


class _Metrics:
    """What /metrics reads from the loop's stats at scrape time, not counted in the loop."""

    def __init__(self, stats: Stats):
        self.stats = stats

    def collect(self):
        s = self.stats
        yield CounterMetricFamily("maskwatch_frames", "Frames processed", value=s.frames)
        yield CounterMetricFamily("maskwatch_source_reconnects", "Times a lost source came back",
                                  value=s.reconnects)
        yield CounterMetricFamily("maskwatch_frames_refused", "Frames of a degenerate shape",
                                  value=s.refused)
        yield GaugeMetricFamily("maskwatch_fps", "Frames per second, recent average",
                                value=s.fps)
        for name, (help_, read, kind) in list(s.gauges.items()):
            family = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
            yield family(f"maskwatch_{name}", help_, value=read())


class BoundedServer(ThreadingHTTPServer):
    """The standard library's threading server with the bounds of the module docstring."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler):
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self.refused = 0                                   # connections turned away, full
        self._deadlines: dict[socket.socket, float] = {}   # waiting for their headers
        self._deadline_lock = threading.Lock()
        super().__init__(address, handler)
        self._reaper = threading.Thread(target=self._reap, name="web-reaper", daemon=True)
        self._reaper.start()

    def process_request(self, request, client_address):
        if not self.slots.acquire(blocking=False):
            self.refused += 1
            try:  # best effort, never waiting: this is the accepting thread
                request.setblocking(False)
                request.send(b"HTTP/1.0 503 Service Unavailable\r\nContent-Length: 0\r\n"
                             b"Retry-After: 5\r\n\r\n")
            except OSError:
                pass
            self.shutdown_request(request)
            return
        with self._deadline_lock:
            self._deadlines[request] = time.monotonic() + HEADER_TIMEOUT
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._headers_done(request)
            self.slots.release()
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._headers_done(request)
            self.slots.release()

    def _headers_done(self, request) -> None:
        with self._deadline_lock:
            self._deadlines.pop(request, None)

    def _reap(self) -> None:
        """Cut off connections whose headers did not all arrive in time."""
        while True:
            time.sleep(0.5)
            now = time.monotonic()
            with self._deadline_lock:
                late = [r for r, deadline in self._deadlines.items() if deadline < now]
                for request in late:
                    del self._deadlines[request]
            for request in late:
                log.debug("web: headers too slow from %s; closing", _peer(request))
                _cut(request)

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            log.debug("web: %s went away (%s)", client_address[0], type(exc).__name__)
        else:
            log.warning("web: a request from %s failed: %s: %s", client_address[0],
                        type(exc).__name__, exc, exc_info=log.isEnabledFor(logging.DEBUG))


def _peer(request) -> str:
    try:
        return request.getpeername()[0]
    except OSError:
        return "?"


def _cut(request) -> None:
    try:
        request.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class _Viewer:
    """One live view: its socket, and since when its current write has been waiting."""

    def __init__(self, sock):
        self.sock = sock
        self.writing_since: float | None = None


class StatusServer:
    """The page's server: ``config`` its ``WebParams``, ``stats`` the loop's counts (the
    only thing it reads of the loop), ``snapshot_dir`` where snapshots are (None: off),
    ``history`` the event store's reader (None: no store)."""

    def __init__(self, config: WebParams, stats: Stats, snapshot_dir: str | None = None,
                 history: History | None = None):
        self.config = config
        self.stats = stats
        self.history = history
        self.token = None
        if config.token_file:
            self.token = Path(config.token_file).read_text().strip()
            if not self.token:
                raise ValueError(f"{config.token_file} is empty")
        self.snapshot_dir = Path(snapshot_dir).resolve() if snapshot_dir else None
        self.registry = CollectorRegistry()
        self.registry.register(_Metrics(stats))
        self.sink = WebSink(config.events, self.registry, self.snapshot_dir is not None)
        self.viewers: list[_Viewer] = []
        self._viewers_lock = threading.Lock()
        self.evicted = 0                                   # stalled viewers cut off
        self.httpd = BoundedServer((config.bind, config.port), _handler(self))
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="web",
                                        daemon=True)
        self._thread.start()
        log.info("web: serving the status page on http://%s:%d/%s", config.bind, self.port,
                 " (token required)" if self.token else "")

    def jpeg(self) -> tuple[int, bytes]:
        """The latest frame, annotated and encoded once for however many viewers."""
        with self.sink.changed:
            result, sequence = self.sink.latest, self.sink.sequence
        if result is None:
            return -1, b""
        return sequence, result.annotated_jpeg()

    def status(self) -> dict:
        s = self.stats
        latest = self.sink.latest
        return {
            "fps": round(s.fps, 1), "frames": s.frames, "reconnects": s.reconnects,
            "refused": s.refused,
            "stages_ms": {k: round(v * 1000, 2) for k, v in s.timings.items() if k != "faces"},
            "model": s.model, "format": s.model_format,
            "detector": s.detector, "detector_params": s.detector_params,
            "healthy": self.healthy(),
            "tracks": [{"id": t.id, "label": t.label, "confidence": round(t.confidence, 3),
                        "violating": t.violating, "unjudged": t.unjudged,
                        "box": [int(v) for v in t.box]}
                       for t in (latest.tracks if latest else [])],
            "events": list(self.sink.events),
            "today": _today(latest.today if latest else None),
        }

    def counts(self, query: dict) -> list[dict]:
        """``/api/counts`` and ``/chart.svg``'s buckets; ValueError for a bad query."""
        if "days" in query:
            return self.history.days(_number(query, "days", 7, 1, 366))
        return self.history.hours(_number(query, "hours", 24, 1, 24 * 31))

    def events(self, query: dict) -> list[dict]:
        since = query.get("since", [""])[0]
        try:
            start = float(since) if since else time.time() - 86400
        except ValueError:
            try:
                start = datetime.fromisoformat(since).astimezone().timestamp()
            except ValueError:
                raise ValueError(f"since: {since[:40]!r} is neither ISO-8601 nor seconds "
                                 "since 1970") from None
        return self.history.events(start, limit=_number(query, "limit", 100, 1, 10_000))

    def healthy(self) -> bool:
        latest = self.sink.latest
        return latest is not None and time.time() - latest.wall < HEALTHY_WITHIN

    def snapshot_path(self, name: str) -> Path | None:
        """The snapshot file called ``name``, only if that is a snapshot's name in the folder."""
        if self.snapshot_dir is None or len(name) > 64 or not SNAPSHOT_NAME.fullmatch(name):
            return None
        try:
            path = (self.snapshot_dir / name).resolve()
            return path if path.parent == self.snapshot_dir and path.is_file() else None
        except OSError:   # a name the filesystem refuses is no snapshot of ours
            return None

    def add_viewer(self, sock) -> _Viewer | None:
        """A live-view slot for ``sock``: a free one, else the one of the viewer stalled
        longest (which is cut off), else None."""
        with self._viewers_lock:
            if len(self.viewers) >= MAX_STREAMS:
                now = time.monotonic()
                stalled = [v for v in self.viewers if v.writing_since is not None
                           and now - v.writing_since >= STALLED_AFTER]
                if not stalled:
                    return None
                victim = min(stalled, key=lambda v: v.writing_since)
                self.viewers.remove(victim)
                self.evicted += 1
                log.debug("web: viewer %s stalled for %.1fs; its slot goes to a new viewer",
                          _peer(victim.sock), now - victim.writing_since)
                _cut(victim.sock)
            viewer = _Viewer(sock)
            self.viewers.append(viewer)
            return viewer

    def remove_viewer(self, viewer: _Viewer) -> None:
        with self._viewers_lock:
            if viewer in self.viewers:
                self.viewers.remove(viewer)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _number(query: dict, key: str, default: int, low: int, high: int) -> int:
    text = query.get(key, [str(default)])[0]
    if not text.isdigit() or not low <= int(text) <= high:
        raise ValueError(f"{key}: a whole number from {low} to {high}, got {text[:20]!r}")
    return int(text)


def _today(today) -> dict | None:
    if today is None:
        return None
    c = today.counts
    return {"day": today.day.isoformat(), "people": c.people, "unmasked": c.unmasked,
            "violations": c.violations, "compliance": c.compliance}


def _handler(server: StatusServer):
    class Handler(BaseHTTPRequestHandler):
        timeout = CLIENT_TIMEOUT
        server_version = "maskwatch"

        def log_message(self, fmt, *args):  # the journal needs no line per request
            log.debug("web: %s " + fmt, self.address_string(), *args)

        def parse_request(self) -> bool:
            ok = super().parse_request()
            self.server._headers_done(self.connection)   # all in: the deadline is off
            return ok

        def do_GET(self):
            url = urlsplit(self.path)
            if server.token is not None and not self._authorised(url):
                self._send(HTTPStatus.UNAUTHORIZED, b"token required\n", "text/plain",
                           {"WWW-Authenticate": "Bearer"})
                return
            path = url.path
            if path == "/":
                self._send(HTTPStatus.OK, PAGE.encode(), "text/html; charset=utf-8")
            elif path == "/api/status":
                self._send(HTTPStatus.OK, json.dumps(server.status()).encode(),
                           "application/json")
            elif path in ("/api/counts", "/api/events", "/chart.svg"):
                self._history(path, parse_qs(url.query))
            elif path == "/healthz":
                ok = server.healthy()
                self._send(HTTPStatus.OK if ok else HTTPStatus.SERVICE_UNAVAILABLE,
                           b"ok\n" if ok else b"no frames\n", "text/plain")
            elif path == "/metrics":
                self._send(HTTPStatus.OK, generate_latest(server.registry), CONTENT_TYPE_LATEST)
            elif path == "/stream.mjpg":
                self._stream()
            elif path.startswith("/snapshots/"):
                file = server.snapshot_path(path.removeprefix("/snapshots/"))
                if file is None:
                    self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")
                else:
                    self._send(HTTPStatus.OK, file.read_bytes(), "image/jpeg")
            else:
                self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")

        def _history(self, path: str, query: dict) -> None:
            if server.history is None:
                self._send(HTTPStatus.NOT_FOUND, b"no event store ([sinks.store] enabled = "
                           b"false)\n", "text/plain")
                return
            try:
                if path == "/api/events":
                    body, kind = json.dumps({"events": server.events(query)}), "application/json"
                else:
                    buckets = server.counts(query)
                    if path == "/api/counts":
                        body, kind = json.dumps({"buckets": buckets}), "application/json"
                    else:
                        daily = "days" in query
                        title = (f"people per day, last {len(buckets)} days" if daily
                                 else f"people per hour, last {len(buckets)} hours")
                        body = chart(buckets, title, "%a %d" if daily else "%H:00")
                        kind = "image/svg+xml"
            except ValueError as exc:
                self._send(HTTPStatus.BAD_REQUEST, f"{exc}\n".encode(), "text/plain")
                return
            except sqlite3.Error as exc:
                log.warning("web: the event store could not be read: %s", exc)
                self._send(HTTPStatus.SERVICE_UNAVAILABLE, b"the event store could not be "
                           b"read\n", "text/plain")
                return
            self._send(HTTPStatus.OK, body.encode(), kind)

        def _authorised(self, url) -> bool:
            given = parse_qs(url.query).get("token", [""])[0]
            header = self.headers.get("Authorization", "")
            if header.startswith("Bearer "):
                given = header.removeprefix("Bearer ").strip()
            return hmac.compare_digest(given.encode(), server.token.encode())

        def _send(self, status, body: bytes, content_type: str, headers: dict | None = None):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

        def _stream(self):
            viewer = server.add_viewer(self.connection)
            if viewer is None:
                self._send(HTTPStatus.SERVICE_UNAVAILABLE, b"too many viewers\n", "text/plain")
                return
            try:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, STREAM_SNDBUF)
                self.send_response(HTTPStatus.OK)
                self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                interval = 1.0 / server.config.stream_fps
                sent = -1
                while True:
                    started = time.monotonic()
                    with server.sink.changed:
                        server.sink.changed.wait_for(lambda: server.sink.sequence != sent,
                                                     timeout=CLIENT_TIMEOUT)
                    sequence, jpeg = server.jpeg()
                    if sequence != sent and jpeg:
                        viewer.writing_since = time.monotonic()
                        self.wfile.write(f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                                         f"Content-Length: {len(jpeg)}\r\n\r\n".encode()
                                         + jpeg + b"\r\n")
                        self.wfile.flush()
                        viewer.writing_since = None
                        sent = sequence
                    time.sleep(max(0.0, started + interval - time.monotonic()))
            except (OSError, ValueError):
                log.debug("web: a viewer left (or stopped reading and was cut off)")
            finally:
                server.remove_viewer(viewer)

    return Handler


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>maskwatch</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body { font: 15px/1.4 system-ui, sans-serif; margin: 0; background: #111; color: #eee; }
header { padding: .6em 1em; background: #222; display: flex; gap: 2em; flex-wrap: wrap; }
header b { color: #8f8; } header .bad { color: #f66; }
main { display: flex; flex-wrap: wrap; align-items: flex-start; gap: 1em; padding: 1em; }
#live { max-width: 100%; width: 640px; background: #000; border: 1px solid #333; }
section { flex: 1; min-width: 24em; }
table { border-collapse: collapse; }
td, th { padding: .25em .6em; border-bottom: 1px solid #333; text-align: left; }
tr.violation td:first-child { color: #f66; } tr.clear td:first-child { color: #8f8; }
img.thumb { width: 96px; display: block; }
#stages { font-family: monospace; }
#today b { color: #fff; } #compliance { font-size: 1.3em; }
.charts div { margin-bottom: .6em; } .charts svg { max-width: 100%; height: auto; }
</style></head><body>
<header><span>maskwatch</span><span>frames/s <b id="fps">-</b></span>
<span id="health">-</span><span id="model"></span><span id="stages"></span></header>
<main><img id="live" alt="live view">
<section class="charts"><h3 id="today">Today: <b id="people">-</b> people,
<b id="unmasked">-</b> unmasked, compliance <b id="compliance">-</b></h3>
<div id="hours"></div><div id="days"></div></section>
<section><h3>Events</h3><table><thead><tr><th>event</th><th>time</th><th>track</th>
<th>label</th><th>p</th><th>snapshot</th></tr></thead><tbody id="events"></tbody></table>
</section></main>
<script>
const token = new URLSearchParams(location.search).get("token");
const q = token ? "?token=" + encodeURIComponent(token) : "";
document.getElementById("live").src = "stream.mjpg" + q;
function cell(row, text) { const td = row.insertCell(); td.textContent = text; return td; }
async function refresh() {
  try {
    const s = await (await fetch("api/status" + q)).json();
    document.getElementById("fps").textContent = s.fps;
    const live = document.getElementById("live");
    live.dataset.width = live.naturalWidth;   // 0 until the first frame has been drawn
    const health = document.getElementById("health");
    health.textContent = s.healthy ? "frames flowing" : "no frames";
    health.className = s.healthy ? "" : "bad";
    document.getElementById("model").textContent =
      s.detector + " + " + s.model.split("/").pop() + " (" + s.format + ")";
    document.getElementById("stages").textContent = Object.entries(s.stages_ms)
      .map(([k, v]) => k + " " + v + " ms").join("  ");
    const body = document.getElementById("events");
    body.replaceChildren();
    for (const e of s.events) {
      const row = body.insertRow(); row.className = e.event;
      cell(row, e.event); cell(row, e.time.replace("T", " ").slice(0, 23));
      cell(row, "#" + e.track); cell(row, e.label); cell(row, e.confidence);
      const td = row.insertCell();
      if (e.snapshot) {
        const img = document.createElement("img"); img.className = "thumb";
        img.src = "snapshots/" + e.snapshot + q; img.alt = e.snapshot; td.appendChild(img);
      }
    }
    const today = s.today || {people: 0, unmasked: 0, compliance: null};
    document.getElementById("people").textContent = today.people;
    document.getElementById("unmasked").textContent = today.unmasked;
    document.getElementById("compliance").textContent =
      today.compliance === null ? "-" : today.compliance + "%";
  } catch (err) { document.getElementById("health").textContent = "page: " + err; }
}
async function charts() {
  for (const [id, query] of [["hours", "hours=24"], ["days", "days=7"]]) {
    const box = document.getElementById(id);
    try {
      const reply = await fetch("chart.svg?" + query + (token ? "&token=" +
                                encodeURIComponent(token) : ""));
      box.innerHTML = reply.ok ? await reply.text() : "";
      box.dataset.loaded = reply.ok ? "yes" : "no: " + reply.status;
    } catch (err) { box.dataset.loaded = "no: " + err; }
  }
}
refresh(); setInterval(refresh, 2000);
charts(); setInterval(charts, 60000);
</script></body></html>
"""
