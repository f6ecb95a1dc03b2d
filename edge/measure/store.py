"""What the event store costs: per event, on disk after a month, and to the camera loop.

    python -m edge.measure.store [--days 30] [--seconds 10] [--json FILE]

- **Write cost per event**: ``handle`` on the loop's side (appending to memory), and the
  writer thread's ``flush`` (a transaction of ``BATCH`` events, as 10 events/s gather in
  2 s), each per event.
- **Size after a month**: :func:`simulate` writes ``--days`` of a busy door through the
  store, then the file's size is read.
- **The loop's frames/s** on the demo frames, uncapped, with no store and with a store
  taking 10 extra events a second (on the wall clock), alternated three times each; the
  medians and the drop.

A benchmark: it prints what it measured (a table, and JSON with ``--json``) and asserts
nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import statistics
import sys
import tempfile
import threading
import time
from datetime import date, datetime, timedelta
from pathlib import Path

from edge.counts import Counts
from edge.sinks import FrameResult, SafeSink
from edge.sinks.store import EventStore, StoreParams
from edge.tracker import Event

BATCH = 20


# --- a month at a busy door ----------------------------------------------------------------
OPEN, CLOSE = 8, 20              # the door's hours, local time
PER_HOUR = 40                    # people an hour at the busiest (midday), fewer at the edges
UNMASKED = 0.08                  # share of people who come in unmasked
AGAIN = 0.1                      # share of those who raise a second violation (mask off again)


def simulate(path: Path, days: int, end: date | None = None, seed: int = 0,
             until: float | None = None) -> Counts:
    """Write ``days`` days (ending with ``end``, default today; nothing after ``until``) of
    a door open ``OPEN``–``CLOSE`` h into the store at ``path``, through the store: people
    arrive at random (Poisson), ``PER_HOUR`` an hour at midday tapering to half that at
    opening and closing; ``UNMASKED`` of them raise a violation and a clear 10 s later,
    ``AGAIN`` of those a second pair. Returns the counts written."""
    rng = random.Random(seed)
    store = EventStore(StoreParams(path=str(path), flush_seconds=60.0))
    end = end or date.today()
    total = Counts()
    track = 0
    for day in range(days):
        midnight = datetime.combine(end - timedelta(days=days - 1 - day), datetime.min.time())
        for hour in range(OPEN, CLOSE):
            middle = (OPEN + CLOSE) / 2
            rate = PER_HOUR * (1 - 0.5 * abs(hour + 0.5 - middle) / (middle - OPEN))
            t = (midnight + timedelta(hours=hour)).timestamp()
            stop = t + 3600
            while True:
                t += rng.expovariate(rate / 3600)
                if t >= stop or (until is not None and t >= until):
                    break
                track += 1
                unmasked = rng.random() < UNMASKED
                pairs = (1 + (rng.random() < AGAIN)) if unmasked else 0
                counted = Counts(1, int(unmasked), pairs)
                total += counted
                store.handle(_result(t, track, counted, []))
                for pair in range(pairs):
                    store.handle(_result(t + 20 * pair, track, Counts(),
                                         [_event("violation", track, t + 20 * pair)]))
                    store.handle(_result(t + 20 * pair + 10, track, Counts(),
                                         [_event("clear", track, t + 20 * pair + 10)]))
        store.flush()
    store.close()
    return total


def _event(kind: str, track: int, t: float) -> Event:
    label = "without_mask" if kind == "violation" else "with_mask"
    return Event(kind, track, label, 0.93, (200, 120, 96, 96), t)


def _result(wall: float, track: int, counted: Counts, events: list) -> FrameResult:
    return FrameResult(wall, wall, None, events=events, counted=counted)


# --- costs -------------------------------------------------------------------------------
def write_cost(folder: Path, events: int = 10_000) -> dict:
    store = EventStore(StoreParams(path=str(folder / "cost.db"), flush_seconds=60.0))
    now = time.time()
    handle_s = flush_s = 0.0
    for start in range(0, events, BATCH):
        for i in range(start, start + BATCH):
            result = _result(now + i, i, Counts(1, 0, 1), [_event("violation", i, now + i)])
            t0 = time.perf_counter()
            store.handle(result)
            handle_s += time.perf_counter() - t0
        t0 = time.perf_counter()
        store.flush()
        flush_s += time.perf_counter() - t0
    store.close()
    return {"events": events, "batch": BATCH, "handle_us_per_event": 1e6 * handle_s / events,
            "flush_us_per_event": 1e6 * flush_s / events}


def month_size(folder: Path, days: int) -> dict:
    path = folder / "month.db"
    counts = simulate(path, days)
    events = counts.violations * 2
    return {"days": days, "people": counts.people, "unmasked": counts.unmasked,
            "events": events, "bytes": path.stat().st_size}


class _TenASecond:
    """A sink in front of the store that adds 10 events a second of wall time."""

    def __init__(self, store: EventStore):
        self.store, self.sent, self.started = store, 0, time.monotonic()

    def handle(self, result) -> bool:
        due = int(10 * (time.monotonic() - self.started))
        while self.sent < due:
            self.sent += 1
            self.store.handle(_result(time.time(), self.sent, Counts(1, 1, 1),
                                      [_event("violation", self.sent, time.time())]))
        return self.store.handle(result)

    def close(self) -> None:
        self.store.close()


def loop_fps(config, folder: Path, seconds: float, rounds: int = 3) -> dict:
    from edge.pipeline import Pipeline
    from edge.sources import make_source

    fps = {"off": [], "on": []}
    written = 0
    for round_ in range(rounds):
        for mode in ("off", "on"):
            sinks = []
            if mode == "on":
                store = EventStore(StoreParams(path=str(folder / f"loop{round_}.db")))
                sinks = [SafeSink("store", lambda s=store: _TenASecond(s))]
            pipeline = Pipeline(config, sinks=sinks, source=make_source(
                dataclasses.replace(config.source, loop=True)))
            stop = threading.Event()
            runner = threading.Thread(target=pipeline.run, args=(stop,), daemon=True)
            runner.start()
            time.sleep(2.0)                                  # warm-up
            frames0, t0 = pipeline.stats.frames, time.perf_counter()
            time.sleep(seconds)
            fps[mode].append((pipeline.stats.frames - frames0) / (time.perf_counter() - t0))
            stop.set()
            runner.join(timeout=30)
            if mode == "on":
                written += store.written
    off, on = statistics.median(fps["off"]), statistics.median(fps["on"])
    return {"seconds": seconds, "rounds": rounds, "fps_without_store": off,
            "fps_with_store_10_events_s": on, "drop_percent": 100 * (off - on) / off,
            "events_written": written, "all": fps}


def table(r: dict) -> str:
    w, m, loop = r["write_cost"], r["month"], r["loop"]
    return "\n".join([
        f"write cost per event      {w['handle_us_per_event']:.1f} µs in the loop (handle), "
        f"{w['flush_us_per_event']:.1f} µs in the writer (batches of {w['batch']})",
        f"a simulated month         {m['days']} days, {m['people']:,} people, "
        f"{m['unmasked']:,} unmasked, {m['events']:,} events: {m['bytes'] / 1e6:.2f} MB",
        f"loop frames/s             {loop['fps_without_store']:.1f} without a store, "
        f"{loop['fps_with_store_10_events_s']:.1f} with 10 events/s stored "
        f"(median of {loop['rounds']} each): {loop['drop_percent']:+.1f}% drop"])


def main(argv: list[str] | None = None) -> int:
    from edge.config import load_config, with_overrides
    from edge.pipeline import with_source

    p = argparse.ArgumentParser(prog="python -m edge.measure.store", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--days", type=int, default=30, help="days of the simulated month")
    p.add_argument("--seconds", type=float, default=10.0, help="each frames/s measurement")
    p.add_argument("--source", default="build/demo/frames", help="frames for the loop")
    p.add_argument("--config", type=Path, help="TOML config laid over the defaults")
    p.add_argument("--model", help="model folder with card.json (default: models/default)")
    p.add_argument("--json", type=Path, help="write the results as JSON")
    args = p.parse_args(argv)
    config = with_overrides(load_config(args.config), model=args.model)
    config = with_source(config, kind="images", table={"path": args.source}, fps=0.0)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        results = {"write_cost": write_cost(folder), "month": month_size(folder, args.days),
                   "loop": loop_fps(config, folder, args.seconds)}
    print(table(results))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
