"""The bundled model: its card matches its file, and the edge runs it on real faces."""

from __future__ import annotations

import numpy as np

from edge.config import load_config
from edge.pipeline import build_detector
from edge.samples import sample_frames
from edge.shared.card import load_card, resolve_model, sha256_of
from edge.shared.classifier import Classifier
from edge.shared.crop import crop_face
from tests.conftest import ROOT

DEFAULT = ROOT / "models" / "default"


def test_card_hash_matches_the_committed_file():
    card = load_card(DEFAULT)
    entry = card["formats"]["int8"]
    assert entry["accepted"]
    assert sha256_of(DEFAULT / entry["file"]) == entry["sha256"]
    assert (DEFAULT / entry["file"]).stat().st_size == entry["bytes"] <= 25_000_000
    assert resolve_model(DEFAULT).format == "int8"
    assert card["classes"] == ["with_mask", "without_mask"]


def test_edge_classifies_the_astronaut_frames():
    """The shipped detector and model, on the demo's bare and drawn-mask astronaut."""
    clf = Classifier(DEFAULT)
    detector = build_detector(load_config(None))
    for name, expected in (("plain", "without_mask"), ("masked", "with_mask")):
        frame = sample_frames()[name]
        faces = detector.detect(frame)
        assert len(faces) == 1, name
        probs = clf.classify([crop_face(frame, faces[0].box)])
        assert np.allclose(probs.sum(1), 1.0, atol=0.02)
        assert clf.labels[int(probs.argmax())] == expected, (name, probs)
