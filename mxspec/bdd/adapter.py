"""The one place mxspec touches pytest-bdd beyond its public step API.

pytest-bdd's public surface is `given`/`when`/`then`, `parsers`, `scenarios` and its hooks.
mxspec also needs to know, for a collected test, which scenario (and which example row) it
runs, and to look up step definitions before anything runs: that reads pytest-bdd's registries,
its `_pytest_bdd_example` parameter and pytest's fixture manager, all internal. Everything of
that kind lives here, shaped as mxspec's own small types, so an upgrade of pytest-bdd is a
change in this one file. Checked against pytest-bdd 9.0. The one knob of pytest's own internals
mxspec turns (`no_collections_at_exit`) is here too, for the same reason (checked against pytest 9.0).
"""

import atexit
import gc
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from pytest_bdd.parser import FeatureParser
from pytest_bdd.scenario import find_fixturedefs_for_step, scenario_wrapper_template_registry
from pytest_bdd.steps import step_function_context_registry

EXAMPLE_PARAMETER = "_pytest_bdd_example"  # pytest-bdd's parameter holding a Scenario Outline's row


@dataclass(frozen=True)
class Step:
    """One step of a scenario, as written (with the example row's values filled in)."""

    type: str  # given, when or then
    keyword: str  # as written: Given, And, But, ...
    name: str
    line: int
    cells: tuple[str, ...]  # the data table's cells, header row included
    native: Any  # pytest-bdd's own step, for the definition look-up


@dataclass(frozen=True)
class Scenario:
    """The scenario a collected test runs."""

    feature: str  # the feature's name
    filename: str  # the feature file's absolute path
    name: str  # the scenario's name as written (an outline's, not a row's)
    example: dict[str, str]  # the example row ({} for a plain scenario)
    steps: tuple[Step, ...]


@dataclass(frozen=True)
class StepDefinition:
    type: str | None  # given, when, then (None: any)
    phrase: str
    function: Callable[..., object]


def is_scenario_function(function: object) -> bool:
    """Whether the function is one pytest-bdd generated for a scenario."""
    try:
        return function in scenario_wrapper_template_registry
    except TypeError:  # not weak-referenceable, so not one of pytest-bdd's
        return False


def serial_report(config: pytest.Config) -> str | None:
    """The pytest-bdd report option given that only a serial run writes: --cucumberjson is written from the
    process running the scenarios, and under pytest-xdist the controller, which runs none, writes []."""
    return "--cucumberjson" if getattr(config.option, "cucumber_json_path", None) else None


def is_scenario(item: pytest.Item) -> bool:
    return is_scenario_function(getattr(item, "obj", None))


def example(item: pytest.Item) -> dict[str, str]:
    callspec = getattr(item, "callspec", None)
    return dict(callspec.params.get(EXAMPLE_PARAMETER) or {}) if callspec else {}


# Rendered once per scenario and example row: its items, one per host, run the same steps.
_SCENARIOS: dict[tuple[Callable[..., object], tuple[tuple[str, str], ...]], Scenario] = {}


def scenario(item: pytest.Item) -> Scenario | None:
    """The scenario the item runs, with its example row's values filled in; None for other tests."""
    if not is_scenario(item):
        return None
    row = example(item)
    key = (item.obj, tuple(row.items()))  # type: ignore[attr-defined]
    if key not in _SCENARIOS:
        _SCENARIOS[key] = _rendered(item.obj, row)  # type: ignore[attr-defined]
    return _SCENARIOS[key]


def _rendered(function: Callable[..., object], row: dict[str, str]) -> Scenario:
    template = scenario_wrapper_template_registry[function]
    rendered = template.render(row)
    steps = tuple(Step(step.type, step.keyword.strip(), step.name, step.line_number,
                       tuple(cell.value for row_ in (step.datatable.rows if step.datatable else [])
                             for cell in row_.cells), step)
                  for step in rendered.steps)
    return Scenario(template.feature.name, rendered.feature.filename, template.name, row, steps)


def is_defined(step: Step, item: pytest.Item) -> bool:
    """Whether a step definition matches the step where the item runs."""
    return bool(step_functions(step, item))


def step_definitions() -> Iterator[StepDefinition]:
    """Every step definition imported so far (a phrase defined for several types comes once each)."""
    for context in list(step_function_context_registry.values()):
        yield StepDefinition(context.type, context.parser.name, context.step_func)


_CONTEXTS: dict[tuple[str, str, str], list[Any]] = {}


def _contexts(step: Step, item: pytest.Item) -> list[Any]:
    """pytest-bdd's contexts of the step definitions matching the step where the item runs (cached per module)."""
    key = (item.module.__name__ if getattr(item, "module", None) else "", step.type, step.name)  # type: ignore[attr-defined]
    if key not in _CONTEXTS:
        fixturemanager = item.session._fixturemanager
        _CONTEXTS[key] = [step_function_context_registry[fixturedef.func]
                          for fixturedef in find_fixturedefs_for_step(step.native, fixturemanager, item)]
    return _CONTEXTS[key]


def step_functions(step: Step, item: pytest.Item) -> list[Callable[..., object]]:
    """The step definition functions matching the step where the item runs."""
    return [context.step_func for context in _contexts(step, item)]


def step_arguments(step: Step, item: pytest.Item) -> list[tuple[Callable[..., object], dict[str, Any]]]:
    """Each step definition function matching the step where the item runs, with the arguments its phrase
    reads from the step (as the function will be given them)."""
    found = []
    for context in _contexts(step, item):
        parsed = context.parser.parse_arguments(step.name) or {}
        found.append((context.step_func, {name: context.converters.get(name, lambda value: value)(value)
                                          for name, value in parsed.items()}))
    return found


@dataclass(frozen=True)
class FeatureScenario:
    """A scenario as written in a feature file, read without pytest: for `mxspec vars`."""

    filename: str
    line: int
    name: str
    tags: frozenset[str]  # the feature's, the rule's and its own
    steps: tuple[Step, ...]


def read_feature(path: str) -> list[FeatureScenario]:
    """The scenarios of a feature file (pytest-bdd's parser; a Gherkin error is an MxspecError)."""
    from mxspec.core.errors import MxspecError

    try:
        feature = FeatureParser(os.path.dirname(path) or ".", os.path.basename(path)).parse()
    except Exception as error:  # pytest-bdd's parser raises its own and gherkin's errors
        raise MxspecError(f"{path}: not a valid feature file: {error}") from None
    found = []
    for template in feature.scenarios.values():
        tags = frozenset(feature.tags | template.tags | (template.rule.tags if template.rule else set()))
        steps = tuple(Step(step.type, step.keyword.strip(), step.name, step.line_number,
                           tuple(cell.value for row in (step.datatable.rows if step.datatable else [])
                                 for cell in row.cells), step)
                      for step in template.steps)
        found.append(FeatureScenario(path, template.line_number, template.name, tags, steps))
    return found


def matching_functions(step: Step) -> list[Callable[..., object]]:
    """Step definition functions imported so far whose phrase matches the step (no pytest session)."""
    return [context.step_func for context in list(step_function_context_registry.values())
            if (context.type is None or context.type == step.type) and context.parser.is_matching(step.name)]


def no_collections_at_exit(config: pytest.Config) -> None:
    """This run skips the full garbage collections pytest and then Python make as it ends.

    pytest's five look for exceptions raised in finalizers (`__del__`) of a test suite's objects; a
    run's scenarios have none of their own, and each collection walks every object of the run (its
    scenarios, results, transcripts): measured 0.08 s of CPU per pytest process on the gate and
    0.17 s on an estate of 100 hosts, growing with it; each xdist worker is one such process.
    The stash key is pytest's own, the one its pytester sets for the same reason; under a pytest
    without it, nothing changes.

    Python's own, as the interpreter shuts down, walk the same objects again: at exit the heap is
    frozen (`gc.freeze`: collections skip what it holds), from an atexit hook, so a process that
    runs pytest more than once (a benchmark, the project's own tests) collects as usual until it
    ends. Measured on the lab's gate: each process ended 0.1-0.2 s sooner, and the controller,
    which waits for its workers to end, 0.3-0.5 s sooner (bench/gate_speed.py). What is skipped
    is the finalizers of objects in reference cycles: what a run writes is closed before it ends
    (reports are written whole, connections closed by the run's cleanup).
    """
    try:
        from _pytest.unraisableexception import gc_collect_iterations_key
    except ImportError:
        pass
    else:
        config.stash[gc_collect_iterations_key] = 0
    atexit.unregister(_freeze_heap)  # once per process, however many runs it makes
    atexit.register(_freeze_heap)


def _freeze_heap() -> None:
    gc.disable()
    gc.freeze()
