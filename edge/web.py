"""A status page for the device: what the camera sees, how fast, what happened.

``[web] enabled = true`` serves, with the standard library's threading HTTP server (no
framework to install or patch on a Pi):

- ``/``: the page — a live view, frames/s and per-stage ms, the model and detector, and
  the last ``events`` events with their snapshot thumbnails;
- ``/stream.mjpg``: the live view, annotated frames as MJPEG at ``stream_fps`` at most;
- ``/api/status``: the page's data as JSON;
- ``/snapshots/NAME``: a violation snapshot from the snapshot sink's folder, by its exact
  file name only (``violation-…-trackN.jpg``): no other file can be asked for;
- ``/healthz``: 200 while frames flow, 503 when none came for ``HEALTHY_WITHIN`` seconds;
- ``/metrics``: Prometheus metrics — frames, faces, events by kind, stage latency
  histograms, source reconnects, frames/s, the MQTT queue's depth and drops.

The camera loop's cost is one reference per frame (:class:`WebSink`): frames are drawn and
JPEG-encoded in the server's threads, once per frame however many watch, and only while
someone does. The server binds to 127.0.0.1 by default; an address reachable from the
network needs ``token_file`` (mode 0600, checked by the config), and then every request
needs the token, as ``Authorization: Bearer TOKEN`` or ``?token=TOKEN`` (the page passes
it on to its own requests). Sockets time out after ``CLIENT_TIMEOUT`` seconds, so a
client that stops reading is dropped, and at most ``MAX_STREAMS`` live views run at once.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
import time
from collections import deque
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import cv2
from prometheus_client import (CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram,
                               generate_latest)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from edge.sinks.annotate import draw
from edge.sinks.log import event_json
from edge.sinks.snapshot import NAME as SNAPSHOT_NAME
from edge.sinks.snapshot import snapshot_name

log = logging.getLogger(__name__)

HEALTHY_WITHIN = 10.0   # seconds since the last frame for /healthz to say 200
CLIENT_TIMEOUT = 10.0
MAX_STREAMS = 32
BOUNDARY = "maskwatch-frame"


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
    """What /metrics reads from the pipeline at scrape time, not counted in the loop."""

    def __init__(self, pipeline):
        self.pipeline = pipeline

    def collect(self):
        p = self.pipeline
        yield CounterMetricFamily("maskwatch_frames", "Frames processed", value=p.frames)
        yield CounterMetricFamily("maskwatch_source_reconnects", "Times a lost source came back",
                                  value=p.reconnects)
        yield GaugeMetricFamily("maskwatch_fps", "Frames per second, recent average",
                                value=p.fps)
        mqtt = next((s for s in p.sinks if s.name == "mqtt"), None)
        if mqtt is not None and mqtt.sink is not None:
            yield GaugeMetricFamily("maskwatch_mqtt_queue_depth", "Events waiting for the broker",
                                    value=len(mqtt.sink.queue))
            yield CounterMetricFamily("maskwatch_mqtt_dropped", "Events dropped: queue full",
                                      value=mqtt.sink.dropped)
            yield GaugeMetricFamily("maskwatch_mqtt_connected", "1 while connected to the broker",
                                    value=int(mqtt.sink.connected))


class StatusServer:
    def __init__(self, config, pipeline):
        self.config = config
        self.pipeline = pipeline
        self.token = None
        if config.token_file:
            self.token = Path(config.token_file).read_text().strip()
            if not self.token:
                raise ValueError(f"{config.token_file} is empty")
        snapshot = pipeline.config.sinks.snapshot
        self.snapshot_dir = Path(snapshot.dir).resolve() if snapshot.enabled else None
        self.registry = CollectorRegistry()
        self.registry.register(_Metrics(pipeline))
        self.sink = WebSink(config.events, self.registry, self.snapshot_dir is not None)
        self.streams = threading.BoundedSemaphore(MAX_STREAMS)
        self._jpeg_lock = threading.Lock()
        self._jpeg = (-1, b"")
        self.httpd = ThreadingHTTPServer((config.bind, config.port), _handler(self))
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="web",
                                        daemon=True)
        self._thread.start()
        log.info("web: serving the status page on http://%s:%d/%s", config.bind, self.port,
                 " (token required)" if self.token else "")

    def jpeg(self) -> tuple[int, bytes]:
        """The latest frame, annotated and encoded once for however many viewers."""
        sink = self.sink
        with self._jpeg_lock:
            if self._jpeg[0] != sink.sequence and sink.latest is not None:
                result, sequence = sink.latest, sink.sequence
                ok, data = cv2.imencode(".jpg", cv2.cvtColor(draw(result.image, result.tracks),
                                                             cv2.COLOR_RGB2BGR),
                                        [cv2.IMWRITE_JPEG_QUALITY, 80])
                if ok:
                    self._jpeg = (sequence, data.tobytes())
            return self._jpeg

    def status(self) -> dict:
        p = self.pipeline
        latest = self.sink.latest
        return {
            "fps": round(p.fps, 1), "frames": p.frames, "reconnects": p.reconnects,
            "stages_ms": {k: round(v * 1000, 2) for k, v in p.timings.items() if k != "faces"},
            "model": str(p.classifier.model.path), "format": p.classifier.model.format,
            "detector": p.config.detector.name, "detector_params": p.config.detector.params,
            "healthy": self.healthy(),
            "tracks": [{"id": t.id, "label": t.label, "confidence": round(t.confidence, 3),
                        "violating": t.violating, "unjudged": t.unjudged,
                        "box": [int(v) for v in t.box]}
                       for t in (latest.tracks if latest else [])],
            "events": list(self.sink.events),
        }

    def healthy(self) -> bool:
        latest = self.sink.latest
        return latest is not None and time.time() - latest.wall < HEALTHY_WITHIN

    def snapshot_path(self, name: str) -> Path | None:
        """The snapshot file called ``name``, only if that is a snapshot's name in the folder."""
        if self.snapshot_dir is None or not SNAPSHOT_NAME.fullmatch(name):
            return None
        path = (self.snapshot_dir / name).resolve()
        return path if path.parent == self.snapshot_dir and path.is_file() else None

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _handler(server: StatusServer):
    class Handler(BaseHTTPRequestHandler):
        timeout = CLIENT_TIMEOUT
        server_version = "maskwatch"

        def log_message(self, fmt, *args):  # the journal needs no line per request
            log.debug("web: %s " + fmt, self.address_string(), *args)

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
            if not server.streams.acquire(blocking=False):
                self._send(HTTPStatus.SERVICE_UNAVAILABLE, b"too many viewers\n", "text/plain")
                return
            try:
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
                        self.wfile.write(f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                                         f"Content-Length: {len(jpeg)}\r\n\r\n".encode()
                                         + jpeg + b"\r\n")
                        self.wfile.flush()
                        sent = sequence
                    time.sleep(max(0.0, started + interval - time.monotonic()))
            except (OSError, ValueError):
                pass  # the viewer left (or stopped reading and timed out)
            finally:
                server.streams.release()

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
</style></head><body>
<header><span>maskwatch</span><span>frames/s <b id="fps">-</b></span>
<span id="health">-</span><span id="model"></span><span id="stages"></span></header>
<main><img id="live" alt="live view">
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
  } catch (err) { document.getElementById("health").textContent = "page: " + err; }
}
refresh(); setInterval(refresh, 2000);
</script></body></html>
"""
