"""The doorway's zone: the part of the picture where faces are judged, and the masks where
motion doesn't count.

``[zone] polygon`` is a list of ``[x, y]`` points in fractions of the frame (0..1, so it
holds whatever the camera's resolution). A face counts when the centre of its box lies
inside; outside it — a poster beside the door, a TV, the street behind — a face is tracked
but not judged (``unjudged: outside``). ``masks`` are polygons where the motion gate ignores
movement. Both are drawn on annotated frames and the status page's live view, so that they
can be set while looking at the picture. ``check-config`` refuses a polygon with fewer than
three points, a point outside [0, 1], or edges that cross.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge.shared.params import Params, param

WHOLE_FRAME = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]


def polygon_problem(points) -> str | None:
    """What makes ``points`` unusable as a polygon in frame fractions, or None."""
    if not isinstance(points, list) or len(points) < 3:
        return "needs at least 3 [x, y] points"
    for point in points:
        if not (isinstance(point, list) and len(point) == 2
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in point)):
            return f"each point is [x, y] with two numbers, got {point!r}"
        if not all(0.0 <= v <= 1.0 for v in point):
            return f"points are fractions of the frame, 0 to 1, got {point!r}"
    edges = [(points[i], points[(i + 1) % len(points)]) for i in range(len(points))]
    for i, (a, b) in enumerate(edges):
        for j, (c, d) in enumerate(edges):
            if j <= i + 1 or (i == 0 and j == len(edges) - 1):
                continue  # itself and its neighbours share a corner
            if _cross(a, b, c, d):
                return f"its edges cross ({a}-{b} and {c}-{d}): not a simple polygon"
    return None


def _cross(a, b, c, d) -> bool:
    """Whether segments ab and cd properly intersect (touching counts)."""
    def orient(p, q, r):
        value = (q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0])
        return (value > 1e-12) - (value < -1e-12)

    def on(p, q, r):
        return min(p[0], q[0]) <= r[0] <= max(p[0], q[0]) and \
            min(p[1], q[1]) <= r[1] <= max(p[1], q[1])

    o1, o2, o3, o4 = orient(a, b, c), orient(a, b, d), orient(c, d, a), orient(c, d, b)
    if o1 != o2 and o3 != o4:
        return True
    return any(o == 0 and on(p, q, r) for o, p, q, r in
               ((o1, a, b, c), (o2, a, b, d), (o3, c, d, a), (o4, c, d, b)))


@dataclass(frozen=True)
class ZoneParams(Params):
    """where faces are judged, and where motion doesn't count"""

    polygon: list = param(factory=lambda: [list(p) for p in WHOLE_FRAME],
                          help="[x, y] points, fractions of the frame; a face counts when its "
                               "box's centre lies inside")
    masks: list = param(factory=list, help="polygons where motion is ignored (a TV, a street)")

    @classmethod
    def problems(cls, values):
        found = []
        if "polygon" in values:
            problem = polygon_problem(values["polygon"])
            if problem:
                found.append(("polygon", problem))
        for i, mask in enumerate(values.get("masks", [])):
            problem = polygon_problem(mask)
            if problem:
                found.append((f"masks[{i}]", problem))
        return found

    @property
    def whole_frame(self) -> bool:
        return [list(map(float, p)) for p in self.polygon] == WHOLE_FRAME


class Zone:
    """The zone and masks in a frame's pixels (built once per frame size)."""

    def __init__(self, params: ZoneParams, frame_shape: tuple[int, ...]):
        import cv2
        import numpy as np

        height, width = frame_shape[:2]
        scale = np.array([width, height], np.float32)
        self.polygon = (np.array(params.polygon, np.float32) * scale).astype(np.int32)
        self.masks = [(np.array(m, np.float32) * scale).astype(np.int32) for m in params.masks]
        self.everywhere = params.whole_frame
        self.motion_mask = None
        if self.masks:
            mask = np.zeros((height, width), np.uint8)
            cv2.fillPoly(mask, self.masks, 1)
            self.motion_mask = mask.astype(bool)
        self._test = cv2.pointPolygonTest

    def contains(self, box) -> bool:
        """Whether the centre of ``box`` (x, y, w, h) lies in the zone (edges count)."""
        if self.everywhere:
            return True
        x, y, w, h = box
        return self._test(self.polygon, (x + w / 2.0, y + h / 2.0), False) >= 0

    def overlays(self) -> tuple:
        """What annotated frames draw: ``("zone", points)`` unless the zone is the whole
        frame, and ``("mask", points)`` for each mask."""
        shown = [] if self.everywhere else [("zone", tuple(map(tuple, self.polygon.tolist())))]
        return tuple(shown + [("mask", tuple(map(tuple, m.tolist()))) for m in self.masks])
