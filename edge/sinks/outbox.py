"""What a sink has still to send: one bounded queue for every sender, and the journal told once.

A sink's ``handle`` runs in the camera loop and must never wait for a disk, a broker or a
web server. So it puts what it has to send into an :class:`Outbox` and returns. The outbox
holds at most ``limit`` items, oldest first; past that the oldest is dropped and counted
(``dropped``), with one warning when dropping starts and one more every ``limit`` drops,
never one per item. Given ``send``, the outbox has its own thread that sends the items in
order, one at a time: ``send(item)`` returns True once the item is delivered, False when
it can't be yet (the sender has said why, if it matters), or raises (the outbox says why,
once); then the same item is tried again after a wait that doubles from ``retry_min`` to
``retry_max`` seconds — a receiver that is down costs a try a minute, not a loop — or
sooner, when the sink calls :meth:`wake` (its broker is back). Without ``send``, the sink takes items itself (:meth:`take`,
:meth:`peek` and :meth:`pop`, :meth:`put_back` for a batch that failed).

:class:`Said` logs a problem once, when it starts or changes, not at each retry, and
says when it is over; the outbox's thread tells its troubles through one.

A sender is then its table and its ``send()``:

>>> sent = []
>>> box = Outbox("demo", limit=2, send=lambda item: sent.append(item) or True)
>>> for n in range(3):
...     box.put(n)
>>> box.close(wait=1.0)
>>> sent, box.dropped        # one of the three was put while two already waited
([1, 2], 1)
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable

log = logging.getLogger(__name__)


class Said:
    """A problem told to the journal once: when it starts, when it changes, and (``over``)
    when it ends; a repeat is a debug line."""

    def __init__(self, name: str, logger: logging.Logger = log):
        self.name = name
        self.problem: str | None = None
        self._log = logger

    def __call__(self, problem: str, detail: str = "") -> None:
        """Tell ``problem`` (with ``detail``, which may change without a new line)."""
        if problem != self.problem:
            self._log.warning("%s: %s%s", self.name, problem, detail)
        else:
            self._log.debug("%s: still %s", self.name, problem)
        self.problem = problem

    def over(self, how: str) -> None:
        """The problem is gone: one line saying ``how`` it ended, if there was one."""
        if self.problem is not None:
            self._log.info("%s: %s", self.name, how)
        self.problem = None


class Outbox:
    """A bounded, counted queue, oldest first, and optionally its sender thread (see the
    module docstring). Thread-safe."""

    def __init__(self, name: str, limit: int, send: Callable[[object], bool] | None = None,
                 retry_min: float = 1.0, retry_max: float = 60.0, what: str = "items",
                 to: str = "their receiver"):
        self.name = name
        self.what = what                 # what the items are, for the journal: "events"
        self.to = to                     # where they go: "the broker"
        self.limit = limit
        self.dropped = 0                 # items given up, since start
        self.sent = 0                    # items the thread delivered, since start
        self.trouble = Said(name)
        self._items: deque = deque()
        self._changed = threading.Condition()
        self._closing = False
        self._woken = False
        self._send = send
        self._retry = (retry_min, max(retry_min, retry_max))
        self._thread = None
        if send is not None:
            self._thread = threading.Thread(target=self._run, name=f"{name}-send", daemon=True)
            self._thread.start()

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item) -> None:
        """Add ``item`` last; never waits. Past ``limit`` the oldest item is dropped."""
        with self._changed:
            self._items.append(item)
            self._trim()
            self._changed.notify_all()

    def put_back(self, items: Iterable) -> None:
        """Put ``items`` (taken earlier, oldest first) back in front of what came since."""
        with self._changed:
            self._items.extendleft(reversed(list(items)))
            self._trim()

    def take(self) -> list:
        """Everything held, oldest first; the outbox is empty after."""
        with self._changed:
            items, self._items = list(self._items), deque()
            return items

    def peek(self):
        """The oldest item, left in place; None when empty."""
        with self._changed:
            return self._items[0] if self._items else None

    def pop(self, item) -> None:
        """Remove ``item`` if it is still the oldest (it may have been dropped meanwhile)."""
        with self._changed:
            if self._items and self._items[0] is item:
                self._items.popleft()

    def _trim(self) -> None:
        while len(self._items) > self.limit:
            self._items.popleft()
            self.dropped += 1
            if self.dropped % self.limit == 1 or self.limit == 1:
                log.warning("%s: %d %s wait to be sent; dropping the oldest (%d dropped so "
                            "far, counted)", self.name, self.limit, self.what, self.dropped)

    # --- the sender thread ----------------------------------------------------------------
    def _run(self) -> None:
        wait = self._retry[0]
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._items or self._closing)
                if not self._items:
                    return
                item = self._items[0]
            try:
                delivered, problem = bool(self._send(item)), None
            except Exception as exc:    # a receiver's failure must not end the thread
                delivered, problem = False, f"{type(exc).__name__}: {exc}"
            if delivered:
                self.pop(item)
                self.sent += 1
                self.trouble.over(f"sending again ({len(self)} waiting)")
                wait = self._retry[0]
                continue
            if problem:
                self.trouble(f"{problem}; {len(self)} {self.what} held, trying again in "
                             f"{wait:g}s")
            with self._changed:
                self._changed.wait_for(lambda: self._closing or self._woken, timeout=wait)
                if self._closing:
                    return
                woken, self._woken = self._woken, False
            wait = self._retry[0] if woken else min(2 * wait, self._retry[1])

    def wake(self) -> None:
        """Try the oldest item again now, not after the wait (the receiver is back)."""
        with self._changed:
            self._woken = True
            self._changed.notify_all()

    def close(self, wait: float = 0.0) -> None:
        """Stop the sender thread, after giving what is held up to ``wait`` seconds to go;
        what is still held is said in one line."""
        if self._thread is not None:
            deadline = time.monotonic() + wait
            while self._items and time.monotonic() < deadline and self._thread.is_alive():
                time.sleep(0.02)
            with self._changed:
                self._closing = True
                self._changed.notify_all()
            self._thread.join(timeout=max(1.0, wait))
        if self._items or self.dropped:
            log.warning("%s: %d %s never reached %s, %d dropped before", self.name,
                        len(self._items), self.what, self.to, self.dropped)
