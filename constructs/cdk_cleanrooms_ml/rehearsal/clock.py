"""Time for the rehearsal's waits: real sleeping, or a simulated clock that jumps ahead.

The simulated clock is a small discrete-event clock shared by the threads of one stack operation:
``sleep`` blocks until every registered thread is asleep, then time jumps to the earliest wake-up.
So many waiters poll in the order their intervals say, without anyone really waiting. The handlers
see the same time: each invocation of a Python function runs with ``time.time()`` shifted to the
clock's ``epoch()`` (see ``lambdas.py``), so their own deadlines pass in simulated time too.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


class Clock:
    """Real time: ``sleep`` sleeps."""

    simulated = False

    def now(self) -> float:
        return time.monotonic()

    def epoch(self) -> float:
        """The wall-clock time (seconds since the Unix epoch) in this clock's timeline."""
        return time.time()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def wait(self, event: threading.Event, seconds: float) -> bool:
        """Sleep until ``event`` is set or ``seconds`` have passed; returns whether the event is set."""
        return event.wait(seconds)

    def notify(self) -> None:
        """Something a ``wait`` may be waiting for happened (real time: the event wakes the waiter itself)."""
        return

    @contextmanager
    def participant(self) -> Iterator[None]:
        yield

    def register(self) -> None:
        return

    def unregister(self) -> None:
        return

    @contextmanager
    def idle(self) -> Iterator[None]:
        yield


class SimulatedClock(Clock):
    """Simulated time (starts at 0): a ``sleep`` returns as soon as it is the earliest wake-up left."""

    simulated = True

    def __init__(self, epoch: float | None = None) -> None:
        """:param epoch: the wall-clock time at which simulated time 0 is. Default: now."""
        self._epoch = time.time() if epoch is None else epoch
        self._now = 0.0
        self._cond = threading.Condition()
        self._participants = 0
        self._sleeping: dict[int, float] = {}  # ticket -> wake time (inf: idle until woken)
        self._events: dict[int, threading.Event] = {}  # ticket -> the event a ``wait`` also wakes on
        self._ticket = 0

    def now(self) -> float:
        with self._cond:
            return self._now

    def epoch(self) -> float:
        with self._cond:
            return self._epoch + self._now

    def register(self) -> None:
        """Count one more thread that must be asleep before time may jump (call before starting it)."""
        with self._cond:
            self._participants += 1

    def unregister(self) -> None:
        with self._cond:
            self._participants -= 1
            self._advance()

    @contextmanager
    def participant(self) -> Iterator[None]:
        try:
            yield
        finally:
            self.unregister()

    def sleep(self, seconds: float) -> None:
        with self._cond:
            self._ticket += 1
            ticket = self._ticket
            wake = self._now + seconds
            self._sleeping[ticket] = wake
            self._advance()
            while self._now < wake:
                self._cond.wait()
            self._sleeping.pop(ticket, None)

    def wait(self, event: threading.Event, seconds: float) -> bool:
        """A ``sleep`` that ends early, at the current simulated time, once ``event`` is set (by a thread that
        then calls ``notify``): a wait condition's timeout is a wake-up like any other, a signal cuts it short."""
        with self._cond:
            self._ticket += 1
            ticket = self._ticket
            wake = self._now + seconds
            self._sleeping[ticket] = wake
            self._events[ticket] = event
            self._advance()
            while self._now < wake and not event.is_set():
                self._cond.wait(0.05)  # the timeout: a setter that forgot notify() still gets seen
            self._sleeping.pop(ticket, None)
            self._events.pop(ticket, None)
        return event.is_set()

    def notify(self) -> None:
        with self._cond:
            self._cond.notify_all()

    @contextmanager
    def idle(self) -> Iterator[None]:
        """The caller (a registered thread) waits for other threads, not for time: it does not hold time back."""
        with self._cond:
            self._ticket += 1
            ticket = self._ticket
            self._sleeping[ticket] = float("inf")
            self._advance()
        try:
            yield
        finally:
            with self._cond:
                self._sleeping.pop(ticket, None)

    def _advance(self) -> None:
        pending = [w for w in self._sleeping.values() if w > self._now]
        # A waiter whose event is set wakes now, even if it has not seen it yet: time must not jump past it.
        due = len(self._sleeping) - len(pending) + sum(1 for e in self._events.values() if e.is_set())
        if due or self._participants <= 0 or len(self._sleeping) < self._participants:
            self._cond.notify_all()
            return
        finite = [w for w in pending if w != float("inf")]
        if finite:
            self._now = min(finite)
        self._cond.notify_all()
