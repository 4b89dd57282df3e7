"""The step vocabulary: every phrase features may use, and the check that they use no other.

A misspelt step would otherwise fail only when its scenario runs, after hosts were contacted;
here every collected scenario is checked first and the run stops with the feature file, line
and the closest known phrase.
"""

import difflib
import inspect
import os

from pytest_bdd.scenario import (
    find_fixturedefs_for_step,
    scenario_wrapper_template_registry,
)
from pytest_bdd.steps import step_function_context_registry


def known_steps() -> list[tuple[str, str, str]]:
    """(keyword, phrase, one-line description) of every step definition imported so far."""
    seen, result = set(), []
    for context in list(step_function_context_registry.values()):
        key = (context.type, context.parser.name)
        if key in seen:
            continue
        seen.add(key)
        doc = inspect.getdoc(context.step_func) or ""
        result.append(((context.type or "step").capitalize(), context.parser.name, doc.split("\n")[0]))
    return sorted(result, key=lambda row: ({"Given": 0, "When": 1, "Then": 2}.get(row[0], 3), row[1]))


def closest_phrase(step_type: str, text: str) -> str | None:
    candidates = [phrase for keyword, phrase, _ in known_steps() if keyword.lower() in (step_type, "step")]
    scored = [(difflib.SequenceMatcher(None, text, phrase).ratio(), phrase) for phrase in candidates]
    best = max(scored, default=(0, None))
    return best[1] if best[0] >= 0.4 else None


def undefined_steps(items) -> list[str]:
    """One message per undefined step (file:line) among the collected scenario items."""
    problems: dict[tuple[str, int], str] = {}
    for item in items:
        template = scenario_wrapper_template_registry.get(getattr(item, "obj", None))
        if template is None:
            continue
        callspec = getattr(item, "callspec", None)
        example = callspec.params.get("_pytest_bdd_example", {}) if callspec else {}
        scenario = template.render(example)
        fixturemanager = item.session._fixturemanager
        for step in scenario.steps:
            where = (os.path.relpath(scenario.feature.filename), step.line_number)
            if where in problems:
                continue
            if any(True for _ in find_fixturedefs_for_step(step, fixturemanager, item)):
                continue
            message = f'{where[0]}:{where[1]}: undefined step "{step.keyword.strip()} {step.name}"'
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
