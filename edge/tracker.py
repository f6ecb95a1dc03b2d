"""Follow faces across frames and turn noisy per-frame labels into debounced events.

A classifier that is right 95% of the time is wrong about someone every few frames, and a
buzzer that sounds on each of those mistakes gets unplugged. So alarms are raised about
*people*, not frames:

* **association** — each detected face continues the track whose last box it overlaps
  most (IoU at least ``iou``, one face per track); a face that continues none starts a
  new track.
* **debounce** — a track keeps a vote for each of its last ``n`` observations: "an alarm
  with probability ≥ ``threshold``", by the alarm rule (``edge.alarm``: the alarm labels'
  probabilities together — no mask, or a mask worn wrong). When ``k`` of them say so, the
  track raises a ``violation`` event — once — labelled with the alarm label most probable
  in that frame.
* **cooldown** — the violation stays raised (no repeat alarm) until the evidence has been
  absent for ``cooldown`` seconds, whether the person put a mask on or walked away; then a
  ``clear`` event. A violating track is kept that long even unseen, so a person the
  detector misses for a moment and finds again is not a second alarm.
* tracks without a violation are dropped after ``max_age`` seconds unseen.
* **unjudged** faces — ones the quality gate (``edge.quality``) held back from the
  classifier: too small, blurred, turned or cut by the frame, outside the zone — continue
  or start a track but cast no vote. They neither raise a violation nor let one clear: a
  violating person who is seen but can't be judged is still the violating person.
* **still faces** — a face whose box has not moved (IoU ≥ ``STILL_IOU`` with where it
  last moved) for ``static_seconds`` is a poster, a photo on a shelf, a TV: its violation
  clears, it casts no votes and raises nothing while it stays put, and counts again as soon
  as it moves. One log line says so when it starts. So it raises at most one alarm.

It also counts people (``counts``: see ``edge.counts`` for what counts as a person).

Times are seconds on any monotonic clock; the tracker never reads a clock itself, which
keeps it deterministic under test.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import MISSING, dataclass, field, fields, make_dataclass

import numpy as np

from edge.alarm import AlarmRule
from edge.counts import Counts
from edge.shared.boxes import iou, match
from edge.shared.params import Params, param

log = logging.getLogger(__name__)
# A box at least this close (IoU) to where it last moved has not moved: detector jitter on a
# still face stays above it.
STILL_IOU = 0.8


# A field of Track marked so is also a field of TrackView: what a frame's result shows.
SHOWN = {"shown": True}


@dataclass
class Track:
    """One person, as far as the tracker can tell."""

    id: int = field(metadata=SHOWN)
    box: tuple[int, int, int, int] = field(metadata=SHOWN)  # x, y, w, h, latest detection
    label: str = field(metadata=SHOWN)        # the classifier's top class, latest frame
    confidence: float = field(metadata=SHOWN)   # its probability
    p_alarm: float = field(metadata=SHOWN)    # the alarm's probability (edge.alarm), latest
    last_seen: float = 0.0
    votes: deque = field(default_factory=deque)
    violating: bool = field(default=False, metadata=SHOWN)
    # Why the latest face was not judged (None: judged).
    unjudged: str | None = field(default=None, metadata=SHOWN)
    masked: bool = field(default=False, metadata=SHOWN)   # its top class is a masked label
    anchor: tuple | None = None             # the box where it last moved
    still_since: float = 0.0
    static: bool = False                    # still so long it is taken for a picture
    evidence_at: float = float("-inf")      # last time k of n votes said "violation"
    judged: int = 0                         # observations the classifier judged
    counted: bool = False                   # counted as a person
    unmasked: bool = False                  # counted as an unmasked person
    alarmed: set = field(default_factory=set)   # alarm labels it has been counted under
    alarm_label: str = ""                   # the alarm label most probable, latest frame

    def view(self) -> TrackView:
        """This track as it stands now, frozen: what a frame's result shows of it."""
        return TrackView(**{f.name: getattr(self, f.name) for f in fields(TrackView)})


TrackView = make_dataclass(
    "TrackView", [(f.name, f.type) if f.default is MISSING else (f.name, f.type, f.default)
                  for f in fields(Track) if f.metadata.get("shown")],
    frozen=True)
TrackView.__module__ = __name__
TrackView.__doc__ = """A track as one frame saw it: the fields of :class:`Track` marked
``SHOWN``. Sinks on other threads (the web page, MQTT) read these while the tracker moves
on: they never change."""


@dataclass(frozen=True)
class Event:
    """A change worth telling someone about: ``violation`` (``label`` the alarm label that
    raised it, ``confidence`` the alarm's probability) or ``clear`` (``label`` the track's
    top class now, ``confidence`` its probability)."""

    kind: str
    track_id: int
    label: str
    confidence: float
    box: tuple[int, int, int, int]
    t: float


@dataclass(frozen=True)
class TrackerParams(Params):
    """alarms about people, not frames: K of N frames, a threshold, a cooldown"""

    iou: float = param(0.3, gt=0.0, max=1.0,
                       help="a face continues a track when their boxes overlap this much")
    k: int = param(3, min=1, max=1000, help="a violation needs K …",
                   note="3 of 5: the best person-level F1 in cross-validation's 8-frame "
                        "pseudo-videos (train.cv), and one frame quicker than 4 of 5")
    n: int = param(5, min=1, max=1000,
                   help="… of a person's last N frames to be an alarm …")
    threshold: float = param(0.47, min=0.0, max=1.0, help="… with at least this probability",
                             note="chosen by 5-fold cross-validation by photo over the "
                                  "training photos (train.cv, the bundled model's recipe): "
                                  "the best without_mask recall (0.875) at a precision of at "
                                  "least 0.95 (0.961), with [judge] min_score; see its card")
    cooldown: float = param(5.0, min=0.0, max=86400.0,
                            help="seconds without that evidence before a violation clears")
    max_age: float = param(1.0, min=0.0, max=3600.0,
                           help="seconds a track without a violation survives unseen")
    static_seconds: float = param(30.0, min=0.0, max=86400.0,
                                  help="a face that hasn't moved for this long (a poster) "
                                       "raises nothing more until it moves; 0 = never")
    alarm_labels: list = param(factory=list,
                               help="the model's classes that raise a violation; empty: those "
                                    "its card names (the bundled model's: without_mask and "
                                    "mask_weared_incorrect)")
    masked_labels: list = param(factory=list,
                                help="the classes that count as masked (the green light); "
                                     "empty: those its card names (with_mask)")

    @classmethod
    def problems(cls, values):
        k, n = values.get("k"), values.get("n")
        if k is not None and n is not None and k > n:
            return [("k", f"must be at most tracker.n ({n}), got {k}")]
        return []


class Tracker:
    """IoU tracking with k-of-n debounce; see the module docstring for the rules.

    >>> rule = AlarmRule(("with_mask", "without_mask"), ("without_mask",), ("with_mask",))
    >>> tr = Tracker(rule, TrackerParams(k=2, n=3))
    >>> tr.update(0.0, [(10, 10, 50, 50)], [[0.1, 0.9]])
    []
    >>> [(e.kind, e.label) for e in tr.update(0.1, [(12, 10, 50, 50)], [[0.2, 0.8]])]
    [('violation', 'without_mask')]
    """

    def __init__(self, rule: AlarmRule, params: TrackerParams = TrackerParams()):
        self.rule = rule
        self.labels = rule.labels
        self.params = params
        self.tracks: list[Track] = []
        self.counts = Counts()                  # people, unmasked people, violations, so far
        self._next_id = 1

    def update(self, t: float, boxes: list[tuple[int, int, int, int]],
               probs: np.ndarray | list, unjudged: list[str | None] | None = None
               ) -> list[Event]:
        """Feed one frame's face boxes and class probabilities; return the events it causes.

        ``unjudged``, where given, holds for each box None or the reason it was not
        classified; such a box's row of ``probs`` is ignored."""
        probs = np.asarray(probs, dtype=np.float32).reshape(len(boxes), len(self.labels))
        unjudged = unjudged or [None] * len(boxes)
        pairs = match(list(boxes), [tr.box for tr in self.tracks], self.params.iou)
        continued = {face: self.tracks[track] for face, track in pairs}
        events = []
        for i, box in enumerate(boxes):
            track = continued.get(i)
            if track is None:
                track = Track(self._next_id, box, "", 0.0, 0.0, t, deque(maxlen=self.params.n),
                              anchor=tuple(box), still_since=t)
                self._next_id += 1
                self.tracks.append(track)
            if self._still(track, t, tuple(box)):
                events += self._hold(track, t)
                continue
            if unjudged[i] is not None:
                track.box, track.last_seen, track.unjudged = tuple(box), t, unjudged[i]
                if track.violating:
                    track.evidence_at = t
                continue
            self._observe(track, t, tuple(box), probs[i])
            raised = False
            if sum(track.votes) >= self.params.k:
                track.evidence_at = t
                if not track.violating:
                    track.violating = raised = True
                    events.append(Event("violation", track.id, track.alarm_label,
                                        track.p_alarm, track.box, t))
            self._count(track, raised)
        kept = []
        for track in self.tracks:
            if track.violating and t - track.evidence_at >= self.params.cooldown:
                track.violating = False
                events.append(self._event("clear", track, t))
            if track.violating or t - track.last_seen <= self.params.max_age:
                kept.append(track)
        self.tracks = kept
        return events

    def _count(self, track: Track, raised: bool) -> None:
        """Count the track as a person once judged ``k`` times or violating; as unmasked
        once violating; and the violation it ``raised`` now, if it did, under its label."""
        label = track.alarm_label if raised else None
        fresh = Counts(
            people=int(not track.counted and (track.judged >= self.params.k or track.violating)),
            unmasked=int(track.violating and not track.unmasked),
            violations=int(raised),
            labels=((label, int(label not in track.alarmed), 1),) if raised else ())
        if fresh:
            track.counted = track.counted or bool(fresh.people)
            track.unmasked = track.unmasked or bool(fresh.unmasked)
            if raised:
                track.alarmed.add(label)
            self.counts += fresh

    def _still(self, track: Track, t: float, box) -> bool:
        """Whether the track is a still face now (its box recorded either way)."""
        track.box, track.last_seen = box, t
        if iou(box, track.anchor) < STILL_IOU:
            if track.static:
                log.info("track %d moved: it counts again", track.id)
            track.anchor, track.still_since, track.static = box, t, False
        elif (self.params.static_seconds and not track.static
              and t - track.still_since >= self.params.static_seconds):
            track.static = True
            log.info("track %d has not moved for %gs: a poster or a photo? It raises nothing "
                     "while it stays put", track.id, self.params.static_seconds)
        return track.static

    def _hold(self, track: Track, t: float) -> list[Event]:
        """A still face's turn: its violation, if any, clears; it votes for nothing."""
        track.unjudged, track.votes = "still", deque(maxlen=self.params.n)
        if track.violating:
            track.violating = False
            return [self._event("clear", track, t)]
        return []

    def visible(self, t: float) -> tuple[TrackView, ...]:
        """The tracks seen in the frame at time ``t``, frozen as they are now."""
        return tuple(tr.view() for tr in self.tracks if tr.last_seen == t)

    def _observe(self, track: Track, t: float, box, p: np.ndarray) -> None:
        top = int(np.argmax(p))
        track.box, track.last_seen, track.unjudged = box, t, None
        track.label, track.confidence = self.labels[top], float(p[top])
        track.masked = self.rule.is_masked(track.label)
        track.p_alarm, track.alarm_label = self.rule.p(p), self.rule.label(p)
        track.votes.append(track.p_alarm >= self.params.threshold)
        track.judged += 1

    @staticmethod
    def _event(kind: str, track: Track, t: float) -> Event:
        return Event(kind, track.id, track.label, track.confidence, track.box, t)
