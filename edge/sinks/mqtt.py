"""Events and state to an MQTT broker, with Home Assistant discovery.

Topics, under ``topic_prefix`` (``maskwatch/<hostname>`` unless set):

- ``<prefix>/event``: each violation and clear, the same JSON as the log line (QoS 1);
- ``<prefix>/state``: ``{"violation": "ON"|"OFF", "faces": 2, "fps": 9.8}``, retained, on a
  change of violation and every ``status_seconds``;
- ``<prefix>/availability``: ``online``, retained; ``offline`` when it stops, and as the
  broker's last will when the process dies without saying so;
- ``<prefix>/snapshot``: the annotated frame of the latest violation as a JPEG, retained
  (``snapshot = true``);
- ``<discovery_prefix>/{binary_sensor,sensor,image}/<node>/<object>/config``: retained Home
  Assistant discovery messages (``discovery = true``): the violation, faces in view, frames/s
  and the last snapshot, as one device.

The camera loop never waits for the broker. ``handle`` only appends to a bounded queue;
paho's network thread keeps the connection (reconnecting with backoff), and a publisher
thread sends the queued events one at a time, in order, each confirmed by the broker (QoS 1
PUBACK) before the next. While the broker is away, events wait in the queue (``queue``
of them); beyond that the oldest are dropped and counted. The queue lives in memory: a
restart of the runtime while the broker is away loses it (the count is logged at stop);
state, availability and discovery are retained by the broker and re-sent on every connect.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections import deque

import cv2

from edge.sinks.annotate import draw
from edge.sinks.log import event_json

log = logging.getLogger(__name__)

STATE_EVERY = 5.0      # seconds between state messages when nothing changes
CLOSE_WAIT = 2.0       # seconds close() gives queued events to reach the broker
CONFIRM_WAIT = 1.0     # seconds between checks while a publish waits for its PUBACK


class MqttSink:
    def __init__(self, config, status_seconds: float = STATE_EVERY):
        import paho.mqtt.client as mqtt  # imported here: only this sink needs it

        self._mqtt = mqtt
        host = socket.gethostname().split(".")[0] or "pi"
        self.client_id = config.client_id or f"maskwatch-{host}"
        self.prefix = (config.topic_prefix or f"maskwatch/{host}").rstrip("/")
        self.node = "".join(c if c.isalnum() else "_" for c in self.client_id)
        self.config = config
        self.status_seconds = status_seconds
        self.queue: deque[bytes] = deque()     # event payloads for <prefix>/event, oldest first
        self.max_queue = config.queue
        self.dropped = 0
        self.connected = False
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._snapshot = None            # the latest violation's FrameResult, to encode
        self._latest = None              # the latest frame's FrameResult: faces and fps
        self._violations: set[int] = set()
        self._state_sent_at = float("-inf")
        self._sent_violation = None
        self._login_error_said = False

        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id)
        if config.username:
            password = None
            if config.password_file:
                with open(config.password_file) as f:
                    password = f.read().strip()
            client.username_pw_set(config.username, password)
        if config.tls:
            client.tls_set(ca_certs=config.ca_file or None, certfile=config.cert_file or None,
                           keyfile=config.key_file or None)
        client.will_set(self.topic("availability"), "offline", qos=1, retain=True)
        client.reconnect_delay_set(min_delay=1, max_delay=60)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        self.client = client
        client.connect_async(config.host, config.port, config.keepalive)
        client.loop_start()
        self._publisher = threading.Thread(target=self._publish_loop, name="mqtt-publish",
                                           daemon=True)
        self._publisher.start()

    def topic(self, name: str) -> str:
        return f"{self.prefix}/{name}"

    # --- the camera loop's side: never blocks -------------------------------------------
    def handle(self, result) -> bool:
        for event in result.events:
            if event.kind == "violation":
                self._violations.add(event.track_id)
                if self.config.snapshot and result.image is not None:
                    self._snapshot = result
            elif event.kind == "clear":
                self._violations.discard(event.track_id)
            self._enqueue(json.dumps(event_json(event, result.wall, result.fps)).encode())
        if result.image is not None:
            self._latest = result
        if result.events:
            self._wake.set()
        return bool(result.events)

    def _enqueue(self, payload: bytes) -> None:
        with self._lock:
            if len(self.queue) >= self.max_queue:
                self.queue.popleft()
                self.dropped += 1
                if self.dropped == 1 or self.dropped % 100 == 0:
                    log.warning("mqtt: %d events waiting for the broker; %d oldest dropped so far",
                                self.max_queue, self.dropped)
            self.queue.append(payload)

    # --- paho's network thread ------------------------------------------------------------
    def _on_connect(self, client, _userdata, _flags, reason, _properties) -> None:
        if reason.is_failure:
            if not self._login_error_said:
                hint = ("check sinks.mqtt.username and password_file"
                        if "authori" in str(reason).lower() or "password" in str(reason).lower()
                        else "check the broker's log")
                log.error("mqtt: %s:%d refused the connection: %s; %s (retrying)",
                          self.config.host, self.config.port, reason, hint)
                self._login_error_said = True
            return
        log.info("mqtt: connected to %s:%d as %s", self.config.host, self.config.port,
                 self.client_id)
        self._login_error_said = False
        client.publish(self.topic("availability"), "online", qos=1, retain=True)
        if self.config.discovery:
            for topic, payload in self.discovery_messages():
                client.publish(topic, json.dumps(payload), qos=1, retain=True)
        self._state_sent_at = float("-inf")
        self.connected = True
        self._wake.set()

    def _on_disconnect(self, _client, _userdata, _flags, reason, _properties) -> None:
        if self.connected:
            log.warning("mqtt: lost the broker (%s); events wait in the queue", reason)
        self.connected = False

    def discovery_messages(self) -> list[tuple[str, dict]]:
        """Home Assistant's MQTT discovery: one device, four entities."""
        device = {"identifiers": [self.node], "name": f"maskwatch {self.client_id}",
                  "manufacturer": "maskwatch", "model": "face-mask detector"}
        common = {"availability_topic": self.topic("availability"), "device": device}
        state = self.topic("state")
        entities = [
            ("binary_sensor", "violation", {"name": "Mask violation", "state_topic": state,
                                            "value_template": "{{ value_json.violation }}",
                                            "payload_on": "ON", "payload_off": "OFF",
                                            "device_class": "problem"}),
            ("sensor", "faces", {"name": "Faces in view", "state_topic": state,
                                 "value_template": "{{ value_json.faces }}",
                                 "state_class": "measurement"}),
            ("sensor", "fps", {"name": "Frame rate", "state_topic": state,
                               "value_template": "{{ value_json.fps }}",
                               "unit_of_measurement": "fps", "state_class": "measurement"}),
            ("image", "snapshot", {"name": "Last violation", "image_topic": self.topic("snapshot"),
                                   "content_type": "image/jpeg"}),
        ]
        prefix = self.config.discovery_prefix.rstrip("/")
        return [(f"{prefix}/{component}/{self.node}/{name}/config",
                 {**fields, **common, "unique_id": f"{self.node}_{name}"})
                for component, name, fields in entities]

    # --- the publisher thread ------------------------------------------------------------
    def _publish_loop(self) -> None:
        while not self._closing.is_set():
            self._wake.wait(timeout=0.5)
            self._wake.clear()
            if not self.connected:
                continue
            self._send_state()
            self._send_snapshot()
            self._send_queue()

    def state(self) -> dict:
        latest = self._latest
        return {"violation": "ON" if self._violations else "OFF",
                "faces": len(latest.tracks) if latest else 0,
                "fps": round(latest.fps, 1) if latest else 0.0}

    def _send_state(self) -> None:
        now = time.monotonic()
        state = self.state()
        if state["violation"] != self._sent_violation or \
                now - self._state_sent_at >= self.status_seconds:
            self.client.publish(self.topic("state"), json.dumps(state), qos=1, retain=True)
            self._sent_violation = state["violation"]
            self._state_sent_at = now

    def _send_snapshot(self) -> None:
        result, self._snapshot = self._snapshot, None
        if result is None:
            return
        ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(draw(result.image, result.tracks),
                                                     cv2.COLOR_RGB2BGR))
        if ok:
            self.client.publish(self.topic("snapshot"), jpeg.tobytes(), qos=1, retain=True)

    def _send_queue(self) -> None:
        """Send the queued events in order, each once, each confirmed before the next."""
        while self.connected and not self._closing.is_set():
            with self._lock:
                if not self.queue:
                    return
                payload = self.queue[0]
            info = self.client.publish(self.topic("event"), payload, qos=1)
            if info.rc != self._mqtt.MQTT_ERR_SUCCESS:
                return  # not connected after all: it stays first in the queue
            # paho resends an unconfirmed QoS 1 message after a reconnect: wait for this one
            # rather than publishing it again.
            while not info.is_published() and not self._closing.is_set():
                try:
                    info.wait_for_publish(timeout=CONFIRM_WAIT)
                except (RuntimeError, ValueError):
                    break
            if not info.is_published():
                return
            with self._lock:
                self.queue.popleft()

    def close(self) -> None:
        deadline = time.monotonic() + CLOSE_WAIT
        while self.queue and self.connected and time.monotonic() < deadline:
            self._wake.set()
            time.sleep(0.05)
        self._closing.set()
        self._publisher.join(timeout=CONFIRM_WAIT + 1)
        if self.connected:
            self.client.publish(self.topic("state"), json.dumps(self.state()), qos=1, retain=True)
            info = self.client.publish(self.topic("availability"), "offline", qos=1, retain=True)
            try:
                info.wait_for_publish(timeout=1.0)
            except (RuntimeError, ValueError):
                pass
        self.client.disconnect()
        self.client.loop_stop()
        if self.queue or self.dropped:
            log.warning("mqtt: %d events never reached the broker, %d dropped before",
                        len(self.queue), self.dropped)
