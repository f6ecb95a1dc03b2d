"""Boxes as ``(x, y, w, h)`` in frame pixels: overlap, and one-to-one matching by it.

The tracker matches faces to tracks with these, and the measurement tools match
detections to annotated faces with the very same rule.
"""

from __future__ import annotations

Box = tuple[int, int, int, int]


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes; 0 when either is empty."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    iw = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    ih = max(0, min(ay + ah, by + bh) - max(ay, by))
    inter = iw * ih
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


def match(pred: list[Box], truth: list[Box], threshold: float = 0.5) -> list[tuple[int, int]]:
    """Greedy one-to-one matching, best IoU first: ``[(pred_index, truth_index), ...]``."""
    pairs = sorted(((iou(p, t), i, j) for i, p in enumerate(pred) for j, t in enumerate(truth)),
                   reverse=True)
    used_p, used_t, matches = set(), set(), []
    for score, i, j in pairs:
        if score < threshold:
            break
        if i not in used_p and j not in used_t:
            used_p.add(i)
            used_t.add(j)
            matches.append((i, j))
    return matches
