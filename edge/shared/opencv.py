"""The OpenCV calls that differ between the versions a Pi gets, in one place.

On Bookworm the installer keeps apt's numpy 1.24 (picamera2 is built against it), and pip
then resolves opencv-python-headless 4.11, the last release built for numpy 1.x; Trixie and
a workstation get 4.12 or newer. The runtime uses only what 4.11 has, and where a name
moved between them it is looked up here, by what the module actually holds (not by its
version number). ``make test`` runs the edge tests on the oldest versions
(``tests/pins``), so a call 4.11 lacks fails there first.
"""

from __future__ import annotations

import cv2

# OpenCV's log levels (cv::utils::logging::LogLevel): the same numbers in every 4.x.
LOG_LEVEL_ERROR = 2


def log_errors_only() -> None:
    """OpenCV's own log: errors only. A broken file is then one line of ours (the image
    reader's reason), not OpenCV's warnings as well. 4.12 and later have
    ``cv2.utils.logging.setLogLevel``; 4.11 has only ``cv2.setLogLevel``."""
    logging = getattr(getattr(cv2, "utils", None), "logging", None)
    if logging is not None:
        logging.setLogLevel(LOG_LEVEL_ERROR)
    else:
        cv2.setLogLevel(LOG_LEVEL_ERROR)
