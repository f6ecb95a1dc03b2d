"""The MQTT sink against a real mosquitto (started here, on 127.0.0.1, with a password file):
events, retained state and discovery, the last will, a broker restart mid-run with nothing
lost, and a wrong password that leaves the loop running."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from edge.samples import write_frames
from tests.edge_process import CYCLE, config_file, finish, start
from tests.mosquitto import PASSWORD, USER, Mosquitto, Subscriber

pytestmark = [pytest.mark.slow, pytest.mark.service]

PREFIX = "maskwatch/door"



@pytest.fixture
def broker(tmp_path):
    folder = tmp_path / "broker"
    folder.mkdir()
    broker = Mosquitto(folder)
    broker.start()
    yield broker
    broker.stop()


def mqtt_config(tmp_path: Path, model: Path, frames: Path, broker: Mosquitto,
                password: str = PASSWORD, fps: float = 10.0, extra: str = "") -> Path:
    secret = tmp_path / "mqtt-password"
    secret.write_text(password + "\n")
    secret.chmod(0o600)
    return config_file(tmp_path, model, frames, fps=fps, extra=f"""
[sinks.mqtt]
enabled = true
host = "127.0.0.1"
port = {broker.port}
client_id = "maskwatch-door"
username = "{USER}"
password_file = "{secret}"
topic_prefix = "{PREFIX}"
snapshot = true
keepalive = 5
{extra}""")


def events_from(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def test_events_state_discovery_and_snapshot_arrive_with_their_retain_flags(
        model, broker, tmp_path):
    frames = tmp_path / "frames"
    write_frames(frames, sequence=CYCLE * 2)
    live = Subscriber(broker)
    proc = start(["run", "--config", str(mqtt_config(tmp_path, model, frames, broker))])
    out, err = finish(proc, 60)
    assert proc.returncode == 0, err
    logged = events_from(out)
    assert [e["event"] for e in logged][:3] == ["violation", "clear", "violation"]
    # Events: the log line's JSON, in order, not retained.
    live.wait_for(lambda m: m[0] == f"{PREFIX}/availability" and m[1] == b"offline")
    assert [json.loads(p) for _, p, _ in live.on(f"{PREFIX}/event")] == logged
    live.close()
    # A late subscriber gets exactly the retained topics, flagged as such.
    late = Subscriber(broker, client_id="late")
    late.wait_for(lambda m: m[0].endswith("/snapshot/config"))
    time.sleep(0.5)
    late.close()
    retained = {topic: payload for topic, payload, retain in late.messages if retain}
    assert not late.on(f"{PREFIX}/event")
    assert retained[f"{PREFIX}/availability"] == b"offline"          # a clean stop says so
    state = json.loads(retained[f"{PREFIX}/state"])
    assert set(state) == {"violation", "faces", "fps", "people_today", "unmasked_today",
                          "compliance_today", "alarms_today"}
    assert state["violation"] == ("ON" if logged[-1]["event"] == "violation" else "OFF")
    # One person all along (one track), unmasked at times: 1 person, 1 unmasked, 0% today.
    assert {e["track"] for e in logged} == {1}
    assert (state["people_today"], state["unmasked_today"], state["compliance_today"]) == \
        (1, 1, 0.0)
    assert state["alarms_today"] == {"without_mask": 1}
    assert retained[f"{PREFIX}/snapshot"].startswith(b"\xff\xd8")     # a JPEG
    node = "maskwatch_door"
    binary = json.loads(retained[f"homeassistant/binary_sensor/{node}/violation/config"])
    assert binary["state_topic"] == f"{PREFIX}/state" and binary["device_class"] == "problem"
    assert binary["availability_topic"] == f"{PREFIX}/availability"
    assert binary["value_template"] == "{{ value_json.violation }}"
    assert binary["unique_id"] == f"{node}_violation"
    faces = json.loads(retained[f"homeassistant/sensor/{node}/faces/config"])
    fps = json.loads(retained[f"homeassistant/sensor/{node}/fps/config"])
    image = json.loads(retained[f"homeassistant/image/{node}/snapshot/config"])
    assert faces["value_template"] == "{{ value_json.faces }}" and fps["unit_of_measurement"] == "fps"
    assert image["image_topic"] == f"{PREFIX}/snapshot" and image["content_type"] == "image/jpeg"
    people, unmasked, compliance = (
        json.loads(retained[f"homeassistant/sensor/{node}/{name}/config"])
        for name in ("people_today", "unmasked_today", "compliance_today"))
    assert people["state_class"] == unmasked["state_class"] == "total_increasing"
    assert people["value_template"] == "{{ value_json.people_today }}"
    assert unmasked["value_template"] == "{{ value_json.unmasked_today }}"
    assert compliance["unit_of_measurement"] == "%"
    assert compliance["state_class"] == "measurement"
    # One sensor per alarm label of the model (the test model's: without_mask), in words.
    no_mask = json.loads(retained[f"homeassistant/sensor/{node}/people_without_mask_today/config"])
    assert no_mask["name"] == "No mask today" and no_mask["state_class"] == "total_increasing"
    assert no_mask["value_template"] == '{{ value_json.alarms_today["without_mask"] }}'
    entities = (binary, faces, fps, image, people, unmasked, compliance, no_mask)
    assert len({json.dumps(c["device"]) for c in entities}) == 1          # one device
    assert all(c["origin"] == {"name": "maskwatch", "sw_version": "0.1.0"} for c in entities)


def test_the_last_will_says_offline_when_the_process_is_killed(model, broker, tmp_path):
    frames = tmp_path / "frames"
    write_frames(frames, sequence=(("masked", 200),))
    subscriber = Subscriber(broker)
    proc = start(["run", "--config", str(mqtt_config(tmp_path, model, frames, broker, fps=5.0))])
    try:
        subscriber.wait_for(lambda m: m[0] == f"{PREFIX}/availability" and m[1] == b"online")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        subscriber.wait_for(lambda m: m[0] == f"{PREFIX}/availability" and m[1] == b"offline")
    finally:
        proc.kill()
        subscriber.close()


def test_a_broker_restart_loses_no_event_and_keeps_their_order(model, broker, tmp_path):
    frames = tmp_path / "frames"
    write_frames(frames, sequence=CYCLE * 10)          # a violation every 1.5 s for 15 s
    subscriber = Subscriber(broker, client_id="persistent", persistent=True)
    proc = start(["run", "--config", str(mqtt_config(tmp_path, model, frames, broker))])
    try:
        subscriber.wait_for(lambda m: m[0] == f"{PREFIX}/event")
        broker.stop()                                  # away for 4 s: events queue up
        time.sleep(4.0)
        broker.start()
        out, err = finish(proc, 90)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    logged = events_from(out)
    assert len(logged) >= 12
    subscriber.wait_for(lambda m: m[0] == f"{PREFIX}/availability" and m[1] == b"offline")
    received = [json.loads(p) for _, p, _ in subscriber.on(f"{PREFIX}/event")]
    subscriber.close()
    assert received == logged                          # all of them, once each, in order
    assert err.count(f"mqtt: 127.0.0.1:{broker.port}: lost the broker (") == 1
    assert "connection refused: nothing listens on that port" in err  # while it was away
    assert "mqtt: connected to 127.0.0.1" in err and "events queued" in err
    assert "events never reached the broker" not in err


def test_a_wrong_password_is_one_clear_line_and_the_loop_runs_on(model, broker, tmp_path):
    frames = tmp_path / "frames"
    write_frames(frames, sequence=CYCLE * 2)
    config = mqtt_config(tmp_path, model, frames, broker, password="wrong")
    proc = start(["run", "--config", str(config)])
    out, err = finish(proc, 60)
    assert proc.returncode == 0, err
    logged = events_from(out)
    assert len(logged) >= 3                             # the log sink and the loop went on
    assert err.count("the broker refused the login: Not authorized; check "
                     "sinks.mqtt.username and password_file") == 1
    assert f"mqtt: {len(logged)} events never reached the broker" in err   # counted, not lost


def test_the_queue_keeps_the_newest_events_and_counts_the_dropped(tmp_path):
    """No broker at all: the loop never waits, and the queue holds its bound."""
    import dataclasses

    from edge.config import load_config
    from edge.sinks import FrameResult
    from edge.sinks.mqtt import MqttSink
    from edge.tracker import Event
    from tests.mosquitto import free_port

    config = dataclasses.replace(load_config(None).sinks.mqtt, enabled=True, host="127.0.0.1",
                                 port=free_port(), queue=3, discovery=False)
    sink = MqttSink(config)
    for t in range(5):
        event = Event("violation", t, "without_mask", 0.9, (1, 2, 3, 4), float(t))
        assert sink.handle(FrameResult(float(t), 1_700_000_000.0 + t, None, [], [event], 10.0))
    assert [json.loads(p)["track"] for p in sink.outbox.take()] == [2, 3, 4]
    assert sink.outbox.dropped == 2 and not sink.connected
    sink.close()
