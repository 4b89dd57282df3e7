"""The step vocabulary: every phrase features may use, and the check that they use no other.

A misspelt step would otherwise fail only when its scenario runs, after hosts were contacted;
here every collected scenario is checked first and the run stops with the feature file, line
and the closest known phrase.
"""

import difflib
import inspect
import os
from collections.abc import Sequence

import pytest

from mxspec.bdd import adapter


def known_steps() -> list[tuple[str, str, str]]:
    """(keyword, phrase, one-line description) of every step definition imported so far."""
    seen: set[tuple[str | None, str]] = set()
    result = []
    for definition in adapter.step_definitions():
        key = (definition.type, definition.phrase)
        if key in seen:
            continue
        seen.add(key)
        doc = inspect.getdoc(definition.function) or ""
        result.append(((definition.type or "step").capitalize(), definition.phrase, doc.split("\n")[0]))
    return sorted(result, key=lambda row: ({"Given": 0, "When": 1, "Then": 2}.get(row[0], 3), row[1]))


def closest_phrase(step_type: str, text: str) -> str | None:
    candidates = [phrase for keyword, phrase, _ in known_steps() if keyword.lower() in (step_type, "step")]
    scored = [(difflib.SequenceMatcher(None, text, phrase).ratio(), phrase) for phrase in candidates]
    best = max(scored, default=(0, None))
    return best[1] if best[0] >= 0.4 else None


def undefined_steps(items: Sequence[pytest.Item]) -> list[str]:
    """One message per undefined step (file:line) among the collected scenario items."""
    problems: dict[tuple[str, int], str] = {}
    # A step is looked up once: a scenario's items (one per host) see the same step definitions.
    # By its text too: an outline's step reads differently in each example, and may match in one only.
    looked_up: set[tuple[str, int, str]] = set()
    for item in items:
        scenario = adapter.scenario(item)
        if scenario is None:
            continue
        for step in scenario.steps:
            where = (os.path.relpath(scenario.filename), step.line)
            if (*where, step.name) in looked_up:
                continue
            looked_up.add((*where, step.name))
            if adapter.is_defined(step, item):
                continue
            message = f'{where[0]}:{where[1]}: undefined step "{step.keyword} {step.name}"'
            close = closest_phrase(step.type, step.name)
            if close:
                message += f'; closest known phrase: "{close}"'
            problems[where] = message
    return [problems[key] for key in sorted(problems)]


def format_vocabulary() -> str:
    lines = []
    for keyword, phrase, doc in known_steps():
        lines.append(f"{keyword:5} {phrase}")
        if doc:
            lines.append(f"      {doc}")
    return "\n".join(lines)
