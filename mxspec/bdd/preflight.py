"""Checks made before any host is contacted: every `{{ name }}` a scenario uses is set for its host."""

import os
from collections.abc import Callable, Sequence

import pytest

from mxspec.bdd import adapter
from mxspec.estate import values
from mxspec.estate.target import Target


def missing_variables(items: Sequence[pytest.Item], target_of: Callable[[pytest.Item], Target | None]) -> list[str]:
    """One message per (feature line, variable) with the hosts or estates that lack it."""
    missing: dict[tuple[str, int, str], list[str]] = {}
    for item in items:
        scenario = adapter.scenario(item)
        target = target_of(item)
        if scenario is None or target is None:
            continue
        for step in scenario.steps:
            for text in (step.name, *step.cells):
                for name in values.references(text):
                    try:
                        values.lookup(target.vars, name, target.name)
                    except values.MissingVariable:
                        key = (os.path.relpath(scenario.filename), step.line, name)
                        if target.name not in missing.setdefault(key, []):
                            missing[key].append(target.name)
    return [f"{where}:{line}: inventory variable '{name}' is not set for {', '.join(hosts)}"
            for (where, line, name), hosts in sorted(missing.items())]
