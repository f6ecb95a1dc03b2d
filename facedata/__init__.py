"""Faces and photos with their truth, for training and for measuring: below both ``train``
and ``edge.measure``, above the edge runtime.

- ``voc``: Pascal-VOC photos with annotated faces, shown as a camera would frame them;
- ``split``: the photo split (train / held out) and cross-validation folds, by photo;
- ``scoring``: detections matched with true faces, and the figures made of them;
- ``masks``: put a face mask of any kind, colour or pattern on an unmasked face.
"""


class DataError(Exception):
    """The photos, face crops, frames or split given can't be used; the message says what to
    give instead (the commands exit 2 with it)."""
