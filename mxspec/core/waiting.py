"""Waiting for something to come true within a bound: the one polling loop of mxspec.

`poll` asks a probe again and again until it gives an answer (anything but None) or the bound
is reached. A probe that knows waiting longer cannot help (the mail log already says
`status=bounced`, the process it waits for has ended) raises at once: `poll` lets the error
through, so a definite answer stops the wait early. `eventually` is the form for checks that
fail with AssertionError until they pass; `Definite` is its stop-early failure.
"""

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class Definite(AssertionError):
    """A check's failure that waiting longer cannot change: `eventually` raises it at once."""


# The first pause between probes; each next one doubles, up to the caller's interval. Most waits
# end within a second (a delivery in the lab takes a few hundred milliseconds): a fixed 1 s pause
# rounded each of them up to a whole second, while a long wait still asks about once an interval.
FIRST_PAUSE = 0.1


def poll(seconds: float, probe: Callable[[], T | None], interval: float = 1.0) -> T | None:
    """probe() until it returns something other than None; None once `seconds` have passed.

    The probe runs at least once, and once more after the bound would pass during a pause; the
    pauses grow from FIRST_PAUSE to `interval`. Whatever the probe raises ends the wait at once.
    """
    deadline = time.monotonic() + seconds
    pause = min(FIRST_PAUSE, interval)
    while True:
        answer = probe()
        if answer is not None:
            return answer
        if time.monotonic() >= deadline:
            return None
        time.sleep(pause)
        pause = min(pause * 2, interval)


def eventually(seconds: float, check: Callable[[], T], interval: float = 1.0) -> T:
    """check() until it stops raising AssertionError; after `seconds`, its last failure, timed.

    A `Definite` failure is raised at once, without waiting for the bound.
    """
    failures: list[AssertionError] = []

    def probe() -> tuple[T] | None:
        try:
            return (check(),)
        except Definite:
            raise
        except AssertionError as error:
            failures[:] = [error]
            return None

    answer = poll(seconds, probe, interval)
    if answer is None:
        raise AssertionError(f"still, after {seconds:g} s: {failures[-1]}") from None
    return answer[0]
