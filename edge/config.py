"""The edge runtime's configuration: one TOML file, checked as a whole before anything starts.

The shipped ``edge/maskwatch.toml`` holds every key with its default; a user's file is laid
over it, so it only needs the keys it changes. The merged result is checked against the
dataclasses below — an unknown key, a wrong type or an out-of-range value — and *every*
problem is reported at once, each line naming the dotted key::

    ConfigError: tracker.k: must be at most tracker.n (5), got 7
                 sinks.gpio.red: expected an integer, got str

Relative paths in a file are taken relative to that file's folder, so a config can sit next
to the frames or models it names.
"""

from __future__ import annotations

import dataclasses
import inspect
import ipaddress
import math
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path

import edge
from edge import checks
from edge.detectors import DETECTORS, detector_class
from edge.quality import Gate

DEFAULT_CONFIG = Path(__file__).with_name("maskwatch.toml")
# The bundled model, beside the edge package in a checkout or an install.
DEFAULT_MODEL = Path(edge.__file__).resolve().parents[1] / "models" / "default"

SOURCE_KINDS = ("picamera2", "opencv", "images")
MODEL_FORMATS = ("", "int8", "dynamic", "float16", "float32")


class ConfigError(Exception):
    """The configuration can't be used; each line of the message names a dotted key."""


def _spec(*, min=None, max=None, choices=None, gt=None):
    """A field whose value must lie in [min, max], above ``gt``, or among ``choices``."""
    return field(metadata={"min": min, "max": max, "choices": choices, "gt": gt})


@dataclass(frozen=True)
class SourceConfig:
    kind: str = _spec(choices=SOURCE_KINDS)
    device: int = _spec(min=0)
    url: str = _spec()
    path: str = _spec()
    width: int = _spec(min=16, max=8192)
    height: int = _spec(min=16, max=8192)
    fps: float = _spec(min=0.0, max=1000.0)
    reconnect_min: float = _spec(gt=0.0, max=3600.0)
    reconnect_max: float = _spec(gt=0.0, max=3600.0)


@dataclass(frozen=True)
class DetectorConfig:
    name: str = _spec(choices=DETECTORS)
    # One table of constructor parameters per detector; only the chosen one is used.
    haar: dict = _spec()
    blazeface: dict = _spec()
    yunet: dict = _spec()

    @property
    def params(self) -> dict:
        return getattr(self, self.name)


@dataclass(frozen=True)
class ModelConfig:
    path: str = _spec()
    format: str = _spec(choices=MODEL_FORMATS)
    threads: int = _spec(min=1, max=64)
    margin: float = _spec(min=0.0, max=1.0)


@dataclass(frozen=True)
class TrackerConfig:
    iou: float = _spec(gt=0.0, max=1.0)
    k: int = _spec(min=1, max=1000)
    n: int = _spec(min=1, max=1000)
    threshold: float = _spec(min=0.0, max=1.0)
    cooldown: float = _spec(min=0.0, max=86400.0)
    max_age: float = _spec(min=0.0, max=3600.0)


@dataclass(frozen=True)
class LogSinkConfig:
    enabled: bool = _spec()


@dataclass(frozen=True)
class GpioSinkConfig:
    enabled: bool = _spec()
    green: int = _spec(min=-1, max=27)
    red: int = _spec(min=-1, max=27)
    buzzer: int = _spec(min=-1, max=27)
    active_high: bool = _spec()
    violation_seconds: float = _spec(min=0.0, max=3600.0)
    buzzer_seconds: float = _spec(min=0.0, max=3600.0)


@dataclass(frozen=True)
class SnapshotSinkConfig:
    enabled: bool = _spec()
    dir: str = _spec()
    max_count: int = _spec(min=1)
    max_age_days: float = _spec(gt=0.0)


@dataclass(frozen=True)
class MqttSinkConfig:
    enabled: bool = _spec()
    host: str = _spec()
    port: int = _spec(min=1, max=65535)
    client_id: str = _spec()
    username: str = _spec()
    password_file: str = _spec()
    tls: bool = _spec()
    ca_file: str = _spec()
    cert_file: str = _spec()
    key_file: str = _spec()
    topic_prefix: str = _spec()
    discovery: bool = _spec()
    discovery_prefix: str = _spec()
    snapshot: bool = _spec()
    queue: int = _spec(min=1, max=100_000)
    keepalive: int = _spec(min=5, max=3600)


@dataclass(frozen=True)
class SinksConfig:
    log: LogSinkConfig
    gpio: GpioSinkConfig
    snapshot: SnapshotSinkConfig
    mqtt: MqttSinkConfig


@dataclass(frozen=True)
class WebConfig:
    enabled: bool = _spec()
    bind: str = _spec()
    port: int = _spec(min=1, max=65535)
    token_file: str = _spec()
    stream_fps: float = _spec(gt=0.0, max=30.0)
    events: int = _spec(min=1, max=1000)


@dataclass(frozen=True)
class ServiceConfig:
    watchdog: bool = _spec()
    status_seconds: float = _spec(gt=0.0, max=3600.0)


@dataclass(frozen=True)
class Config:
    source: SourceConfig
    detector: DetectorConfig
    model: ModelConfig
    tracker: TrackerConfig
    judge: Gate
    sinks: SinksConfig
    web: WebConfig
    service: ServiceConfig

    @property
    def model_path(self) -> Path:
        """The model folder (or file) to load: the configured one, else the bundled default."""
        return Path(self.model.path) if self.model.path else DEFAULT_MODEL


def load_config(path: Path | str | None = None) -> Config:
    """Read ``path`` laid over the shipped defaults (``None``: the defaults alone) and check it."""
    data = read_tables(path)
    errors: list[str] = []
    config, valid = _build(Config, data, "", errors)
    _check_cross_fields(valid, errors)
    if errors:
        where = f"{path}: " if path is not None else ""
        raise ConfigError(where + "\n".join(errors))
    return config


def read_tables(path: Path | str | None = None) -> dict:
    """The file laid over the shipped defaults, paths made absolute, *not yet checked*: for
    tools that read a table or two of a config ``check-config`` has passed (the installer)."""
    data = _read_toml(DEFAULT_CONFIG)
    if path is not None:
        path = Path(path)
        user = _read_toml(path)
        _resolve_paths(user, path.resolve().parent)
        data = _merge(data, user)
    return data


def _read_toml(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except RecursionError:
        raise ConfigError(f"{path}: not a config: arrays or tables nested too deeply") from None
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None


# Keys holding file paths (source.url may also be a URL, which is left alone).
_PATH_KEYS = (("source", "path"), ("source", "url"), ("model", "path"),
              ("sinks", "snapshot", "dir"), ("sinks", "mqtt", "password_file"),
              ("sinks", "mqtt", "ca_file"), ("sinks", "mqtt", "cert_file"),
              ("sinks", "mqtt", "key_file"), ("web", "token_file"))
# Detector files: a name of a bundled model ("full", "n") or a path, told apart by the
# path's separator or file suffix.
_DETECTOR_FILE_KEYS = (("detector", "blazeface", "model"), ("detector", "yunet", "model"),
                       ("detector", "haar", "cascade"))


def _resolve_paths(user: dict, base: Path) -> None:
    """Make the relative paths of a user's file relative to the file's folder."""
    for keys in _PATH_KEYS + _DETECTOR_FILE_KEYS:
        table = user
        for key in keys[:-1]:
            table = table.get(key) if isinstance(table, dict) else None
        value = table.get(keys[-1]) if isinstance(table, dict) else None
        if not isinstance(value, str) or not value or "://" in value or Path(value).is_absolute():
            continue
        if keys in _DETECTOR_FILE_KEYS and "/" not in value and not Path(value).suffix:
            continue
        table[keys[-1]] = str(base / value)


def _merge(base: dict, over: dict) -> dict:
    """``over`` laid on ``base``, table by table."""
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merged[key] = _merge(base[key], value)
        else:
            merged[key] = value
    return merged


_TYPE_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string",
               dict: "a table"}


def _build(cls, data, prefix: str, errors: list[str]) -> tuple[object | None, dict]:
    """Build dataclass ``cls`` from ``data``, appending one message per bad key to ``errors``.

    Returns the instance (None if any key is bad) and, as nested dicts, every value that
    passed its own checks, so the cross-field rules can still run beside the other errors.
    """
    if not isinstance(data, dict):
        errors.append(f"{prefix.rstrip('.')}: expected a table, got {type(data).__name__}")
        return None, {}
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in fields:
            what = "table" if not prefix else "key"
            errors.append(f"{prefix}{key}: unknown {what} (known: {', '.join(fields)})")
    built, valid = {}, {}
    for name, f in fields.items():
        key, kind = prefix + name, hints[name]
        if name not in data:
            errors.append(f"{key}: missing")
            continue
        value = data[name]
        if dataclasses.is_dataclass(kind):
            built[name], valid[name] = _build(kind, value, key + ".", errors)
            continue
        if not _is_type(value, kind):
            errors.append(f"{key}: expected {_TYPE_NAMES[kind]}, got {type(value).__name__} "
                          f"{value!r}")
            continue
        if kind is float:
            value = float(value)
        problem = _range_problem(value, f.metadata)
        if problem:
            errors.append(f"{key}: {problem}, got {value!r}")
            continue
        built[name] = valid[name] = value
    if len(built) != len(fields) or any(v is None for v in built.values()):
        return None, valid
    return cls(**built), valid


def _is_type(value, kind) -> bool:
    # bool is a subclass of int in Python, but `threads = true` is a mistake, not 1.
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def _range_problem(value, spec) -> str | None:
    # nan passes every comparison below (threshold = nan would mean no alarm, ever).
    if isinstance(value, float) and not math.isfinite(value):
        return "must be a finite number"
    if spec.get("choices") is not None and value not in spec["choices"]:
        return "must be one of " + ", ".join(repr(c) for c in spec["choices"])
    if spec.get("min") is not None and value < spec["min"]:
        return f"must be at least {spec['min']}"
    if spec.get("gt") is not None and value <= spec["gt"]:
        return f"must be greater than {spec['gt']}"
    if spec.get("max") is not None and value > spec["max"]:
        return f"must be at most {spec['max']}"
    return None


def _check_cross_fields(valid: dict, errors: list[str]) -> None:
    """Rules that involve two keys, and the chosen detector's parameter table.

    ``valid`` holds the values that passed their own checks (nested dicts by table); a rule
    runs when the keys it needs are there, whatever else is wrong.
    """
    tracker, source = valid.get("tracker", {}), valid.get("source", {})
    gpio = valid.get("sinks", {}).get("gpio", {})
    if {"k", "n"} <= tracker.keys() and tracker["k"] > tracker["n"]:
        errors.append(f"tracker.k: must be at most tracker.n ({tracker['n']}), got {tracker['k']}")
    low, high = source.get("reconnect_min"), source.get("reconnect_max")
    if low is not None and high is not None and low > high:
        errors.append(f"source.reconnect_min: must be at most source.reconnect_max "
                      f"({high}), got {low}")
    if source.get("kind") == "images" and source.get("path") == "":
        errors.append("source.path: the images source needs a folder")
    pins = [(name, gpio[name]) for name in ("green", "red", "buzzer") if gpio.get(name, -1) >= 0]
    for i, (name, pin) in enumerate(pins):
        for other, other_pin in pins[:i]:
            if pin == other_pin:
                errors.append(f"sinks.gpio.{name}: pin {pin} is already sinks.gpio.{other}")
    _check_files(valid, errors)
    web = valid.get("web", {})
    if "bind" in web and web["bind"] != "localhost" and _address(web["bind"]) is None:
        errors.append(f"web.bind: must be an IP address (0.0.0.0: every interface) or "
                      f"localhost, got {web['bind']!r}")
    elif web.get("enabled") and "bind" in web and not is_loopback(web["bind"]) \
            and not web.get("token_file"):
        errors.append(f"web.token_file: web.bind {web['bind']!r} is reachable from the network; "
                      "it needs a token file (mode 0600) so that only you can see the camera")
    detector = valid.get("detector", {})
    name = detector.get("name")
    if name is not None and isinstance(detector.get(name), dict):
        _check_detector_params(name, detector[name], errors)


def _address(host: str):
    """``host`` as an IP address, or None if it is not one."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def is_loopback(bind: str) -> bool:
    """Whether a ``web.bind`` (an address or ``localhost``) is reachable from this machine only."""
    return bind == "localhost" or bool(_address(bind) and _address(bind).is_loopback)


def _check_files(valid: dict, errors: list[str]) -> None:
    """What an enabled MQTT sink or web page needs from the world (``edge.checks``): the
    files it reads, the broker's name, its topics; and paths that can't be used at all."""
    bad = set()
    for keys in _PATH_KEYS:
        value = _get(valid, keys)
        if isinstance(value, str) and "\0" in value:
            errors.append(f"{'.'.join(keys)}: contains a NUL character")
            bad.add(keys[-1])
    snapshot_dir = _get(valid, ("sinks", "snapshot", "dir"))
    if snapshot_dir == "":
        errors.append("sinks.snapshot.dir: must not be empty (it would be the working folder)")
    mqtt, web = valid.get("sinks", {}).get("mqtt", {}), valid.get("web", {})

    def given(table, name):
        return table.get(name) if name not in bad else None

    if mqtt.get("enabled"):
        if "host" in mqtt:
            _add(errors, "sinks.mqtt.host", checks.host_problem(mqtt["host"]))
        for name in ("topic_prefix", "discovery_prefix"):
            if mqtt.get(name):
                _add(errors, f"sinks.mqtt.{name}", checks.topic_problem(mqtt[name]))
        if given(mqtt, "password_file"):
            _add(errors, "sinks.mqtt.password_file", checks.secret_problem(mqtt["password_file"]))
        if mqtt.get("tls") and given(mqtt, "ca_file"):
            _add(errors, "sinks.mqtt.ca_file", checks.ca_problem(mqtt["ca_file"]))
        if mqtt.get("tls") and given(mqtt, "cert_file") and "key_file" not in bad:
            _add(errors, "sinks.mqtt.cert_file",
                 checks.cert_problem(mqtt["cert_file"], mqtt.get("key_file", "")))
    if web.get("enabled") and given(web, "token_file"):
        _add(errors, "web.token_file", checks.secret_problem(web["token_file"]))


def _get(tables: dict, keys: tuple[str, ...]):
    for key in keys:
        tables = tables.get(key) if isinstance(tables, dict) else None
    return tables


def _add(errors: list[str], key: str, problem: str | None) -> None:
    if problem:
        errors.append(f"{key}: {problem}")


def _check_detector_params(detector: str, table: dict, errors: list[str]) -> None:
    """Check the chosen detector's table against its constructor's keyword parameters.

    Names and types are checked here; values the constructor itself rejects (say, a
    scale factor of 1, or a model file that isn't there) are reported when the pipeline
    builds it, under the same key.
    """
    prefix = f"detector.{detector}"
    try:
        cls = detector_class(detector)
    except ImportError as exc:
        errors.append(f"detector.name: the {detector} detector is not available ({exc})")
        return
    params = {name: p for name, p in inspect.signature(cls).parameters.items()
              if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    for key, value in table.items():
        if key not in params:
            errors.append(f"{prefix}.{key}: unknown parameter of the {detector} detector "
                          f"(known: {', '.join(params)})")
            continue
        default = params[key].default
        kind = type(default) if default not in (None, inspect.Parameter.empty) else None
        if kind in _TYPE_NAMES and not _is_type(value, kind):
            errors.append(f"{prefix}.{key}: expected {_TYPE_NAMES[kind]}, got "
                          f"{type(value).__name__} {value!r}")
        elif isinstance(value, float) and not math.isfinite(value):
            errors.append(f"{prefix}.{key}: must be a finite number, got {value!r}")
    for name, p in params.items():
        if p.default is inspect.Parameter.empty and name not in table:
            errors.append(f"{prefix}.{name}: missing (the {detector} detector needs it)")


def with_overrides(config: Config, source: str | None = None,
                   model: str | None = None, detector: str | None = None) -> Config:
    """The config with the command line's ``--source``, ``--model`` and ``--detector``.

    ``--source`` is ``picamera2``, a camera index (``0``), a folder of images, or a video
    file or stream URL (opencv). ``--detector`` picks ``detector.name``; the config's
    parameter table for that detector still applies, and is checked here as load_config
    checks the configured one.
    """
    if source is not None:
        config = dataclasses.replace(config, source=_source_from_text(config.source, source))
    if model is not None:
        config = dataclasses.replace(config, model=dataclasses.replace(config.model, path=model))
    if detector is not None and detector != config.detector.name:
        if detector not in DETECTORS:
            raise ConfigError(f"--detector {detector}: must be one of "
                              + ", ".join(repr(d) for d in DETECTORS))
        chosen = dataclasses.replace(config.detector, name=detector)
        errors: list[str] = []
        _check_detector_params(detector, chosen.params, errors)
        if errors:
            raise ConfigError(f"--detector {detector}: " + "\n".join(errors))
        config = dataclasses.replace(config, detector=chosen)
    return config


def _source_from_text(current: SourceConfig, text: str) -> SourceConfig:
    if text == "picamera2":
        return dataclasses.replace(current, kind="picamera2")
    if text.isdigit():
        return dataclasses.replace(current, kind="opencv", device=int(text), url="")
    if Path(text).is_dir():
        return dataclasses.replace(current, kind="images", path=text)
    if "://" not in text and not Path(text).is_file():
        raise ConfigError(f"--source {text}: no such file or folder (give picamera2, a camera "
                          "index, a folder of images, a video file or a stream URL)")
    return dataclasses.replace(current, kind="opencv", url=text)
