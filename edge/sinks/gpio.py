"""LEDs and a buzzer through gpiozero: green while masked faces are in view, red and the
buzzer for a set time after a violation.

Timing follows the frames' clock rather than background threads, so the pins change
only in :meth:`GpioSink.handle` — which the pipeline also calls while the camera is down,
so a red LED still goes off on time. Tests run it under gpiozero's ``MockFactory``
(``GPIOZERO_PIN_FACTORY=mock``).
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

from edge.plugins import Plugin
from edge.shared.params import Params, param
from edge.sinks import SinkUnavailable

log = logging.getLogger(__name__)
PINS = ("green", "red", "buzzer")


@dataclass(frozen=True)
class GpioParams(Params):
    enabled: bool = param(True, help="LEDs and a buzzer on the Pi's GPIO pins")
    green: int = param(17, min=-1, max=27, help="BCM pin numbers; -1 = not fitted")
    red: int = param(27, min=-1, max=27)
    buzzer: int = param(22, min=-1, max=27)
    active_high: bool = param(True, help="false when a pin drives the LED or buzzer through "
                                         "its cathode")
    violation_seconds: float = param(5.0, min=0.0, max=3600.0,
                                     help="red LED time after a violation")
    buzzer_seconds: float = param(1.0, min=0.0, max=3600.0,
                                  help="buzzer time after a violation")

    @classmethod
    def problems(cls, values):
        pins = [(name, values[name]) for name in PINS if values.get(name, -1) >= 0]
        return [(name, f"pin {pin} is already sinks.gpio.{other}")
                for i, (name, pin) in enumerate(pins) for other, other_pin in pins[:i]
                if pin == other_pin]


class GpioSink:
    def __init__(self, params: GpioParams = GpioParams()):
        from gpiozero import LED, Buzzer  # imported here: only this sink needs it
        from gpiozero.exc import BadPinFactory, PinFactoryFallback

        self.devices = {}
        try:
            with warnings.catch_warnings():  # each factory it tries on the way is no news
                warnings.simplefilter("ignore", PinFactoryFallback)
                for name, kind in zip(PINS, (LED, LED, Buzzer)):
                    pin = getattr(params, name)
                    if pin >= 0:  # -1: not fitted
                        self.devices[name] = kind(pin, active_high=params.active_high,
                                                  initial_value=False)
        except BadPinFactory as exc:
            raise SinkUnavailable(
                f"no GPIO pins here ({str(exc).strip()}): the LEDs and buzzer stay off. Off a "
                "Pi, set [sinks.gpio] enabled = false, or GPIOZERO_PIN_FACTORY=mock to "
                "simulate them") from None
        except Exception:
            self.close()  # free the pins already claimed before the retry claims them again
            raise
        self.violation_seconds = params.violation_seconds
        self.buzzer_seconds = params.buzzer_seconds
        self._red_until = float("-inf")
        self._buzzer_until = float("-inf")

    def handle(self, result) -> bool:
        if any(e.kind == "violation" for e in result.events):
            self._red_until = result.t + self.violation_seconds
            self._buzzer_until = result.t + self.buzzer_seconds
        self._set("green", any(tr.masked and not tr.violating for tr in result.tracks))
        self._set("red", result.t < self._red_until)
        self._set("buzzer", result.t < self._buzzer_until)
        return True

    def _set(self, name: str, on: bool) -> None:
        device = self.devices.get(name)
        if device is not None and bool(device.value) != on:
            device.on() if on else device.off()

    def close(self) -> None:
        """Everything off, then release the pins; one bad pin doesn't keep the others on."""
        if not self.devices:
            return  # nothing was claimed (a pin factory that won't start): nothing to say
        states = []
        for name, device in self.devices.items():
            try:
                device.off()
                states.append(f"{name}={int(bool(device.value))}")
                device.close()
            except Exception as exc:
                log.warning("GPIO %s could not be switched off and released: %s", name, exc)
        log.info("GPIO off: %s", ", ".join(states))
        self.devices = {}


PLUGIN = Plugin("sink", "gpio", GpioParams, lambda params, context: GpioSink(params),
                "a green LED while masked faces are in view; a red one and a buzzer for a "
                "violation", order=20)
