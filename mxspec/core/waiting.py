"""Checks that must come true within a bound: retried until they pass or the bound is reached."""

import time


def eventually(seconds: float, check, interval: float = 1.0):
    """check() until it stops raising AssertionError; after `seconds`, its last failure, timed."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return check()
        except AssertionError as error:
            if time.monotonic() >= deadline:
                raise AssertionError(f"still, after {seconds:g} s: {error}") from None
        time.sleep(interval)
