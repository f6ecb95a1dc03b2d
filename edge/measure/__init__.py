"""Measuring the edge runtime, apart from the runtime itself.

- ``voc``: Pascal-VOC photos with annotated faces, and the photo split (train / eval).
- ``detection``: detection recall, precision and time per frame on those photos.
- ``evaluate``: ``python -m edge eval``, the whole pipeline on photos or face crops.
- ``bench``: ``python -m edge bench``, where a frame's time goes.
- ``tune_haar``: a parameter search for the Haar cascade.

Nothing in the Pi's run loop imports from here.
"""


class MeasureError(Exception):
    """The photos, face crops, frames or split a measurement was given can't be used; the
    message says what to give instead (``python -m edge`` exits 2 with it)."""


class Looping:
    """A source the measurement tools can read for as long as they like: a file or a folder
    starts again from its top when it runs out; a camera or stream simply goes on."""

    live = True

    def __init__(self, source):
        self.source = source

    def open(self) -> None:
        self.source.open()

    def read(self):
        frame = self.source.read()
        if frame is None and not getattr(self.source, "live", True):
            self.source.close()
            self.source.open()
            frame = self.source.read()
        if frame is None:
            raise MeasureError("the source gave no frames: give --source a folder of images, "
                               "a video or a camera that has some")
        return frame

    def close(self) -> None:
        self.source.close()
