"""Measuring the edge runtime, apart from the runtime itself (``edge run`` imports nothing
from here).

- ``detection``: detection recall, precision and time per frame on annotated photos.
- ``evaluate``: ``python -m edge eval``, the whole pipeline on photos or face crops.
- ``zoo``: the mask zoo of ``edge eval --zoo``.
- ``bench``: ``python -m edge bench``, where a frame's time goes.
- ``compare_detectors``, ``tune_haar``: the detector table, the Haar parameter search.
- ``soak``, ``webload``: weeks in minutes; what viewers and strangers cost the loop.
- ``replay``: every box, probability and event of a folder of frames, to compare machines.

The photos and their truth come from ``facedata``; a problem with them is a
``facedata.DataError``.
"""
