"""Events and state to an MQTT broker, with Home Assistant discovery.

Topics, under ``topic_prefix`` (``maskwatch/<hostname>`` unless set):

- ``<prefix>/event``: each violation and clear, the same JSON as the log line (QoS 1);
- ``<prefix>/state``: ``{"violation": "ON"|"OFF", "faces": 2, "fps": 9.8, "people_today":
  41, "unmasked_today": 3, "compliance_today": 92.7, "alarms_today": {"without_mask": 2,
  "mask_weared_incorrect": 1}}``, retained, on a change of violation and every
  ``status_seconds``. Today's counts (``edge.counts``) start again at local midnight;
  compliance is null (unknown) before the day's first person; ``alarms_today`` holds, for
  each of the model's alarm labels, the people who raised a violation of it today;
- ``<prefix>/availability``: ``online``, retained; ``offline`` when it stops, and as the
  broker's last will when the process dies without saying so;
- ``<prefix>/snapshot``: the annotated frame of the latest violation as a JPEG, retained
  (``snapshot = true``);
- ``<discovery_prefix>/{binary_sensor,sensor,image}/<node>/<object>/config``: retained Home
  Assistant discovery messages (``discovery = true``): the violation, faces in view, frames/s,
  the last snapshot, people and unmasked people today (``total_increasing``: Home
  Assistant takes the drop at midnight for a reset), the people of each alarm label today
  ("No mask today", "Mask worn wrong today") and today's compliance, as one device, each
  with the ``origin`` block that names the software that sent it.

The journal says what is wrong: one line when a connection attempt fails, with the reason
(the name does not resolve, nothing listens, the host is unreachable, no CONNACK came), and
a line each time the reason changes, not one per retry; one line when the connection comes
back, with the events queued meanwhile; nothing alarming when the runtime itself stops.

The camera loop never waits for the broker. ``handle`` only puts events into an outbox
(``edge.sinks.outbox``); paho's network thread keeps the connection (reconnecting with
backoff), the outbox's thread sends the events one at a time, in order, each confirmed by
the broker (QoS 1 PUBACK) before the next, and a state thread keeps the retained state and
snapshot up to date. While the broker is away, events wait in the outbox (``queue`` of
them); beyond that the oldest are dropped and counted. The queue lives in memory: a
restart of the runtime while the broker is away loses it (the count is logged at stop);
state, availability and discovery are retained by the broker and re-sent on every connect.
"""

from __future__ import annotations

import errno
import json
import logging
import socket
import sys
import threading
import time
from dataclasses import dataclass

from edge import __version__, checks
from edge.alarm import words
from edge.counts import Counts
from edge.plugins import Plugin
from edge.shared.params import Params, param
from edge.sinks.log import event_json
from edge.sinks.outbox import Outbox, Said

log = logging.getLogger(__name__)

# Home Assistant's discovery "origin": the software that sends the messages.
ORIGIN = {"name": "maskwatch", "sw_version": __version__}
STATE_EVERY = 5.0      # seconds between state messages when nothing changes
CLOSE_WAIT = 2.0       # seconds close() gives queued events to reach the broker
CONFIRM_WAIT = 1.0     # seconds between checks while a publish waits for its PUBACK


def connect_failure(exc: BaseException | None, timeout: float) -> str:
    """Why a TCP connection to the broker failed, in words."""
    if isinstance(exc, socket.gaierror):
        return f"the name does not resolve ({exc.strerror})"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused: nothing listens on that port"
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return f"no answer within {timeout:g}s"
    if isinstance(exc, OSError) and exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return f"unreachable ({exc.strerror})"
    if isinstance(exc, OSError):
        return f"cannot connect ({exc.strerror or exc})"
    return f"cannot connect ({exc})"


def _object_id(text: str) -> str:
    """``text`` as Home Assistant's node and object ids allow: letters, digits and _."""
    return "".join(c if c.isascii() and c.isalnum() else "_" for c in text)


@dataclass(frozen=True)
class MqttParams(Params):
    enabled: bool = param(False, help="events and state to an MQTT broker, with Home "
                                      "Assistant discovery")
    host: str = param("localhost", help="the broker")
    port: int = param(1883, min=1, max=65535, help="8883 for TLS, usually")
    client_id: str = param("", help="empty: maskwatch-<hostname>")
    username: str = param("", help="empty: no login")
    password_file: str = param("", path="file",
                               help="a file holding the password (mode 0600); never the "
                                    "password here")
    tls: bool = param(False)
    ca_file: str = param("", path="file", help="tls: the broker's CA certificate; empty: the "
                                               "system's CAs")
    cert_file: str = param("", path="file",
                           help="tls: a client certificate and its key, if the broker wants one")
    key_file: str = param("", path="file")
    topic_prefix: str = param("", help="empty: maskwatch/<hostname>; topics are <prefix>/event, "
                                       "/state, ...")
    discovery: bool = param(True, help="Home Assistant MQTT discovery (retained config messages)")
    discovery_prefix: str = param("homeassistant")
    snapshot: bool = param(False, help="also publish each violation's frame as a JPEG to "
                                       "<prefix>/snapshot")
    queue: int = param(100, min=1, max=100_000,
                       help="events held while the broker is away; beyond, the oldest are "
                            "dropped")
    keepalive: int = param(30, min=5, max=3600, help="seconds between pings to the broker")

    @classmethod
    def problems(cls, values):
        """What would make the sink fail for sure: checked by check-config (edge.checks)."""
        if not values.get("enabled"):
            return []
        found = []
        if "host" in values:
            found.append(("host", checks.host_problem(values["host"])))
        for name in ("topic_prefix", "discovery_prefix"):
            if values.get(name):
                found.append((name, checks.topic_problem(values[name])))
        if values.get("password_file"):
            found.append(("password_file", checks.secret_problem(values["password_file"])))
        if values.get("tls") and values.get("ca_file"):
            found.append(("ca_file", checks.ca_problem(values["ca_file"])))
        if values.get("tls") and values.get("cert_file") and "key_file" in values:
            found.append(("cert_file", checks.cert_problem(values["cert_file"],
                                                           values["key_file"])))
        return [(key, problem) for key, problem in found if problem]


class MqttSink:
    def __init__(self, config: MqttParams, status_seconds: float = STATE_EVERY, stats=None,
                 alarm_labels: tuple = ()):
        import paho.mqtt.client as mqtt  # imported here: only this sink needs it

        self._mqtt = mqtt
        host = socket.gethostname().split(".")[0] or "pi"
        self.client_id = config.client_id or f"maskwatch-{host}"
        self.prefix = (config.topic_prefix or f"maskwatch/{host}").rstrip("/")
        self.node = _object_id(self.client_id)
        self.config = config
        self.alarm_labels = tuple(alarm_labels)
        self.status_seconds = status_seconds
        self.connected = False
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._snapshot = None            # the latest violation's FrameResult, to encode
        self._latest = None              # the latest frame's FrameResult: faces and fps
        self._violations: set[int] = set()
        self._state_sent_at = float("-inf")
        self._sent_violation = None
        self._trouble = Said(f"mqtt: {config.host}:{config.port}", log)  # why it can't be reached
        self._down_since: float | None = time.monotonic()

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
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        self.client = client
        client.connect_async(config.host, config.port, config.keepalive)
        client.loop_start()
        # Event payloads for <prefix>/event, oldest first, sent in order by their own thread.
        self.outbox = Outbox("mqtt", config.queue, send=self._deliver, retry_min=0.5,
                             retry_max=5.0, what="events", to="the broker")
        self._publisher = threading.Thread(target=self._publish_loop, name="mqtt-state",
                                           daemon=True)
        self._publisher.start()
        if stats is not None:   # for /metrics
            stats.gauge("mqtt_queue_depth", "Events waiting for the broker",
                        lambda: len(self.outbox))
            stats.gauge("mqtt_dropped", "Events dropped: queue full",
                        lambda: self.outbox.dropped, "counter")
            stats.gauge("mqtt_connected", "1 while connected to the broker",
                        lambda: int(self.connected))

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
            self.outbox.put(json.dumps(event_json(event, result.wall, result.fps)).encode())
        if result.image is not None:
            self._latest = result
        if result.events:
            self._wake.set()
        return bool(result.events)

    # --- paho's network thread ------------------------------------------------------------
    def _say(self, problem: str) -> None:
        """Why the broker can't be reached: said at once, then only when the reason changes."""
        self._trouble(problem, f"; retrying ({len(self.outbox)} events queued)")

    def _on_connect_fail(self, _client, _userdata) -> None:
        # paho calls this while it handles the OSError of its connect: that is the reason.
        self._say(connect_failure(sys.exc_info()[1], self.client.connect_timeout))

    def _on_connect(self, client, _userdata, _flags, reason, _properties) -> None:
        if reason.is_failure:
            hint = ("check sinks.mqtt.username and password_file"
                    if "authori" in str(reason).lower() or "password" in str(reason).lower()
                    else "check the broker's log")
            self._say(f"the broker refused the login: {reason}; {hint}")
            return
        down = time.monotonic() - self._down_since if self._down_since is not None else 0.0
        if self._trouble.problem is None:
            log.info("mqtt: connected to %s:%d as %s", self.config.host, self.config.port,
                     self.client_id)
        self._trouble.over(f"connected after {down:.0f}s without it; {len(self.outbox)} "
                           "events queued")
        self._down_since = None
        client.publish(self.topic("availability"), "online", qos=1, retain=True)
        if self.config.discovery:
            for topic, payload in self.discovery_messages():
                client.publish(topic, json.dumps(payload), qos=1, retain=True)
        self._state_sent_at = float("-inf")
        self.connected = True
        self._wake.set()
        self.outbox.wake()

    def _on_disconnect(self, _client, _userdata, _flags, reason, _properties) -> None:
        was_connected, self.connected = self.connected, False
        if self._closing.is_set():
            log.debug("mqtt: disconnected (%s)", reason)
            return
        if was_connected:
            self._down_since = time.monotonic()
            self._trouble.problem = None
            self._say(f"lost the broker ({reason}); events wait in the queue")
        elif "keep" in str(reason).lower():
            self._say(f"it accepts connections but sent no CONNACK within "
                      f"{self.config.keepalive}s")
        elif self._trouble.problem is None:
            self._say(f"disconnected before the login completed ({reason})")
        else:  # the end of an attempt whose failure was just said (a refused login)
            log.debug("mqtt: disconnected (%s)", reason)

    def discovery_messages(self) -> list[tuple[str, dict]]:
        """Home Assistant's MQTT discovery: one device; its entities, one sensor per alarm
        label among them."""
        device = {"identifiers": [self.node], "name": f"maskwatch {self.client_id}",
                  "manufacturer": "maskwatch", "model": "face-mask detector",
                  "sw_version": __version__}
        common = {"availability_topic": self.topic("availability"), "device": device,
                  "origin": ORIGIN}
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
            ("sensor", "people_today", {"name": "People today", "state_topic": state,
                                        "value_template": "{{ value_json.people_today }}",
                                        "unit_of_measurement": "people",
                                        "state_class": "total_increasing"}),
            ("sensor", "unmasked_today", {"name": "Unmasked today", "state_topic": state,
                                          "value_template": "{{ value_json.unmasked_today }}",
                                          "unit_of_measurement": "people",
                                          "state_class": "total_increasing"}),
            *(("sensor", f"people_{_object_id(label)}_today",
               {"name": f"{words(label).capitalize()} today", "state_topic": state,
                "value_template": f"{{{{ value_json.alarms_today[{json.dumps(label)}] }}}}",
                "unit_of_measurement": "people", "state_class": "total_increasing"})
              for label in self.alarm_labels),
            ("sensor", "compliance_today", {"name": "Mask compliance today",
                                            "state_topic": state,
                                            "value_template":
                                                "{{ value_json.compliance_today }}",
                                            "unit_of_measurement": "%",
                                            "state_class": "measurement"}),
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

    def state(self) -> dict:
        latest = self._latest
        today = latest.today.counts if latest and latest.today else Counts()
        return {"violation": "ON" if self._violations else "OFF",
                "faces": len(latest.tracks) if latest else 0,
                "fps": round(latest.fps, 1) if latest else 0.0,
                "people_today": today.people, "unmasked_today": today.unmasked,
                "compliance_today": today.compliance,
                "alarms_today": {label: today.of(label)[0] for label in self.alarm_labels}}

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
        self.client.publish(self.topic("snapshot"), result.annotated_jpeg(), qos=1, retain=True)

    def _deliver(self, payload: bytes) -> bool:
        """The outbox's send: publish one event and wait for the broker's PUBACK; False
        (kept, first in line) while there is no broker to take it."""
        if not self.connected:
            return False
        info = self.client.publish(self.topic("event"), payload, qos=1)
        if info.rc != self._mqtt.MQTT_ERR_SUCCESS:
            return False
        # paho resends an unconfirmed QoS 1 message after a reconnect: wait for this one
        # rather than publishing it again.
        while not info.is_published() and not self._closing.is_set():
            try:
                info.wait_for_publish(timeout=CONFIRM_WAIT)
            except (RuntimeError, ValueError):
                break
        return info.is_published()

    def close(self) -> None:
        # Queued events get CLOSE_WAIT to reach a broker that is there; what is left is said.
        self.outbox.close(wait=CLOSE_WAIT if self.connected else 0.0)
        self._closing.set()   # from here, a disconnect is ours: nothing to warn about
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


PLUGIN = Plugin("sink", "mqtt", MqttParams,
                lambda params, context: MqttSink(params, context.status_seconds, context.stats,
                                                 context.alarm_labels),
                "events and state to an MQTT broker, with Home Assistant discovery", order=40)
