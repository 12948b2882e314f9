"""Step metering: a per-transaction budget that instrumented contract code spends.

The rewritten contract (see `rewrite`) charges at every function entry, every loop iteration,
every element a comprehension or generator expression draws and every branch taken, each time
the static size (in syntax nodes) of the code about to run; the guards in `guards` and
`safe_builtins` charge for elements consumed and for data copied, scanned or compared. The
count depends only on the source and its inputs, so it is the same on every node.

`activate` installs the meter that instrumented code running on the current thread charges;
the runtime restores the previous one when a call returns.
"""

from __future__ import annotations

import threading

from consortia.execution.sandbox.errors import SandboxError
from consortia.execution.sandbox.limits import CALL_DEPTH_MAX


class OutOfSteps(BaseException):
    """The step budget is spent. A BaseException, so `except Exception` in a contract can't catch it."""

    def __init__(self, steps_max: int) -> None:
        super().__init__(f"exceeded {steps_max} steps")
        self.steps_max = steps_max


class CallDepthExceeded(BaseException):
    """Too many nested contract frames or calls. A BaseException for the same reason as OutOfSteps."""


class Meter:
    """A step budget and the current depth of contract frames.

    Once the budget is spent every further charge raises OutOfSteps again, and `used`
    stays at `steps_max`, so a failed call reports the same count however it failed.
    """

    __slots__ = ("_limit", "depth", "depth_max", "exhausted", "steps_max", "used")

    def __init__(self, steps_max: int, depth_max: int = CALL_DEPTH_MAX) -> None:
        """Raises SandboxError for a negative or non-int limit."""
        # Exact ints first: one meter per transaction, so the common case stays cheap.
        if not (type(steps_max) is int and type(depth_max) is int and steps_max >= 0 and depth_max >= 0):
            for what, value in (("steps_max", steps_max), ("depth_max", depth_max)):
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise SandboxError(f"{what} must be an int >= 0")
        self.steps_max = steps_max
        self._limit = steps_max  # what charges compare with; -1 once spent, so every charge fails
        self.depth_max = depth_max
        self.used = 0
        self.depth = 0
        self.exhausted = False

    @property
    def remaining(self) -> int:
        return self.steps_max - self.used

    def charge(self, n: int = 1) -> None:
        """Spend n steps. Raises OutOfSteps if that exceeds the budget."""
        self.used += n
        if self.used > self._limit:
            self._exhaust()

    def enter(self, cost: int = 1) -> None:
        """A contract frame starts: spend `cost`, go one level deeper.

        Raises OutOfSteps or CallDepthExceeded.
        """
        self.used += cost
        if self.used > self._limit:
            self._exhaust()
        if self.depth >= self.depth_max:
            raise CallDepthExceeded(f"more than {self.depth_max} nested contract frames")
        self.depth += 1

    def leave(self) -> None:
        self.depth -= 1

    def _exhaust(self) -> None:
        self.used = self.steps_max
        self._limit = -1
        self.exhausted = True
        raise OutOfSteps(self.steps_max)


class _Active(threading.local):
    """The meter instrumented code charges, per thread: a node executes blocks on one thread
    while it answers queries on another."""

    def __init__(self) -> None:
        # Nothing may run outside a call: an empty budget fails the first charge.
        self.meter = Meter(0)


ACTIVE = _Active()


def activate(meter: Meter) -> Meter:
    """Make `meter` the one instrumented code charges; returns the previous one to restore."""
    previous = ACTIVE.meter
    ACTIVE.meter = meter
    return previous


def charge(n: int) -> None:
    """Charge the active meter. Raises OutOfSteps."""
    meter = ACTIVE.meter
    meter.used += n
    if meter.used > meter._limit:
        meter._exhaust()


# The hooks the rewriter inserts; module-level functions keep the hot path short.


def tick(cost: int) -> bool:
    """Charge a block's static cost; returns True so it can stand in a comprehension's `if`."""
    meter = ACTIVE.meter
    meter.used += cost
    if meter.used > meter._limit:
        meter._exhaust()
    return True


def enter(cost: int) -> None:
    # Meter.enter, inlined: this runs at every contract function call.
    meter = ACTIVE.meter
    meter.used += cost
    if meter.used > meter._limit:
        meter._exhaust()
    if meter.depth >= meter.depth_max:
        raise CallDepthExceeded(f"more than {meter.depth_max} nested contract frames")
    meter.depth += 1


def leave() -> None:
    ACTIVE.meter.depth -= 1
