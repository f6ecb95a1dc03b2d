"""What the store and the snapshot sink own, and only that: ``edge erase`` through a link, a
folder named like a snapshot, someone else's file at the store's path, paths that are no
place for a store, and snapshot pruning past entries that aren't snapshots."""

from __future__ import annotations

import os
import sqlite3
import time

import pytest

from edge.__main__ import main
from edge.config import ConfigError, load_config
from edge.sinks import SinkUnavailable
from edge.sinks.snapshot import SnapshotParams, SnapshotSink, snapshot_name
from edge.sinks.store import History
from tests.edge_process import finish, start
from tests.test_store import NOON, result, store


def config_for(tmp_path, store_path, snaps) -> str:
    config = tmp_path / "maskwatch.toml"
    config.write_text(f'[sinks.store]\npath = "{store_path}"\n[sinks.snapshot]\ndir = "{snaps}"\n')
    return str(config)


def test_erase_through_a_symlink_refuses_in_one_line_and_leaves_the_target(tmp_path, capsys):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    s = store(elsewhere)
    s.handle(result(NOON))
    s.close()
    link = tmp_path / "events.db"
    link.symlink_to(elsewhere / "events.db")
    config = config_for(tmp_path, link, tmp_path / "snapshots")
    for args in (["erase", "--config", config], ["erase", "--config", config, "--yes"]):
        assert main(args) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"{link} is a symbolic link to {elsewhere}" in err
    assert link.is_symlink() and len(History(elsewhere / "events.db").events()) == 1


def test_erase_passes_over_a_folder_named_like_a_snapshot_and_deletes_the_snapshots(tmp_path,
                                                                                    capsys):
    snaps = tmp_path / "snapshots"
    snaps.mkdir()
    real = snaps / snapshot_name(NOON, 1)
    real.write_bytes(b"\xff\xd8")
    folder = snaps / snapshot_name(NOON, 2)
    folder.mkdir()
    (folder / "photo.jpg").write_bytes(b"mine")
    config = config_for(tmp_path, tmp_path / "events.db", snaps)
    assert main(["erase", "--config", config]) == 1
    out = capsys.readouterr().out
    assert "would delete 1 files" in out and str(folder) not in out
    assert main(["erase", "--config", config, "--yes"]) == 0
    assert not real.exists() and (folder / "photo.jpg").read_bytes() == b"mine"


@pytest.mark.parametrize("kind", ["text", "sqlite of something else"])
def test_a_file_that_is_not_a_store_is_neither_erased_nor_moved_aside(tmp_path, capsys, kind):
    path = tmp_path / "events.db"
    if kind == "text":
        path.write_bytes(b"my thesis, chapter 3\n" * 400)
    else:
        with sqlite3.connect(path) as con:
            con.execute("CREATE TABLE photos (name TEXT)")
        con.close()
    data = path.read_bytes()
    with pytest.raises(SinkUnavailable, match="not an event store"):
        store(tmp_path)
    config = config_for(tmp_path, path, tmp_path / "snapshots")
    assert main(["erase", "--config", config, "--yes"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not an event store" in err
    assert path.read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.db", "maskwatch.toml"]


def test_a_damaged_store_of_ours_is_moved_aside_and_a_new_one_started(tmp_path, caplog):
    path = tmp_path / "events.db"
    s = store(tmp_path)
    s.handle(result(NOON))
    s.close()
    data = bytearray(path.read_bytes())
    data[16:100] = os.urandom(84)           # the header past its magic string
    path.write_bytes(bytes(data))
    s = store(tmp_path)
    s.handle(result(NOON + 1, track=2))
    s.close()
    (aside,) = tmp_path.glob("events.db.corrupt-*")
    assert aside.read_bytes()[:16] == b"SQLite format 3\0"
    assert [e["track"] for e in History(path).events()] == [2]
    assert caplog.text.count("is damaged") == 1 and aside.name in caplog.text


@pytest.mark.parametrize("key, value", [
    ("sinks.store.path", "/"), ("sinks.store.path", "/root"), ("sinks.store.path", "/etc"),
    ("sinks.snapshot.dir", "/"), ("sinks.snapshot.dir", "/root"),
    ("sinks.snapshot.dir", "/var"), ("sinks.snapshot.dir", "/root/../etc/."),
])
def test_check_config_refuses_the_root_a_home_or_a_system_folder(tmp_path, key, value):
    table, name = key.rsplit(".", 1)
    config = tmp_path / "maskwatch.toml"
    config.write_text(f'[{table}]\n{name} = "{value}"\n')
    with pytest.raises(ConfigError, match=rf"^{config}: {key}: "):
        load_config(config)


def test_a_store_path_that_is_a_folder_is_refused(tmp_path):
    (tmp_path / "events.db").mkdir()
    with pytest.raises(ConfigError, match=r"sinks.store.path: .* is a folder"):
        load_config(config_for(tmp_path, tmp_path / "events.db", tmp_path / "snapshots"))


@pytest.mark.slow
def test_erase_yes_on_the_root_folder_is_one_line_and_exit_2(tmp_path):
    proc = start(["erase", "--config", config_for(tmp_path, "/", "/"), "--yes"])
    _, err = finish(proc, 60)
    assert proc.returncode == 2
    assert "Traceback" not in err and "sinks.store.path" in err and "sinks.snapshot.dir" in err


def test_prune_passes_over_links_folders_and_strangers_and_keeps_its_limits(tmp_path):
    sink = SnapshotSink(SnapshotParams(dir=str(tmp_path / "s"), max_count=2, max_age_days=1.0))
    folder, now = tmp_path / "s", time.time()
    outside = tmp_path / "outside.jpg"
    outside.write_bytes(b"not a snapshot")
    snaps = []
    for i, age in enumerate((3 * 86400, 300, 200, 100)):     # one too old, one too many
        path = folder / snapshot_name(now - age, i)
        path.write_bytes(b"\xff\xd8")
        os.utime(path, (now - age,) * 2)
        snaps.append(path)
    dangling = folder / snapshot_name(now - 5 * 86400, 7)
    dangling.symlink_to(tmp_path / "gone.jpg")
    link = folder / snapshot_name(now - 5 * 86400, 8)
    link.symlink_to(outside)
    named = folder / snapshot_name(now - 5 * 86400, 9)
    named.mkdir()
    assert sorted(sink.prune(now)) == snaps[:2]
    assert [p.exists() for p in snaps] == [False, False, True, True]
    assert dangling.is_symlink() and link.is_symlink() and outside.exists() and named.is_dir()
    assert sink.prune(now) == []
