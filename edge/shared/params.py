"""Declaring and checking settings: a part of the runtime (a detector, a source, a sink, the
tracker, the quality gate) declares its settings once, where it uses them, as a frozen
dataclass of ``param()`` fields — type, default, allowed range, one line of help — and the
config is checked against those fields (``edge.config``), as is a parameters object built
in code.

>>> from dataclasses import dataclass
>>> @dataclass(frozen=True)
... class Blink(Params):
...     seconds: float = param(1.0, gt=0.0, max=60.0, help="how long the LED stays on")
>>> Blink().seconds
1.0
>>> try:
...     Blink(seconds=0.0)
... except ParamError as exc:
...     print(exc)
seconds: must be greater than 0.0, got 0.0

Standard library only: the installer reads configs with the system's Python.
"""

from __future__ import annotations

import dataclasses
import math
import typing

TYPE_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string",
              dict: "a table", list: "an array"}


def param(default=dataclasses.MISSING, *, factory=dataclasses.MISSING, min=None, max=None,
          gt=None, choices=None, help: str = "", path: str | None = None, note: str = ""):
    """A dataclass field whose value must lie in [``min``, ``max``], above ``gt``, or among
    ``choices``. ``help`` says what it does, in one line; ``note`` why its default is what
    it is (written above it in ``maskwatch.toml``). ``path="file"``: a path, relative to
    the config file that sets it; ``path="model"``: a bundled model's name or such a path.
    ``factory`` makes a mutable default (an array)."""
    return dataclasses.field(default=default, default_factory=factory, metadata={
        "min": min, "max": max, "gt": gt, "choices": choices, "help": help, "path": path,
        "note": note})


class ParamError(ValueError):
    """A parameter can't be used; ``key`` is its name in its table."""

    def __init__(self, key: str, message: str):
        super().__init__(f"{key}: {message}")
        self.key, self.message = key, message


class Params:
    """Base of every parameters dataclass: checks each field's type and range, and the
    rules between them (``problems``), when an object is built in code; the config runs the
    same checks over a whole file and reports every problem at once (``build``)."""

    def __post_init__(self):
        hints = typing.get_type_hints(type(self))
        values = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            problem = value_problem(value, hints[f.name], f.metadata)
            if problem:
                raise ParamError(f.name, problem)
            values[f.name] = value
        for key, message in type(self).problems(values):
            raise ParamError(key, message)

    @classmethod
    def problems(cls, values: dict) -> list[tuple[str, str]]:
        """``(key, what is wrong)`` for the rules between keys of this table, over the
        ``values`` that passed their own checks (a key may be missing): none here."""
        return []

    @classmethod
    def problems_when_chosen(cls, values: dict) -> list[tuple[str, str]]:
        """Like ``problems``, for a plugin's table: what it needs only when the config
        chooses it (an images source needs a folder; a table not chosen may be empty)."""
        return []


def is_type(value, kind) -> bool:
    # bool is a subclass of int in Python, but `threads = true` is a mistake, not 1.
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def value_problem(value, kind, spec) -> str | None:
    """What is wrong with ``value`` for a field of type ``kind`` and ``param`` metadata."""
    if kind in TYPE_NAMES and not is_type(value, kind):
        return f"expected {TYPE_NAMES[kind]}, got {type(value).__name__} {value!r}"
    # nan passes every comparison below (threshold = nan would mean no alarm, ever).
    if isinstance(value, float) and not math.isfinite(value):
        return f"must be a finite number, got {value!r}"
    if isinstance(value, str) and "\0" in value:
        return "contains a NUL character"
    if spec.get("choices") is not None and value not in spec["choices"]:
        return "must be one of " + ", ".join(repr(c) for c in spec["choices"]) + f", got {value!r}"
    if spec.get("min") is not None and value < spec["min"]:
        return f"must be at least {spec['min']}, got {value!r}"
    if spec.get("gt") is not None and value <= spec["gt"]:
        return f"must be greater than {spec['gt']}, got {value!r}"
    if spec.get("max") is not None and value > spec["max"]:
        return f"must be at most {spec['max']}, got {value!r}"
    return None


def build(cls, data, prefix: str, errors: list[str]):
    """Build dataclass ``cls`` from the table ``data``, appending one line per problem to
    ``errors`` (named ``prefix`` + key). Nested dataclass fields are built from sub-tables;
    a key left out takes its default.

    Returns the instance (None if anything is wrong) and, as nested dicts, every value that
    passed its own checks, so rules between tables can still run beside the other errors."""
    if not isinstance(data, dict):
        errors.append(f"{prefix.rstrip('.')}: expected a table, got {type(data).__name__}")
        return None, {}
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    before = len(errors)
    for key in data:
        if key not in fields:
            what = "table" if not prefix else "key"
            errors.append(f"{prefix}{key}: unknown {what} (known: {', '.join(fields)})")
    built, valid = {}, {}
    for name, f in fields.items():
        key, kind = prefix + name, hints[name]
        if dataclasses.is_dataclass(kind):
            built[name], valid[name] = build(kind, data.get(name, {}), key + ".", errors)
            continue
        if name not in data:
            if f.default is not dataclasses.MISSING:
                valid[name] = f.default
            elif f.default_factory is not dataclasses.MISSING:
                valid[name] = f.default_factory()
            else:
                errors.append(f"{key}: missing")
            continue
        problem = value_problem(data[name], kind, f.metadata)
        if problem:
            errors.append(f"{key}: {problem}")
            continue
        built[name] = valid[name] = float(data[name]) if kind is float else data[name]
    if issubclass(cls, Params):
        errors += [f"{prefix}{key}: {message}" for key, message in cls.problems(valid)]
    if len(errors) > before:
        return None, valid
    return cls(**built), valid


def describe(cls) -> list[tuple[str, object, str, str]]:
    """``(key, default, help, note)`` for each field of a parameters dataclass, in order."""
    return [(f.name, f.default if f.default is not dataclasses.MISSING else f.default_factory(),
             f.metadata.get("help", ""), f.metadata.get("note", ""))
            for f in dataclasses.fields(cls) if f.init]
