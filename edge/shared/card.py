"""``card.json``: the only contract between export and the edge runtime.

Export writes it; the edge reads labels, input size and quantisation from it, and
refuses a model file whose sha256 doesn't match it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

SCHEMA_VERSION = 1
FORMATS = ("float32", "float16", "dynamic", "int8")
# Fastest on the Pi's ARM cores first.
FORMAT_PREFERENCE = ("int8", "dynamic", "float16", "float32")


class ModelError(Exception):
    """A model or its card can't be used; the message names the fix."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _require(mapping: dict, key: str, kind: type | tuple[type, ...], where: str):
    if key not in mapping:
        raise ModelError(f"card.json: missing '{where}{key}'")
    value = mapping[key]
    if not isinstance(value, kind):
        raise ModelError(f"card.json: '{where}{key}' has the wrong type ({type(value).__name__})")
    return value


def validate_card(card: dict) -> None:
    """Raise ModelError naming the first field that doesn't match the schema."""
    if not isinstance(card, dict):
        raise ModelError("card.json: not a JSON object")
    schema = _require(card, "schema", int, "")
    if schema != SCHEMA_VERSION:
        raise ModelError(f"card.json: schema {schema} is not {SCHEMA_VERSION}; "
                         "re-export the model with this version of maskwatch")
    _require(card, "name", str, "")
    classes = _require(card, "classes", list, "")
    if len(classes) < 2 or not all(isinstance(c, str) and c for c in classes):
        raise ModelError("card.json: 'classes' must list at least two class names")
    inp = _require(card, "input", dict, "")
    size = _require(inp, "size", int, "input.")
    if size < 32:
        raise ModelError("card.json: 'input.size' must be at least 32")
    if _require(inp, "color", str, "input.") != "RGB":
        raise ModelError("card.json: 'input.color' must be RGB")
    for key in ("alarm_labels", "masked_labels"):
        if key in card and not (isinstance(card[key], list)
                                and all(label in classes for label in card[key])):
            raise ModelError(f"card.json: '{key}' must list some of its 'classes'")
    formats = _require(card, "formats", dict, "")
    for fmt, entry in formats.items():
        where = f"formats.{fmt}."
        if fmt not in FORMATS:
            raise ModelError(f"card.json: unknown format '{fmt}' (known: {', '.join(FORMATS)})")
        if not isinstance(entry, dict):
            raise ModelError(f"card.json: 'formats.{fmt}' must be an object")
        if _require(entry, "accepted", bool, where):
            _require(entry, "file", str, where)
            _require(entry, "sha256", str, where)
            _require(entry, "bytes", int, where)


def alarm_labels(card: dict) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The classes a model's card says raise the alarm, and those it says are masked. A card
    without them (the two-class models before the third class) meant: ``with_mask`` is
    masked, every other class an alarm."""
    masked = card.get("masked_labels", [c for c in card["classes"] if c == "with_mask"])
    alarm = card.get("alarm_labels", [c for c in card["classes"] if c not in masked])
    return tuple(alarm), tuple(masked)


@dataclass(frozen=True)
class ModelFile:
    """One accepted TFLite file of a card, checked against its sha256."""

    path: Path
    format: str
    classes: tuple[str, ...]
    input_size: int
    card: dict


def load_card(model_dir: Path) -> dict:
    path = Path(model_dir) / "card.json"
    if not path.is_file():
        raise ModelError(f"{path} not found: point --model at a folder written by "
                         "'python -m export' (or 'make export'), e.g. models/default")
    try:
        card = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path} is corrupt ({exc}); re-run 'make export'") from exc
    validate_card(card)
    return card


def resolve_model(model: Path | str, fmt: str | None = None) -> ModelFile:
    """Find the TFLite file to run from a model folder, its card.json, or a .tflite in one.

    ``fmt`` picks a format; by default the first accepted one in FORMAT_PREFERENCE.
    """
    model = Path(model)
    if model.suffix == ".tflite":
        model_dir, wanted_file = model.parent, model.name
    elif model.name == "card.json":
        model_dir, wanted_file = model.parent, None
    else:
        model_dir, wanted_file = model, None
    card = load_card(model_dir)
    accepted = {f: e for f, e in card["formats"].items() if e["accepted"]}
    if wanted_file is not None:
        matches = [f for f, e in accepted.items() if e["file"] == wanted_file]
        if not matches:
            raise ModelError(f"{model} is not an accepted format in {model_dir / 'card.json'}")
        chosen = matches[0]
    elif fmt is not None:
        if fmt not in accepted:
            raise ModelError(f"format '{fmt}' is not accepted in {model_dir / 'card.json'} "
                             f"(accepted: {', '.join(accepted) or 'none'})")
        chosen = fmt
    else:
        chosen = next((f for f in FORMAT_PREFERENCE if f in accepted), None)
        if chosen is None:
            raise ModelError(f"{model_dir / 'card.json'} has no accepted format; "
                             "re-run the export and read its summary table")
    entry = accepted[chosen]
    path = model_dir / entry["file"]
    if not path.is_file():
        raise ModelError(f"{path} is missing; copy the whole model folder or re-run 'make export'")
    size = path.stat().st_size
    if size != entry["bytes"]:  # cheap, and says "truncated" where a hash can't
        raise ModelError(f"{path} is {size} bytes, its card.json says {entry['bytes']}: the file "
                         "is truncated or from another export; copy the model folder again")
    if sha256_of(path) != entry["sha256"]:
        raise ModelError(f"{path} does not match the sha256 in its card.json: the file is "
                         "corrupt or from another export; copy the model folder again")
    return ModelFile(path=path, format=chosen, classes=tuple(card["classes"]),
                     input_size=card["input"]["size"], card=card)
