"""The plugins: face detectors, frame sources and sinks. Each is one file that declares

    PLUGIN = Plugin("detector", "yunet", YuNetParams, YuNetDetector, "...")

— its kind, its name in the config, its parameters dataclass (``edge.shared.params``: types,
defaults, ranges, help) and what builds it from a parameters object. The registry finds
them by looking at the modules of ``edge.detectors``, ``edge.sources`` and ``edge.sinks``;
the config's schema (``edge.config``), its defaults (``maskwatch.toml`` is generated from
them) and ``--detector``'s choices all come from here. ``docs/plugins.md`` adds one.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass

PACKAGES = {"source": "edge.sources", "detector": "edge.detectors", "sink": "edge.sinks"}


@dataclass(frozen=True)
class Plugin:
    kind: str               # "source", "detector" or "sink"
    name: str               # source.kind = NAME, [detector.NAME], [sinks.NAME]
    params: type            # its parameters dataclass
    make: Callable          # make(params) builds it (a sink: make(params, context))
    summary: str            # one line: the comment of its table in maskwatch.toml
    order: int = 50         # where its table goes among its kind's (lower first)


@functools.cache
def plugins(kind: str) -> dict[str, Plugin]:
    """The plugins of ``kind`` by name, in their order."""
    package = importlib.import_module(PACKAGES[kind])
    found = []
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        plugin = getattr(module, "PLUGIN", None)
        if plugin is None:
            continue
        if plugin.kind != kind:
            raise TypeError(f"{module.__name__}.PLUGIN is a {plugin.kind}, in the {kind} package")
        found.append(plugin)
    return {p.name: p for p in sorted(found, key=lambda p: (p.order, p.name))}


def plugin(kind: str, name: str) -> Plugin:
    """The plugin of ``kind`` called ``name``; ValueError naming the known ones otherwise."""
    known = plugins(kind)
    if name not in known:
        raise ValueError(f"unknown {kind} '{name}' (known: {', '.join(known)})")
    return known[name]
