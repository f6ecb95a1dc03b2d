"""Measuring the edge runtime, apart from the runtime itself.

- ``voc``: Pascal-VOC photos with annotated faces, and the photo split (train / eval).
- ``detection``: detection recall, precision and time per frame on those photos.
- ``evaluate``: ``python -m edge eval``, the whole pipeline on photos or face crops.
- ``bench``: ``python -m edge bench``, where a frame's time goes.
- ``tune_haar``: a parameter search for the Haar cascade.
- ``zoo``: the mask zoo of ``edge eval --zoo``.
- ``soak``, ``webload``, ``replay``, ``compare_detectors``, ``split``: see each.

Nothing in the Pi's run loop imports from here.
"""


class MeasureError(Exception):
    """The photos, face crops, frames or split a measurement was given can't be used; the
    message says what to give instead (``python -m edge`` exits 2 with it)."""
