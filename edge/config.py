"""The edge runtime's configuration: one TOML file, checked as a whole before anything starts.

Every setting is declared once, by the part that uses it (``edge.shared.params``): the source,
detector and sink plugins (``edge.plugins``), the model, the tracker, the quality gate, the
status page and the service. :func:`schema` assembles them into one ``Config``, and
``edge/maskwatch.toml`` — the shipped list of every key with its default and help — is
generated from it (``python -m edge config``; a test keeps the two equal).

A user's file is laid over the defaults, so it only needs the keys it changes. It is
checked against the schema — an unknown key, a wrong type, a value out of range, a rule
between keys, a file that can't be used — and *every* problem is reported at once, each
line naming the dotted key::

    ConfigError: tracker.k: must be at most tracker.n (5), got 7
                 sinks.gpio.red: expected an integer, got str

Relative paths in a file are taken relative to that file's folder, so a config can sit next
to the frames or models it names.

``read_tables`` (the file over the shipped one, unchecked) needs the standard library only:
the installer reads configs with the system's Python.
"""

from __future__ import annotations

import dataclasses
import functools
import tomllib
import typing
from pathlib import Path

import edge
from edge.shared.params import build, describe

DEFAULT_CONFIG = Path(__file__).with_name("maskwatch.toml")
# The bundled model, beside the edge package in a checkout or an install.
DEFAULT_MODEL = Path(edge.__file__).resolve().parents[1] / "models" / "default"
# Keys that moved into a source's own table.
MOVED = {"path": "source.images.path", "url": "source.opencv.url",
         "device": "source.opencv.device", "width": "source.picamera2.width (or opencv's)",
         "height": "source.picamera2.height (or opencv's)"}


class ConfigError(Exception):
    """The configuration can't be used; each line of the message names a dotted key."""


def _tables(base, kind: str, name: str):
    """``base`` (a settings dataclass) with one field per plugin of ``kind``, its table."""
    from edge.plugins import plugins

    return dataclasses.make_dataclass(
        name, [(n, p.params, dataclasses.field(default_factory=p.params))
               for n, p in plugins(kind).items()], bases=(base,), frozen=True)


@functools.cache
def schema() -> type:
    """The ``Config`` dataclass: every table, from the parts that own them."""
    from edge.detectors import DetectorSettings
    from edge.motion import MotionParams
    from edge.notify import ServiceParams
    from edge.privacy import PrivacyParams
    from edge.quality import Gate
    from edge.shared.classifier import ModelParams
    from edge.sources import SourceSettings
    from edge.tracker import TrackerParams
    from edge.web import WebParams
    from edge.zone import ZoneParams

    sinks = _tables(object, "sink", "SinksConfig")
    tables = [("source", _tables(SourceSettings, "source", "SourceConfig")),
              ("detector", _tables(DetectorSettings, "detector", "DetectorConfig")),
              ("motion", MotionParams), ("zone", ZoneParams),
              ("model", ModelParams), ("tracker", TrackerParams), ("judge", Gate),
              ("sinks", sinks), ("privacy", PrivacyParams), ("web", WebParams),
              ("service", ServiceParams)]
    return dataclasses.make_dataclass(
        "Config", [(n, t, dataclasses.field(default_factory=t)) for n, t in tables],
        frozen=True, namespace={"model_path": property(_model_path)})


def _model_path(config) -> Path:
    """The model folder (or file) to load: the configured one, else the bundled default."""
    return Path(config.model.path) if config.model.path else DEFAULT_MODEL


Config = typing.Any   # for annotations: the class is schema()'s


def load_config(path: Path | str | None = None):
    """Read ``path`` laid over the defaults (``None``: the defaults alone) and check it."""
    data = {}
    if path is not None:
        data = _read_toml(Path(path))
        _resolve_paths(data, schema(), Path(path).resolve().parent)
    errors: list[str] = []
    config, valid = build(schema(), data, "", errors)
    errors += _chosen_problems(valid)
    if errors:
        where = f"{path}: " if path is not None else ""
        raise ConfigError(where + "\n".join(_with_hints(errors)))
    return config


def _chosen_problems(valid: dict) -> list[str]:
    """The chosen source's and detector's names exist, and their tables are usable."""
    from edge.plugins import plugins

    errors = []
    for table, key, kind in (("source", "kind", "source"), ("detector", "name", "detector")):
        name = valid.get(table, {}).get(key)
        known = plugins(kind)
        if name is None:
            continue
        if name not in known:
            errors.append(f"{table}.{key}: must be one of {', '.join(map(repr, known))}, "
                          f"got {name!r}")
            continue
        values = valid[table].get(name, {})
        errors += [f"{table}.{name}.{k}: {m}"
                   for k, m in known[name].params.problems_when_chosen(values)]
    return errors


def _with_hints(errors: list[str]) -> list[str]:
    out = []
    for line in errors:
        key = line.split(":", 1)[0]
        if key.startswith("source.") and key.removeprefix("source.") in MOVED \
                and "unknown key" in line:
            line = f"{key}: moved to {MOVED[key.removeprefix('source.')]}"
        out.append(line)
    return out


def read_tables(path: Path | str | None = None) -> dict:
    """The file laid over the shipped defaults, paths made absolute, *not yet checked*: for
    tools that read a table or two of a config ``check-config`` has passed (the installer).
    Standard library only."""
    data = _read_toml(DEFAULT_CONFIG)
    if path is not None:
        user = _read_toml(Path(path))
        for keys in (("sinks", "mqtt", k) for k in ("password_file", "ca_file", "cert_file",
                                                    "key_file")):
            _resolve(user, keys, Path(path).resolve().parent)
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


def _merge(base: dict, over: dict) -> dict:
    """``over`` laid on ``base``, table by table."""
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merged[key] = _merge(base[key], value)
        else:
            merged[key] = value
    return merged


def _path_keys(cls, prefix=()) -> list[tuple[tuple[str, ...], str]]:
    """Every key of the schema that holds a path, with its kind ("file" or "model")."""
    keys = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]):
            keys += _path_keys(hints[f.name], prefix + (f.name,))
        elif f.metadata.get("path"):
            keys.append((prefix + (f.name,), f.metadata["path"]))
    return keys


def _resolve_paths(user: dict, cls, base: Path) -> None:
    """Make the relative paths of a user's file relative to the file's folder. A model's
    name ("n", "full") is no path: it has neither a separator nor a suffix."""
    for keys, kind in _path_keys(cls):
        _resolve(user, keys, base, names_too=kind == "model")


def _resolve(tables: dict, keys: tuple[str, ...], base: Path, names_too: bool = False) -> None:
    for key in keys[:-1]:
        tables = tables.get(key) if isinstance(tables, dict) else None
    value = tables.get(keys[-1]) if isinstance(tables, dict) else None
    if not isinstance(value, str) or not value or "://" in value or "\0" in value \
            or Path(value).is_absolute():
        return
    if names_too and "/" not in value and not Path(value).suffix:
        return
    tables[keys[-1]] = str(base / value)


def with_overrides(config, source: str | None = None, model: str | None = None,
                   detector: str | None = None):
    """The config with the command line's ``--source``, ``--model`` and ``--detector``.

    ``--source`` is ``picamera2``, a camera index (``0``), a folder of images, or a video
    file or stream URL (opencv). ``--detector`` picks ``detector.name``; the config's table
    for that detector still applies."""
    replace = dataclasses.replace
    if source is not None:
        config = replace(config, source=_source_from_text(config.source, source))
    if model is not None:
        config = replace(config, model=replace(config.model, path=model))
    if detector is not None and detector != config.detector.name:
        from edge.plugins import plugins
        if detector not in plugins("detector"):
            raise ConfigError(f"--detector {detector}: must be one of "
                              + ", ".join(repr(d) for d in plugins("detector")))
        config = replace(config, detector=replace(config.detector, name=detector))
    return config


def _source_from_text(current, text: str):
    replace = dataclasses.replace
    if text == "picamera2":
        return replace(current, kind="picamera2")
    if text.isdigit():
        return replace(current, kind="opencv", opencv=replace(current.opencv, device=int(text),
                                                              url=""))
    if Path(text).is_dir():
        return replace(current, kind="images", images=replace(current.images, path=text))
    if "://" not in text and not Path(text).is_file():
        raise ConfigError(f"--source {text}: no such file or folder (give picamera2, a camera "
                          "index, a folder of images, a video file or a stream URL)")
    return replace(current, kind="opencv", opencv=replace(current.opencv, url=text))


def defaults_toml() -> str:
    """``edge/maskwatch.toml``: every table and key of the schema, with its default, its
    help and the reasons for a default, as TOML with comments."""
    lines = [
        "# maskwatch edge runtime: every setting with its default. GENERATED from the code that",
        "# uses each one (python -m edge config > edge/maskwatch.toml); edit there.",
        "#",
        "# A config file of your own only needs the keys it changes; everything else comes from",
        "# here. Check one with:  python -m edge check-config FILE",
        "# Relative paths in a config file are relative to that file's folder.",
    ]

    def table(name: str, cls, summary: str = "") -> None:
        lines.append("")
        lines.append(f"[{name}]" + (f"  # {summary}" if summary else ""))
        rows = [(k, _toml(v), h, n) for k, v, h, n in describe(cls)
                if not dataclasses.is_dataclass(v)]
        width = max((len(f"{k} = {v}") for k, v, _, _ in rows), default=0)
        for key, value, help_, note in rows:
            lines.extend(f"# {line}" if line else "#" for line in note.splitlines())
            text = f"{key} = {value}"
            lines.append(f"{text:<{max(width, 25)}} # {help_}".rstrip(" #") if help_ else text)

    from edge.plugins import plugins
    config = schema()
    hints = typing.get_type_hints(config)
    for f in dataclasses.fields(config):
        cls = hints[f.name]
        if f.name == "sinks":
            for name, p in plugins("sink").items():
                table(f"sinks.{name}", p.params, p.summary)
            continue
        table(f.name, cls, (cls.__doc__ or "").strip().splitlines()[0]
              if f.name not in ("source", "detector") else "")
        kind = {"source": "source", "detector": "detector"}.get(f.name)
        for name, p in plugins(kind).items() if kind else ():
            table(f"{f.name}.{name}", p.params, p.summary)
    return "\n".join(lines) + "\n"


def _toml(value) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)
