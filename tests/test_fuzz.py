"""Fuzzing what a stranger controls: config files, HTTP requests, image files.

hypothesis generates the inputs from a fixed seed (``derandomize``) and a bounded number of
examples, so a run is repeatable and short (well under a minute). Each property is the
contract of the part: a config is a ``Config`` or a ``ConfigError`` naming what is wrong;
a request gets an HTTP status and the server logs no traceback; a file is a picture or an
``UnreadableImage``, never another exception, never a hang.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import socket

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.config import ConfigError, load_config
from edge.shared.images import UnreadableImage, read_bgr

FUZZ = settings(derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


# --- configs --------------------------------------------------------------------------
def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") \
            if math.isinf(value) else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return '"' + "".join(c if c.isprintable() and c not in '"\\' else f"\\u{ord(c):04x}"
                             for c in value) + '"'
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return "{" + ", ".join(f'"{k}" = {toml_value(v)}' for k, v in value.items()) + "}"


def toml(tables: dict) -> str:
    lines = []
    for name, table in tables.items():
        lines.append(f"[{name}]")
        lines += [f'"{key}" = {toml_value(value)}' for key, value in table.items()]
    return "\n".join(lines) + "\n"


SHIPPED = {name: dict(vars(table)) if not dataclasses.is_dataclass(table) else
           {f.name: getattr(table, f.name) for f in dataclasses.fields(table)}
           for name, table in vars(load_config(None)).items()}
TABLES = ["source", "detector", "detector.yunet", "detector.haar", "model", "tracker", "judge",
          "sinks.log", "sinks.gpio", "sinks.snapshot", "sinks.mqtt", "web", "service", "nonsense"]
KEYS = sorted({k for t in SHIPPED.values() if isinstance(t, dict) for k in t} | {"x", ""})
scalars = st.one_of(st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True),
                    st.text(max_size=30))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3), max_leaves=6)


@FUZZ
@given(st.dictionaries(st.sampled_from(TABLES),
                       st.dictionaries(st.sampled_from(KEYS), values, max_size=5), max_size=6))
def test_any_config_is_a_config_or_a_named_error(tmp_path_factory, tables):
    path = tmp_path_factory.mktemp("cfg") / "maskwatch.toml"
    path.write_text(toml(tables))
    try:
        load_config(path)
    except ConfigError as exc:
        text = str(exc)
        assert text.startswith(str(path)) and "Traceback" not in text


@FUZZ
@given(st.binary(max_size=400))
def test_any_bytes_as_a_config_are_a_config_or_a_named_error(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("cfg") / "maskwatch.toml"
    path.write_bytes(data)
    try:
        load_config(path)
    except ConfigError:
        pass


# --- image files ----------------------------------------------------------------------
def _encoded(ext: str) -> bytes:
    image = np.random.default_rng(0).integers(0, 255, (24, 32, 3), np.uint8)
    return cv2.imencode(ext, image)[1].tobytes()


SAMPLES = [_encoded(ext) for ext in (".png", ".jpg", ".bmp", ".webp")]


@st.composite
def damaged_pictures(draw) -> bytes:
    data = bytearray(draw(st.sampled_from(SAMPLES)))
    for _ in range(draw(st.integers(0, 8))):
        at = draw(st.integers(0, len(data) - 1))
        data[at] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        data = data[:draw(st.integers(0, len(data)))]
    return bytes(data)


@settings(FUZZ, max_examples=300)
@given(st.one_of(damaged_pictures(), st.binary(max_size=200)))
def test_any_file_is_a_picture_or_unreadable(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("img") / "frame.png"
    path.write_bytes(data)
    try:
        image = read_bgr(path, 1920)
    except UnreadableImage:
        return
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3


# --- HTTP requests --------------------------------------------------------------------
@pytest.fixture(scope="module")
def server():
    """The real status server of a real pipeline that has processed one frame."""
    from edge.pipeline import Pipeline
    from edge.samples import sample_frames
    from edge.sources import Frame
    from tests import edge_model
    from tests.mosquitto import free_port

    config = load_config(None)
    config = dataclasses.replace(
        config, model=dataclasses.replace(config.model, path=str(edge_model.model_folder())),
        web=dataclasses.replace(config.web, enabled=True, port=free_port()))
    pipeline = Pipeline(config, sinks=[])
    pipeline.process(Frame(sample_frames()["plain"], t=0.0))
    yield pipeline.web
    pipeline.close()


methods = st.sampled_from(["GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "G\0T", "", "GET GET"])
paths = st.one_of(st.sampled_from(["/", "/api/status", "/healthz", "/metrics", "/snapshots/",
                                   "/snapshots/violation-20260101-000000-000-track1.jpg"]),
                  st.text(alphabet=st.characters(min_codepoint=1, max_codepoint=0x10FFFF),
                          max_size=80).map(lambda t: "/" + t))
headers = st.lists(st.tuples(st.text(max_size=20), st.text(max_size=60)), max_size=4)


@settings(FUZZ, max_examples=200)
@given(methods, paths, headers)
def test_any_request_gets_a_status_and_no_traceback(server, caplog, method, path, extra):
    caplog.set_level(logging.DEBUG, logger="edge.web")
    caplog.clear()
    lines = [f"{method} {path} HTTP/1.0"] + [f"{k}: {v}" for k, v in extra]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape")
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(request)
        reply = b""
        while chunk := s.recv(65536):
            reply += chunk
    if reply.startswith(b"<!DOCTYPE HTML>"):      # a request line read as HTTP/0.9: no headers
        status = int(reply.split(b"Error code: ", 1)[1][:3])
    else:
        assert reply.startswith((b"HTTP/1.0 ", b"HTTP/1.1 ")), reply[:80]
        status = int(reply.split(b" ", 2)[1])
    assert status in (200, 400, 401, 404, 414, 431, 501, 503), status
    assert "Traceback" not in caplog.text and not any(
        r.levelno >= logging.WARNING for r in caplog.records if r.name == "edge.web")
