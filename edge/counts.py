"""People counted at the door: how many were judged, how many raised an alarm, and of which kind.

The tracker (``edge.tracker``) counts people, not frames:

- a **person** is a track that has been judged ``k`` times (enough votes for the tracker
  to decide either way) or that raised a violation; a face seen once, or only ever
  unjudged (too small, turned away, outside the zone), is nobody yet;
- an **unmasked** person is a track that raised at least one violation, of any alarm
  label ("no mask" or "mask worn wrong", ``edge.alarm``);
- **violations** are the violation events (a person who puts the mask on and takes it off
  again is one unmasked person, two violations);
- **by label**, for each alarm label: the people who raised a violation of that label, and
  those violations. A person who pulls the mask under the nose and later off altogether is
  one unmasked person, counted under both labels.

A person who stays in view is counted once. One who leaves and comes back after the
tracker has forgotten them (``tracker.max_age`` seconds unseen, or ``cooldown`` after a
violation) is a new track, and is counted again.

:class:`Tally` turns the tracker's running totals into what each frame's result carries:
this frame's increments (the event store adds them to its per-minute counters) and today's
totals (MQTT's sensors, the status page), which start again with each local calendar date
and, given the event store's figures at start, survive a restart.

A day is a local calendar date (:func:`local_day`), and it starts at its first local instant
(:func:`day_start`): midnight, or 01:00 where the clocks skip midnight (Chile's DST starts
at 24:00). The tally and the event store's days (``edge.sinks.store.History``) both use
these two, so a restart on such a day goes on from the stored counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime


def local_day(wall: float) -> date:
    """The local calendar date at wall-clock time ``wall`` (seconds since 1970)."""
    return datetime.fromtimestamp(wall).date()


def day_start(day: date) -> datetime:
    """The first local instant of the date ``day``, as an aware datetime.

    >>> day_start(date(2026, 12, 1)).time()
    datetime.time(0, 0)

    Not ``datetime.combine(day, 00:00)``: where 00:00 is skipped, that names a time that
    doesn't exist, which the C library puts on either side of the gap (in Chile, 23:00 the
    day before). So: the first second whose local date is ``day``, found by bisection in
    the two days around that guess."""
    guess = int(datetime.combine(day, datetime.min.time()).timestamp())
    before, after = guess - 86400, guess + 86400     # local_day(before) < day <= local_day(after)
    while after - before > 1:
        middle = (before + after) // 2
        if local_day(middle) < day:
            before = middle
        else:
            after = middle
    return datetime.fromtimestamp(after).astimezone()


@dataclass(frozen=True)
class Counts:
    """People, unmasked people and violations; ``labels`` the same per alarm label, as
    sorted ``(label, people, violations)`` rows (a tuple: counts never change once made).

    >>> Counts(2, 1, 1, (("without_mask", 1, 1),)) + Counts(1, 1, 1, (("mask_weared_incorrect", 1, 1),))
    Counts(people=3, unmasked=2, violations=2, labels=(('mask_weared_incorrect', 1, 1), ('without_mask', 1, 1)))
    """

    people: int = 0
    unmasked: int = 0
    violations: int = 0
    labels: tuple[tuple[str, int, int], ...] = ()

    def __add__(self, other: Counts) -> Counts:
        return self._combine(other, 1)

    def __sub__(self, other: Counts) -> Counts:
        return self._combine(other, -1)

    def _combine(self, other: Counts, sign: int) -> Counts:
        rows = {label: [people, violations] for label, people, violations in self.labels}
        for label, people, violations in other.labels:
            row = rows.setdefault(label, [0, 0])
            row[0] += sign * people
            row[1] += sign * violations
        return Counts(self.people + sign * other.people, self.unmasked + sign * other.unmasked,
                      self.violations + sign * other.violations,
                      tuple((label, p, v) for label, (p, v) in sorted(rows.items()) if p or v))

    def __bool__(self) -> bool:
        return bool(self.people or self.unmasked or self.violations)

    def of(self, label: str) -> tuple[int, int]:
        """``(people, violations)`` of the alarm label ``label``."""
        return next(((p, v) for name, p, v in self.labels if name == label), (0, 0))

    @property
    def compliance(self) -> float | None:
        """Percent of the people who were not unmasked; None before the first person."""
        if not self.people:
            return None
        return round(100.0 * (self.people - self.unmasked) / self.people, 1)


@dataclass(frozen=True)
class Today:
    day: date
    counts: Counts = Counts()


class Tally:
    """Today's counts, from the tracker's totals frame by frame.

    >>> from datetime import datetime
    >>> tally = Tally(Today(date(2026, 12, 1), Counts(40, 3, 4)))
    >>> noon = datetime(2026, 12, 1, 12).timestamp()
    >>> tally.step(noon, Counts(1, 1, 1))
    (Counts(people=1, unmasked=1, violations=1, labels=()), Today(day=datetime.date(2026, 12, 1), counts=Counts(people=41, unmasked=4, violations=5, labels=())))
    >>> tally.step(noon + 86400, Counts(2, 1, 1))[1].counts     # the next day
    Counts(people=1, unmasked=0, violations=0, labels=())
    """

    def __init__(self, seed: Today | None = None):
        self._today = seed
        self._total = Counts()

    def step(self, wall: float, total: Counts) -> tuple[Counts, Today]:
        """The tracker's ``total`` counts at wall-clock time ``wall``: (what this frame
        added, today's counts)."""
        added = total - self._total
        self._total = total
        day = local_day(wall)
        if self._today is None or self._today.day != day:
            self._today = Today(day)
        if added:
            self._today = Today(day, self._today.counts + added)
        return added, self._today
