"""Declaring settings: ``param()`` is a dataclass field with its default, its allowed range
and one line of help, so that a part of the runtime (a detector, a sink, the quality gate)
declares its settings once, where it uses them, and the config checks them from there.

>>> from dataclasses import dataclass, fields
>>> @dataclass(frozen=True)
... class Blink:
...     seconds: float = param(1.0, gt=0.0, max=60.0, help="how long the LED stays on")
>>> Blink().seconds, fields(Blink)[0].metadata["help"]
(1.0, 'how long the LED stays on')
"""

from __future__ import annotations

import dataclasses


def param(default=dataclasses.MISSING, *, min=None, max=None, gt=None, choices=None,
          help: str = ""):
    """A dataclass field whose value must lie in [``min``, ``max``], above ``gt``, or among
    ``choices``; ``help`` says what it does, in one line."""
    return dataclasses.field(default=default, metadata={"min": min, "max": max, "gt": gt,
                                                        "choices": choices, "help": help})
