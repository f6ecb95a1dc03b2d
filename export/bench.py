"""Latency of each published format of a model, at several thread counts.

    python -m export.bench --model models/NAME

Median of ``--runs`` invokes after warm-up, one face at a time, through the edge
classifier. Prints a table and writes JSON (``models/NAME/bench.json`` by default).
A benchmark: figures to read, never an assertion.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import numpy as np

from edge.shared.card import ModelError, load_card
from edge.shared.classifier import Classifier
from export.parity import median_latency_ms


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m export.bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, type=Path, help="model folder with card.json")
    p.add_argument("--threads", default="1,2,4")
    p.add_argument("--runs", type=int, default=50)
    p.add_argument("--json", type=Path, default=None, help="default: MODEL/bench.json")
    args = p.parse_args(argv)
    threads = [int(t) for t in args.threads.split(",")]
    try:
        card = load_card(args.model)
    except ModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    face = np.random.default_rng(0).integers(0, 256, (card["input"]["size"],) * 2 + (3,), dtype=np.uint8)
    results = []
    for fmt, entry in card["formats"].items():
        if not entry["accepted"]:
            continue
        row = {"format": fmt, "bytes": entry["bytes"]}
        for n in threads:
            clf = Classifier(args.model, fmt=fmt, threads=n)
            row[f"ms_{n}_threads"] = round(median_latency_ms(clf, face, runs=args.runs), 3)
        row["runtime"] = clf.runtime
        results.append(row)
    doc = {"model": card["name"], "input_size": card["input"]["size"], "runs": args.runs,
           "machine": f"{platform.machine()} {platform.processor() or ''}".strip(), "results": results}
    out = args.json or args.model / "bench.json"
    out.write_text(json.dumps(doc, indent=1))
    print(f"{'format':8s} {'MB':>7s} " + " ".join(f"{f'{n} thr ms':>9s}" for n in threads))
    for row in results:
        print(f"{row['format']:8s} {row['bytes'] / 1e6:7.2f} "
              + " ".join(f"{row[f'ms_{n}_threads']:9.2f}" for n in threads))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
