"""Tracking and debounce: one bad frame raises nothing; a violation is raised once and clears."""

from __future__ import annotations

import pytest

from edge.alarm import AlarmRule
from edge.tracker import Tracker, TrackerParams

LABELS = ("with_mask", "without_mask")
RULE = AlarmRule(LABELS, ("without_mask",), ("with_mask",))
UNMASKED, MASKED = [0.05, 0.95], [0.95, 0.05]
BOX = (100, 100, 80, 80)


def tracker(**kw) -> Tracker:
    params = dict(iou=0.3, k=3, n=5, threshold=0.7, cooldown=2.0, max_age=0.5) | kw
    return Tracker(RULE, TrackerParams(**params))


def feed(tr: Tracker, probs_per_frame, t0=0.0, dt=0.1, box=BOX):
    """Feed one face per frame; return [(t, [event kinds])]."""
    out = []
    for i, probs in enumerate(probs_per_frame):
        t = t0 + i * dt
        out.append((t, [e.kind for e in tr.update(t, [box], [probs])]))
    return out


def kinds(history):
    return [k for _, ks in history for k in ks]


def test_one_bad_frame_raises_nothing():
    tr = tracker()
    assert kinds(feed(tr, [MASKED] * 5 + [UNMASKED] + [MASKED] * 5)) == []


def test_two_bad_frames_of_five_raise_nothing_three_do():
    assert kinds(feed(tracker(), [UNMASKED, MASKED, UNMASKED, MASKED, MASKED])) == []
    history = feed(tracker(), [UNMASKED, MASKED, UNMASKED, MASKED, UNMASKED])
    assert [ks for _, ks in history] == [[], [], [], [], ["violation"]]


def test_below_threshold_is_not_a_vote():
    assert kinds(feed(tracker(), [[0.35, 0.65]] * 10)) == []


def test_a_violation_is_raised_once_then_clears_after_the_cooldown():
    tr = tracker()
    history = feed(tr, [UNMASKED] * 30)           # three seconds unmasked
    assert kinds(history) == ["violation"]
    history = feed(tr, [MASKED] * 40, t0=3.0)     # mask on: evidence ends 2 frames in
    (t_clear,) = [t for t, ks in history if ks == ["clear"]]
    assert 3.0 + 2.0 <= t_clear <= 3.0 + 0.2 + 2.0 + 1e-9
    # Unmasked again after the clear: a new violation, for the same person.
    assert kinds(feed(tr, [UNMASKED] * 3, t0=7.0)) == ["violation"]
    assert len(tr.tracks) == 1 and tr.tracks[0].id == 1


def test_a_violating_person_missed_for_a_moment_is_not_a_second_alarm():
    tr = tracker()
    assert kinds(feed(tr, [UNMASKED] * 5)) == ["violation"]
    assert tr.update(1.0, [], []) == []           # the detector misses her for a second
    assert kinds(feed(tr, [UNMASKED] * 5, t0=1.5, box=(104, 98, 80, 80))) == []
    assert [t.id for t in tr.tracks] == [1]


def test_tracks_are_kept_apart_and_dropped_after_max_age():
    tr = tracker()
    left, right = (10, 10, 60, 60), (300, 10, 60, 60)
    tr.update(0.0, [left, right], [MASKED, UNMASKED])
    tr.update(0.1, [(right[0] + 4, 12, 60, 60), (left[0] + 3, 11, 60, 60)], [UNMASKED, MASKED])
    by_x = sorted(tr.tracks, key=lambda t: t.box[0])
    assert [t.id for t in by_x] == [1, 2] and by_x[0].masked and not by_x[1].masked
    assert len(tr.visible(0.1)) == 2
    tr.update(0.7, [], [])
    assert tr.tracks == []


def test_an_alarm_label_the_model_lacks_is_refused_naming_its_classes():
    with pytest.raises(ValueError, match="alarm_labels: the model has no class 'without_mask' "
                                         r"\(its classes: cat, dog\)"):
        AlarmRule(("cat", "dog"), ("without_mask",))
    with pytest.raises(ValueError, match="masked_labels: 'dog' is an alarm label too"):
        AlarmRule(("cat", "dog"), ("dog",), ("dog",))


THREE = AlarmRule(("mask_weared_incorrect", "with_mask", "without_mask"),
                  ("without_mask", "mask_weared_incorrect"), ("with_mask",))


def test_both_kinds_of_wrong_together_raise_the_alarm_named_by_the_likelier():
    tr = Tracker(THREE, TrackerParams(k=2, n=3, threshold=0.6))
    # Neither wrong class alone reaches 0.6; together they do, worn wrong the likelier.
    between = [0.35, 0.35, 0.30]
    events = [e for i in range(2) for e in tr.update(0.1 * i, [BOX], [between])]
    assert [(e.kind, e.label) for e in events] == [("violation", "mask_weared_incorrect")]
    assert events[0].confidence == pytest.approx(0.65)
    assert tr.counts.of("mask_weared_incorrect") == (1, 1) and tr.counts.of("without_mask") == (0, 0)
    masked = [0.05, 0.9, 0.05]
    assert not any(e.kind == "violation" for i in range(2, 6)
                   for e in tr.update(0.1 * i, [BOX], [masked]))
    assert tr.tracks[0].view().masked


def test_a_person_who_raises_both_kinds_is_one_unmasked_person_under_each_label():
    tr = Tracker(THREE, TrackerParams(k=1, n=1, threshold=0.5, cooldown=0.0))
    for t, probs in ((0.0, [0.8, 0.1, 0.1]), (0.1, [0.0, 1.0, 0.0]), (0.2, [0.1, 0.1, 0.8])):
        tr.update(t, [BOX], [probs])
    c = tr.counts
    assert (c.people, c.unmasked, c.violations) == (1, 1, 2)
    assert c.of("mask_weared_incorrect") == (1, 1) and c.of("without_mask") == (1, 1)


def test_an_unjudged_face_keeps_its_track_and_casts_no_vote():
    tr = tracker(k=2, n=3)
    assert tr.update(0.0, [BOX], [UNMASKED], ["small"]) == []
    (track,) = tr.tracks
    assert track.unjudged == "small" and not track.votes
    # Unjudged frames in between do not count as masked evidence, nor break the run.
    assert [e.kind for e in tr.update(0.1, [BOX], [UNMASKED])] == []
    assert tr.update(0.2, [BOX], [MASKED], ["turned"]) == []
    assert [e.kind for e in tr.update(0.3, [BOX], [UNMASKED])] == ["violation"]
    assert tr.tracks[0].id == track.id and tr.tracks[0].unjudged is None


def test_a_violation_stays_raised_while_its_person_is_seen_but_unjudged():
    tr = tracker(cooldown=0.5)
    history = feed(tr, [UNMASKED] * 3)
    assert kinds(history) == ["violation"]
    # Three seconds turned away: no clear, however long past the cooldown.
    for i in range(30):
        assert tr.update(0.3 + 0.1 * i, [BOX], [MASKED], ["turned"]) == []
    # Judged again and masked: the cooldown runs from the last unjudged sight.
    later = feed(tr, [MASKED] * 10, t0=3.3)
    assert kinds(later) == ["clear"]
    assert later[[ks for _, ks in later].index(["clear"])][0] >= 3.2 + 0.5
