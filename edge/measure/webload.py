"""``python -m edge.measure.webload``: what do viewers of the live view cost the camera loop?

    python -m edge.measure.webload [--clients 20] [--seconds 30] [--fps 0] [--json FILE]
    python -m edge.measure.webload --slow 1000 [--seconds 30]

Runs the pipeline with the status page on 127.0.0.1 over the looping demo frames (or
``--source``), at ``--fps`` (0: as fast as it goes, the worst case for contention; 10: the
shipped camera cap). It counts the loop's frames/s for ``--seconds`` with nobody watching,
then again while ``--clients`` clients each read ``/stream.mjpg`` as fast as they can, and
reports the drop, and what the clients received. With ``--slow N`` the second window has
N slow clients instead: each opens a connection and sends a header byte a second, never
finishing (a slowloris), opened again when the server cuts it off; reported with the
server's threads. A benchmark: it prints what it measured.
"""

from __future__ import annotations

import argparse
import dataclasses
import http.client
import json
import logging
import os
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

from edge.config import load_config, with_overrides
from edge.pipeline import Pipeline
from edge.sources import make_source


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def viewer(port: int, stop: threading.Event, counts: dict, index: int) -> None:
    """Read the MJPEG stream until ``stop``; count its parts and bytes."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/stream.mjpg")
    response = conn.getresponse()
    received = parts = 0
    while not stop.is_set():
        chunk = response.read1(65536)
        if not chunk:
            break
        received += len(chunk)
        parts += chunk.count(b"Content-Type: image/jpeg")
    conn.close()
    counts[index] = {"bytes": received, "frames": parts}


def slow_clients(port: int, count: int, stop, opened) -> None:
    """Keep ``count`` connections trickling a request line until ``stop``, a byte a second
    each; one cut off (or refused while the server is full) is opened again."""
    def connect():
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        with opened.get_lock():
            opened.value += 1
        return s

    socks = [connect() for _ in range(count)]
    while not stop.wait(1.0):
        for i, s in enumerate(socks):
            try:
                s.send(b"G")
            except OSError:
                s.close()
                socks[i] = connect()
    for s in socks:
        s.close()


def sample_threads(stop: threading.Event, counts: list) -> None:
    while not stop.wait(0.5):
        counts.append(web_threads())


def web_threads() -> int:
    """The server's threads: its accept loop, its reaper, one per connection served."""
    return sum(1 for t in threading.enumerate()
               if t.name.startswith("web") or "process_request_thread" in t.name)


def loop_fps(pipeline: Pipeline, seconds: float) -> float:
    start_frames, start = pipeline.stats.frames, time.perf_counter()
    time.sleep(seconds)
    return (pipeline.stats.frames - start_frames) / (time.perf_counter() - start)


def measure(config, clients: int, seconds: float, slow: int = 0) -> dict:
    port = config.web.port
    pipeline = Pipeline(config, source=make_source(dataclasses.replace(config.source, loop=True)),
                        sinks=[])
    stop_loop = threading.Event()
    runner = threading.Thread(target=pipeline.run, args=(stop_loop,), daemon=True)
    runner.start()
    try:
        time.sleep(3.0)  # warm-up: the interpreter and the detector settle
        alone = loop_fps(pipeline, seconds)
        stop_viewers, counts, opened, threads = threading.Event(), {}, [], []
        if slow:
            # Another process: the load must not share the loop's interpreter lock.
            import multiprocessing
            stop_viewers, opened = multiprocessing.Event(), multiprocessing.Value("i", 0)
            viewers = [multiprocessing.Process(target=slow_clients, args=(port, slow,
                                                                          stop_viewers, opened),
                                               daemon=True)]
        else:
            viewers = [threading.Thread(target=viewer, args=(port, stop_viewers, counts, i),
                                        daemon=True) for i in range(clients)]
        for thread in viewers:
            thread.start()
        time.sleep(1.0)
        sampling = threading.Event()
        threading.Thread(target=sample_threads, args=(sampling, threads), daemon=True).start()
        watched = loop_fps(pipeline, seconds)
        sampling.set()
        stop_viewers.set()
        for thread in viewers:
            thread.join(timeout=15)
    finally:
        stop_loop.set()
        runner.join(timeout=15)
    if slow:
        return {"slow_clients": slow, "connections_opened": opened.value, "seconds": seconds,
                "fps_cap": config.source.fps, "loop_fps_alone": round(alone, 2),
                "loop_fps_with_slow_clients": round(watched, 2),
                "drop_percent": round(100.0 * (alone - watched) / alone, 1) if alone else None,
                "web_threads_peak": max(threads, default=0),
                "connections_refused_full": pipeline.web.httpd.refused,
                "detector": config.detector.name, "cpus": os.cpu_count()}
    frames = [c["frames"] for c in counts.values()]
    return {
        "clients": clients, "seconds": seconds, "fps_cap": config.source.fps,
        "stream_fps_cap": config.web.stream_fps, "loop_fps_alone": round(alone, 2),
        "loop_fps_watched": round(watched, 2),
        "drop_percent": round(100.0 * (alone - watched) / alone, 1) if alone else None,
        "viewers_connected": len(counts),
        "frames_per_viewer_per_second": round(sum(frames) / max(len(frames), 1)
                                              / (seconds + 1.0), 2),
        "megabytes_sent": round(sum(c["bytes"] for c in counts.values()) / 1e6, 1),
        "detector": config.detector.name, "cpus": os.cpu_count(),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m edge.measure.webload", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clients", type=int, default=20)
    p.add_argument("--slow", type=int, default=0, help="slow clients instead of viewers")
    p.add_argument("--seconds", type=float, default=30.0, help="each of the two windows")
    p.add_argument("--fps", type=float, default=0.0, help="the loop's cap (0: none)")
    p.add_argument("--source", help="a folder of images or a video (default: demo frames)")
    p.add_argument("--model")
    p.add_argument("--detector")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    with tempfile.TemporaryDirectory(prefix="maskwatch-webload-") as tmp:
        source = args.source
        if source is None:
            from edge.samples import write_frames
            source = str(Path(tmp) / "frames")
            write_frames(Path(source))
        config = with_overrides(load_config(None), source=source, model=args.model,
                                detector=args.detector)
        config = dataclasses.replace(
            config, source=dataclasses.replace(config.source, fps=args.fps),
            web=dataclasses.replace(config.web, enabled=True, port=free_port()))
        result = measure(config, args.clients, args.seconds, args.slow)
    cap = f"capped at {args.fps:g}" if args.fps else "uncapped"
    if args.slow:
        print(f"loop ({cap}, {result['detector']}): {result['loop_fps_alone']} frames/s alone, "
              f"{result['loop_fps_with_slow_clients']} with {args.slow} slow clients "
              f"({result['drop_percent']}% drop); web threads at most "
              f"{result['web_threads_peak']}; {result['connections_opened']} connections "
              f"opened, {result['connections_refused_full']} turned away while full")
    else:
            print(f"loop ({cap}, {result['detector']}): {result['loop_fps_alone']} frames/s "
              f"alone, {result['loop_fps_watched']} with {result['viewers_connected']} viewers "
              f"({result['drop_percent']}% drop); each viewer got "
              f"{result['frames_per_viewer_per_second']} frames/s, "
              f"{result['megabytes_sent']} MB sent in all")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
