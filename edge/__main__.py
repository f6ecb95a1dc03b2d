"""python -m edge: the edge runtime's commands.

  run           the service loop (what systemd starts on the Pi)
  check-config  validate a config file: exit 0, or 2 with every problem named
  config        print every setting with its default (the shipped maskwatch.toml)
  eval          accuracy on face crops (--faces) or of the whole pipeline on photos (--scenes)
  bench         per-stage latency, frames/s, memory and CPU
  demo          the pipeline on sample frames of the astronaut, with no camera (workstation)
  events        the stored events, as CSV or JSON lines
  erase         delete everything the runtime stored: events, counts, snapshots

A configuration, model or source problem that needs a person exits with status 2 and says
what to fix (in the journal, under systemd).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from edge.config import ConfigError, load_config, with_overrides
from edge.pipeline import StartupError
from edge.shared.card import ModelError
from edge.sources import SourceError

log = logging.getLogger("edge")


class _Help(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Descriptions as written; each option's default shown once: added where its help
    doesn't already say it, and left out where there is none to show."""

    def _get_help_string(self, action):
        if "default" in (action.help or "") or action.default in (None, False,
                                                                  argparse.SUPPRESS):
            return action.help
        return super()._get_help_string(action)


def _add_config_args(parser: argparse.ArgumentParser, source: bool = True) -> None:
    parser.add_argument("--config", type=Path, help="TOML config laid over the defaults "
                                                     "(python -m edge config)")
    if source:
        parser.add_argument("--source", help="picamera2, a camera index, a folder of images, "
                                             "or a video file / stream URL (default: the "
                                             "config's)")
    parser.add_argument("--model", help="model folder with card.json (default: models/default)")


def _add_detector_arg(parser: argparse.ArgumentParser) -> None:
    from edge.plugins import plugins

    parser.add_argument("--detector", choices=list(plugins("detector")),
                        help="face detector, instead of the config's detector.name (its "
                             "[detector.NAME] table still applies)")


def _config(args):
    config = load_config(args.config)
    config = with_overrides(config, source=getattr(args, "source", None), model=args.model,
                            detector=getattr(args, "detector", None))
    if getattr(args, "loop", False):
        import dataclasses
        config = dataclasses.replace(config, source=dataclasses.replace(config.source, loop=True))
    return config


def cmd_run(args) -> int:
    from edge.pipeline import run_service
    return run_service(_config(args), annotate=args.annotate)


def cmd_check_config(args) -> int:
    """The file's keys, then what they point at: the detector (its own checks and model
    file) and the model folder (its card, and the file the card names, by sha256)."""
    from edge.pipeline import build_alarm, build_detector
    from edge.shared.card import resolve_model
    config = load_config(args.file)
    problems = []
    try:
        build_detector(config)
    except ConfigError as exc:
        problems.append(str(exc))
    try:
        model = resolve_model(config.model_path, config.model.format or None)
    except ModelError as exc:
        problems.append(f"model.path: {exc}")
    else:
        try:
            build_alarm(config, model)
        except ConfigError as exc:
            problems.append(str(exc))
    if problems:
        raise ConfigError(f"{args.file}: " + "\n".join(problems))
    print(f"{args.file}: ok")
    return 0


def cmd_config(args) -> int:
    from edge.config import defaults_toml
    sys.stdout.write(defaults_toml())
    return 0


def cmd_eval(args) -> int:
    from edge.measure import evaluate
    from facedata import DataError
    try:
        return evaluate.main(_config(args), args)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def cmd_bench(args) -> int:
    from edge.measure import bench
    from facedata import DataError
    try:
        return bench.main(_config(args), args)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def cmd_demo(args) -> int:
    from edge.demo import run_demo
    return run_demo(_config(args), args.out, frames_only=args.frames_only)


def _when(text: str) -> float:
    """An ISO-8601 date or date-time (local time unless it says otherwise) → seconds."""
    from datetime import datetime
    try:
        return datetime.fromisoformat(text).astimezone().timestamp()
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO-8601 date or time "
                                         "(2026-12-01, 2026-12-01T08:00)") from None


def cmd_events(args) -> int:
    import csv
    import json
    import sqlite3

    from edge.sinks.store import History
    path = args.db or load_config(args.config).sinks.store.path
    if not Path(path).is_file():
        where = "" if args.db else " ([sinks.store] path)"
        print(f"error: no event store at {path}{where}", file=sys.stderr)
        return 2
    try:
        events = History(path).events(args.since or 0.0, args.until, args.limit)
    except sqlite3.Error as exc:
        print(f"error: {path} could not be read: {exc}", file=sys.stderr)
        return 2
    if args.csv:
        writer = csv.DictWriter(sys.stdout, ["time", "track", "kind", "label", "p", "snapshot"])
        writer.writeheader()
        writer.writerows(events)
    else:
        for event in events:
            print(json.dumps(event))
    return 0


def cmd_erase(args) -> int:
    """Delete what the event store and the snapshot sink own, as the config places them,
    and nothing else: the store's files if the file is a store of ours (not through a
    link), the sink's snapshots (regular files of its naming). It deletes what it lists."""
    import shutil
    import sqlite3
    import subprocess

    from edge.sinks import eventdb, snapshot
    config = load_config(args.config)
    if shutil.which("systemctl") and subprocess.run(
            ["systemctl", "is-active", "--quiet", "maskwatch"], timeout=10).returncode == 0:
        print("error: the maskwatch service is running; stop it first "
              "(sudo systemctl stop maskwatch)", file=sys.stderr)
        return 2
    try:
        doomed = eventdb.files(config.sinks.store.path) + \
            snapshot.files(config.sinks.snapshot.dir)
    except eventdb.NotAStore as exc:
        print(f"error: {exc}; erase deletes only the store's own files and leaves this: set "
              "[sinks.store] path to the store's file itself", file=sys.stderr)
        return 2
    except (OSError, sqlite3.Error) as exc:
        print(f"error: cannot tell what is stored ({exc})", file=sys.stderr)
        return 2
    if not doomed:
        print("nothing stored: no event store, no snapshots")
        return 0
    if not args.yes:
        print(f"would delete {len(doomed)} files (the event store, its counts, snapshots); "
              "run again with --yes to delete them:")
        for path in doomed:
            print(f"  {path}")
        return 1
    for done, path in enumerate(doomed):
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            print(f"error: cannot delete {path} ({exc.strerror}); {done} of {len(doomed)} "
                  "files deleted", file=sys.stderr)
            return 2
    print(f"deleted {len(doomed)} files: the event store and its counts "
          f"({config.sinks.store.path}), snapshots ({config.sinks.snapshot.dir})")
    return 0


def _frame_size(text: str):
    from facedata.voc import parse_frame_size
    return parse_frame_size(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m edge", description=__doc__,
                                     formatter_class=_Help)
    parser.add_argument("--log-level", default="INFO",
                        choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="run the service loop", formatter_class=_Help)
    _add_config_args(p)
    p.add_argument("--annotate", type=Path, metavar="OUT",
                   help="write annotated frames: a folder, or a .mp4/.avi/.mkv video")
    p.add_argument("--loop", action="store_true",
                   help="replay a folder or video file for ever (source.loop)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("check-config", help="validate a config file (exit 0 ok, 2 not)",
                       formatter_class=_Help)
    p.add_argument("file", type=Path)
    p.set_defaults(func=cmd_check_config)

    p = sub.add_parser("config", help="print every setting with its default and help",
                       formatter_class=_Help)
    p.set_defaults(func=cmd_config)

    p = sub.add_parser("eval", help="measure accuracy on face crops or annotated photos",
                       formatter_class=_Help)
    _add_config_args(p, source=False)
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--faces", type=Path, metavar="DIR",
                      help="one sub-folder of face crops per class")
    what.add_argument("--scenes", type=Path, metavar="DIR",
                      help="Pascal-VOC photos: DIR/images and DIR/annotations")
    _add_detector_arg(p)
    p.add_argument("--split", type=Path, metavar="FILE",
                   help="scenes: a photo split (splits/scenes.json); score only its --part")
    p.add_argument("--part", default="eval",
                   help="scenes: the part of --split to score: eval (the held-out photos) or "
                        "train")
    p.add_argument("--frame", type=_frame_size, default="640x480", metavar="WxH",
                   help="scenes: show each photo in a frame of this size, at its own pixel "
                        "size, as the camera would; native: as it is")
    p.add_argument("--min-face", type=int, default=32,
                   help="scenes: also report faces at least this many pixels wide")
    p.add_argument("--zoo", type=Path, metavar="MASKS",
                   help="scenes: also the mask zoo, masks from this folder (templates/, "
                        "textures/, masks.cfg) on the held-out unmasked faces")
    p.add_argument("--prajna", type=Path, metavar="DIR",
                   help="zoo: the one-person picture set whose held-out part (--prajna-split) "
                        "also gets masks")
    p.add_argument("--prajna-split", type=Path, metavar="FILE", default=Path("splits/prajna.json"),
                   help="zoo: which of --prajna's pictures are held out")
    p.add_argument("--json", type=Path, metavar="FILE", help="write the results as JSON")
    p.add_argument("--limit", type=int, help="use only the first N images (a quick look)")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("bench", help="per-stage latency, frames/s, memory and CPU",
                       formatter_class=_Help)
    _add_config_args(p)
    _add_detector_arg(p)
    p.add_argument("--frames", type=int, default=100, help="frames to measure")
    p.add_argument("--warmup", type=int, default=10, help="frames to run first, unmeasured")
    p.add_argument("--json", type=Path, metavar="FILE", help="write the results as JSON")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("events", help="the stored events, as CSV or JSON lines",
                       formatter_class=_Help)
    p.add_argument("--config", type=Path, help="TOML config: where the store is")
    p.add_argument("--db", type=Path, help="the store's file, instead of the config's")
    p.add_argument("--since", type=_when, metavar="WHEN",
                   help="from this local date or time (ISO-8601); default: the first")
    p.add_argument("--until", type=_when, metavar="WHEN", help="before this one")
    p.add_argument("--limit", type=int, help="at most this many")
    p.add_argument("--csv", action="store_true", help="CSV with a header, not JSON lines")
    p.set_defaults(func=cmd_events)

    p = sub.add_parser("erase", help="delete all events, counts and snapshots (--yes)",
                       formatter_class=_Help)
    p.add_argument("--config", type=Path, help="TOML config: where they are")
    p.add_argument("--yes", action="store_true", help="delete; without it, list what would go")
    p.set_defaults(func=cmd_erase)

    p = sub.add_parser("demo", help="the pipeline on sample astronaut frames (workstation)",
                       formatter_class=_Help)
    _add_config_args(p, source=False)
    p.add_argument("--out", type=Path, default=Path("build/demo"), help="output folder")
    p.add_argument("--frames-only", action="store_true",
                   help="only write the sample frames (for make run / make bench)")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except (ConfigError, ModelError, StartupError, SourceError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
