"""Export: every flavour passes its parity gate through the edge classifier, and the gate
refuses what it should, leaving no file under the refused format's name."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from edge.shared.card import ModelError, load_card, resolve_model, validate_card
from edge.shared.classifier import Classifier
from export.__main__ import main as export_main
from tests.synthetic import CLASSES, write_class_folders
from train import data

pytestmark = pytest.mark.slow

SIZE = 48


def _small_trained_model(out):
    """A small CNN with the product's in-graph preprocessing, trained to confidence on bars."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(0)
    root = write_class_folders(out.parent / "bars", per_class=80, size=64, seed=11)
    ds = data.load_dataset([root], SIZE, progress=False)
    train, test = data.split_indices(ds.labels, ds.groups, 0.25, seed=0)
    data.write_split(out / "split.json", ds, {"train": train, "val": test, "test": test}, {"seed": 0})
    (out / "labels.txt").write_text("\n".join(ds.classes) + "\n")
    pixels = keras.Input((SIZE, SIZE, 3), name="pixels")
    x = layers.Rescaling(1 / 127.5, offset=-1, name="preprocess")(pixels)
    x = layers.MaxPooling2D()(layers.Conv2D(8, 5, activation="relu")(x))
    x = layers.GlobalAveragePooling2D()(layers.Conv2D(16, 3, activation="relu")(x))
    model = keras.Model(pixels, layers.Dense(len(CLASSES), activation="softmax", name="probs")(x))
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy")
    model.fit(ds.images[train].astype(np.float32), ds.labels[train], epochs=40, batch_size=16, verbose=0)
    model.save(out / "model.keras")
    x = ds.images[test].astype(np.float32)
    assert (model.predict(x, verbose=0).argmax(1) == ds.labels[test]).mean() >= 0.95, "fixture didn't learn"
    return model


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    """The small model exported once to all four formats (conversions are the slow part)."""
    out = tmp_path_factory.mktemp("export") / "bars"
    out.mkdir()
    _small_trained_model(out)
    code = export_main(["--model", str(out / "model.keras"), "--calibration", "50"])
    return out, code


def test_all_formats_pass_and_are_published(exported):
    out, code = exported
    assert code == 0
    card = load_card(out)
    assert card["classes"] == list(CLASSES) and card["input"]["size"] == SIZE
    for fmt in ("float32", "float16", "dynamic", "int8"):
        entry = card["formats"][fmt]
        assert entry["accepted"], entry.get("refused")
        assert (out / f"bars-{fmt}.tflite").is_file()
        assert entry["parity"]["agreement"] >= entry["gate"]["min_agreement"]
        assert "ai-edge-litert" in entry["loaded_by"]
    assert card["formats"]["float32"]["parity"]["max_abs_diff"] <= 1e-3
    assert "tflite-runtime" not in " ".join(card["formats"]["dynamic"]["runtimes"])
    assert not list(out.glob(".*.partial"))


def test_each_format_classifies_like_keras_in_the_edge(exported):
    import keras

    out, _ = exported
    x, y, _ = data.read_split_images(out / "split.json", "test", SIZE, progress=False)
    keras_probs = keras.models.load_model(out / "model.keras").predict(x.astype(np.float32), verbose=0)
    for fmt in ("float32", "float16", "dynamic", "int8"):
        probs = Classifier(out, fmt=fmt).predict(x)
        assert (probs.argmax(1) == keras_probs.argmax(1)).mean() >= 0.98, fmt
        assert np.abs(probs - keras_probs).max() < (1e-3 if fmt == "float32" else 0.1), fmt


def test_int8_is_full_integer_with_uint8_pixels(exported):
    out, _ = exported
    entry = load_card(out)["formats"]["int8"]
    assert entry["input"]["dtype"] == "uint8" and entry["output"]["dtype"] == "uint8"
    assert entry["input"]["scale"] == pytest.approx(1.0) and entry["input"]["zero_point"] == 0
    clf = Classifier(out, fmt="int8")
    assert clf.input_details["dtype"] == np.uint8
    faces = np.zeros((1, SIZE, SIZE, 3), np.uint8)
    assert clf.predict(faces).sum() == pytest.approx(1.0, abs=0.02)


def _copy(exported, tmp_path):
    out, _ = exported
    dst = tmp_path / "bars"
    shutil.copytree(out, dst)
    return dst


def test_impossible_threshold_refuses_and_publishes_nothing(exported, tmp_path):
    dst = _copy(exported, tmp_path)
    code = export_main(["--model", str(dst / "model.keras"), "--formats", "float32",
                        "--min-agreement", "1.01"])
    assert code == 1
    assert not (dst / "bars-float32.tflite").exists()
    entry = load_card(dst)["formats"]["float32"]
    assert not entry["accepted"] and "agreement" in entry["refused"]
    with pytest.raises(ModelError, match="no accepted format"):
        resolve_model(dst)


def test_mismatched_file_is_refused(exported, tmp_path, monkeypatch):
    """A converter that writes some other network's file (here: outputs swapped) is caught."""
    import keras

    import export.__main__ as export_cli
    from export.convert import convert

    dst = _copy(exported, tmp_path)
    model = keras.models.load_model(dst / "model.keras")
    swapped = keras.Model(model.input, keras.layers.Lambda(lambda p: p[:, ::-1])(model.output))
    monkeypatch.setattr(export_cli, "convert", lambda m, fmt, cal=None: convert(swapped, fmt, cal))
    assert export_main(["--model", str(dst / "model.keras"), "--formats", "float32"]) == 1
    assert not (dst / "bars-float32.tflite").exists()
    assert "agreement" in load_card(dst)["formats"]["float32"]["refused"]


def test_nan_output_is_refused(exported, tmp_path, monkeypatch):
    """The from_concrete_functions failure mode: a file that runs but outputs NaN."""
    import keras

    import export.__main__ as export_cli
    from export.convert import convert

    dst = _copy(exported, tmp_path)
    model = keras.models.load_model(dst / "model.keras")
    nan = keras.Model(model.input, keras.layers.Lambda(lambda p: p * np.float32("nan"))(model.output))
    monkeypatch.setattr(export_cli, "convert", lambda m, fmt, cal=None: convert(nan, fmt, cal))
    assert export_main(["--model", str(dst / "model.keras"), "--formats", "float32"]) == 1
    assert not (dst / "bars-float32.tflite").exists()


def test_card_schema_and_sha256_are_enforced(exported, tmp_path):
    dst = _copy(exported, tmp_path)
    card = json.loads((dst / "card.json").read_text())
    validate_card(card)
    broken = dict(card)
    del broken["classes"]
    with pytest.raises(ModelError, match="classes"):
        validate_card(broken)
    blob = bytearray((dst / "bars-int8.tflite").read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    (dst / "bars-int8.tflite").write_bytes(bytes(blob))
    with pytest.raises(ModelError, match="sha256"):
        Classifier(dst, fmt="int8")
    (dst / "card.json").write_text("{not json")
    with pytest.raises(ModelError, match="corrupt"):
        Classifier(dst)


def test_inception_run_exports_to_int8_for_the_edge(tiny_run):
    """The real architecture through the real path: train's output → int8 → edge classifier."""
    code = export_main(["--model", str(tiny_run / "model.keras"), "--formats", "int8",
                        "--calibration", "8", "--min-agreement", "0", "--max-drop", "100"])
    assert code == 0
    clf = Classifier(tiny_run)
    assert clf.model.format == "int8" and clf.labels == ("horizontal", "vertical")
    face = np.random.default_rng(0).integers(0, 256, (120, 90, 3), dtype=np.uint8)
    assert clf.classify([face]).shape == (1, 2)


def test_compare_reports_what_the_pi_would_run(exported, tmp_path, capsys, monkeypatch):
    """export.compare scores the accepted int8 file on the held-out split and times it itself."""
    from export import compare

    timed = []
    monkeypatch.setattr(compare, "median_latency_ms",
                        lambda clf, face: timed.append(clf.model.format) or 1.5)
    compare_main = compare.main
    out, _ = exported
    code = compare_main([str(out), "--json", str(tmp_path / "rows.json")])
    assert code == 0
    (row,) = json.loads((tmp_path / "rows.json").read_text())
    x, y, _ = data.read_split_images(out / "split.json", "test", SIZE, progress=False)
    expected = (Classifier(out, fmt="int8").predict(x).argmax(1) == y).mean()
    card = load_card(out)["formats"]["int8"]
    assert row["format"] == "int8" and row["accuracy"] == pytest.approx(expected)
    assert row["test_images"] == len(y) and row["count_other"] == len(y)
    assert row["int8_agreement"] == card["parity"]["agreement"]
    # Both files timed here, back to back, not the figure export measured under its own load.
    assert sorted(timed) == ["float32", "int8"] and row["ms_int8"] == row["ms_float32"] == 1.5
    assert 0 < row["gmacs"] < 0.01
    assert "bars" in capsys.readouterr().out


def test_the_committed_test_model_answers_as_its_keras_model(model):
    """tests/fixtures' TFLite file is the hand-wired Keras model of tests/edge_model.py,
    converted (python -m tests.edge_model), and answers as it does."""
    from edge.samples import sample_frames
    from tests.edge_model import SIZE, build_keras_model

    import cv2
    rng = np.random.default_rng(0)
    crops = [cv2.resize(image, (SIZE, SIZE), interpolation=cv2.INTER_AREA)
             for image in sample_frames().values()]
    crops += list(rng.integers(0, 256, (8, SIZE, SIZE, 3), dtype=np.uint8))
    crops = np.stack(crops)
    keras_probs = build_keras_model().predict(crops.astype(np.float32), verbose=0)
    tflite_probs = Classifier(model).classify(list(crops))
    np.testing.assert_allclose(tflite_probs, keras_probs, atol=1e-5)
