"""The runtime on the Pi: camera → faces → mask or not → alarms (see docs/architecture.md)."""

__version__ = "0.1.0"
