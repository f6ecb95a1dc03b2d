"""Which of a model's classes raise the alarm, and how a face's probabilities decide: the rule.

A model's classes are its own (its card's ``classes``, the training set's folders). Which of
them raise a violation — the *alarm labels* — and which count as *masked* (the green LED, a
green box) are settings: ``[tracker] alarm_labels`` and ``masked_labels``, or, left empty,
the model card's (``edge.shared.card.alarm_labels``). The bundled model's card makes both kinds
of wrong alarms: ``without_mask`` and ``mask_weared_incorrect``.

A face votes "violation" when its alarm labels' probabilities *together* reach the
tracker's threshold: ``p(without_mask) + p(mask_weared_incorrect)`` for the bundled model,
``p(without_mask)`` alone for a two-class one, which therefore runs exactly as before. A
face between "no mask" and "mask under the nose" is an alarm either way, and one threshold
is all cross-validation has to choose. The violation names the alarm label most probable in
the frame that raised it.

>>> rule = AlarmRule(("mask_weared_incorrect", "with_mask", "without_mask"),
...                  ("without_mask", "mask_weared_incorrect"), ("with_mask",))
>>> round(rule.p([0.35, 0.4, 0.25]), 6), rule.label([0.35, 0.4, 0.25])
(0.6, 'mask_weared_incorrect')
>>> words("mask_weared_incorrect")
'mask worn wrong'
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# How the dataset's class names read on the page and in Home Assistant; any other label
# reads as itself, underscores as spaces.
WORDS = {"with_mask": "mask on", "without_mask": "no mask",
         "mask_weared_incorrect": "mask worn wrong"}


def words(label: str) -> str:
    """A class name as a person reads it."""
    return WORDS.get(label, label.replace("_", " "))


@dataclass(frozen=True)
class AlarmRule:
    """``labels``: the model's classes in its output order; ``alarm``: those that raise a
    violation; ``masked``: those that count as wearing a mask."""

    labels: tuple[str, ...]
    alarm: tuple[str, ...]
    masked: tuple[str, ...] = ()

    def __post_init__(self):
        for key, chosen in (("alarm_labels", self.alarm), ("masked_labels", self.masked)):
            unknown = [label for label in chosen if label not in self.labels]
            if unknown:
                raise ValueError(f"{key}: the model has no class {unknown[0]!r} (its classes: "
                                 f"{', '.join(self.labels)})")
        if not self.alarm:
            raise ValueError(f"alarm_labels: none given, and the model's card names none (its "
                             f"classes: {', '.join(self.labels)}); say which raise the alarm")
        both = set(self.alarm) & set(self.masked)
        if both:
            raise ValueError(f"masked_labels: {sorted(both)[0]!r} is an alarm label too")
        object.__setattr__(self, "_index", np.array([self.labels.index(a) for a in self.alarm]))

    def p(self, probs) -> float:
        """The probability that this face is an alarm: its alarm labels' summed."""
        return float(np.asarray(probs, np.float32)[self._index].sum())

    def label(self, probs) -> str:
        """The alarm label this face most probably is."""
        return self.alarm[int(np.argmax(np.asarray(probs, np.float32)[self._index]))]

    def is_masked(self, label: str) -> bool:
        return label in self.masked
