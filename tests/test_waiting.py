"""The one polling loop: pauses that start short and grow to the interval, a bound, an early stop."""

import pytest

from mxspec.core import waiting


@pytest.fixture
def pauses(monkeypatch):
    taken: list[float] = []
    monkeypatch.setattr(waiting.time, "sleep", taken.append)
    return taken


def test_a_quick_answer_is_found_after_a_short_pause_and_pauses_grow_to_the_interval(pauses):
    answers = iter([None] * 6 + ["ready"])
    assert waiting.poll(60, lambda: next(answers), interval=1.0) == "ready"
    assert pauses == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]


def test_an_interval_below_the_first_pause_is_kept(pauses):
    answers = iter([None, None, "ready"])
    assert waiting.poll(60, lambda: next(answers), interval=0.05) == "ready"
    assert pauses == [0.05, 0.05]


def test_no_answer_within_the_bound_is_none():
    assert waiting.poll(0.3, lambda: None, interval=0.1) is None


def test_a_definite_failure_ends_the_wait_at_once(pauses):
    def check():
        raise waiting.Definite("bounced")

    with pytest.raises(waiting.Definite, match="bounced"):
        waiting.eventually(60, check)
    assert pauses == []
