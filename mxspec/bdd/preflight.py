"""Checks made before any host is contacted: the selected estates against the estate contract.

- **missing**: a value a selected scenario needs — a `{{ name }}` in its steps, or a variable one
  of its step definitions reads (`Variable.steps` in `estate.contract`) — that has no default and
  is not set for the host (or estate) it runs on; one message per feature line and variable,
  naming the hosts and where the inventory defines them;
- **unusable**: such a value that is vault-encrypted with no way to decrypt it, or a template
  mxspec cannot render as Ansible would;
- **mistyped**: a declared variable set to a value of the wrong type, at the file and line that
  set it (whether or not a selected scenario reads it: it is wrong either way);
- **TODO**: a value `mxspec discover` could not read from a host and wrote as `TODO: ...` (a test
  mailbox, how long to wait), at the file and line, until someone fills it in;
- **near misses** (warnings): an undeclared variable spelt almost like a declared one that the
  host lacks (`local_domain` for `local_domains`), at its file and line. Other undeclared
  variables are ignored: real inventories carry many.
"""

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pytest

from mxspec.bdd import adapter
from mxspec.core.errors import MxspecError
from mxspec.estate import contract, values
from mxspec.estate.target import Target

STEPS_PACKAGE = "mxspec.steps."


@dataclass
class Findings:
    missing: list[str] = field(default_factory=list)  # each "feature:line: ..."
    mistyped: list[str] = field(default_factory=list)  # each "inventory:line: ..."
    warnings: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[str]:
        return self.missing + self.mistyped


def step_name(function: Callable[..., object]) -> str:
    """`smtp.message_sent` for mxspec's own steps; `module.function` for a project's."""
    return f"{function.__module__.removeprefix(STEPS_PACKAGE)}.{getattr(function, '__name__', '?')}"


def needed(scenario: adapter.Scenario, item: pytest.Item) -> list[tuple[int, str]]:
    """(feature line, variable) for every value the scenario's steps need."""
    found: list[tuple[int, str]] = []
    for step in scenario.steps:
        for text in (step.name, *step.cells):
            found += [(step.line, name.split(".")[0]) for name in values.references(text)]
        for function in adapter.step_functions(step, item):
            found += [(step.line, name) for name in contract.STEP_NEEDS.get(step_name(function), [])]
    return found


def check(items: Sequence[pytest.Item], target_of: Callable[[pytest.Item], Target | None]) -> Findings:
    findings = Findings()
    missing: dict[tuple[str, int, str], list[Target]] = {}
    unusable: dict[str, None] = {}
    targets: dict[tuple[str, str], Target] = {}
    for item in items:
        scenario, target = adapter.scenario(item), target_of(item)
        if scenario is None or target is None:
            continue
        targets[(target.estate.name, target.name)] = target
        for line, name in needed(scenario, item):
            variable = contract.CONTRACT.get(name)
            if name not in target.vars:
                if variable is not None and variable.only_with and variable.only_with not in target.vars:
                    continue  # e.g. submission_user, where no submission_port says the host offers submission
                if variable is None or not variable.fills_in:
                    key = (os.path.relpath(scenario.filename), line, name)
                    if target not in missing.setdefault(key, []):
                        missing[key].append(target)
                continue
            try:
                values.usable(name, target.vars[name])
            except MxspecError as error:
                unusable[f"{error} (needed by {os.path.relpath(scenario.filename)}:{line})"] = None
    findings.missing = [f"{where}:{line}: inventory variable '{name}' is not set for {_named(hosts)}"
                        for (where, line, name), hosts in sorted(missing.items())] + list(unusable)
    _check_types(list(targets.values()), findings)
    notes = {note: None for target in targets.values() for note in target.estate.notes}
    findings.warnings += list(notes)
    if notes and findings.missing:
        findings.missing.append("(the values may be in vault-encrypted files mxspec could not read: see the warnings)")
    return findings


def _named(targets: list[Target]) -> str:
    return ", ".join(f"{t.name} ({t.where})" if t.host else f"estate {t.name} ({t.where})" for t in targets)


def _origins(target: Target) -> dict[str, str]:
    return target.host.origins if target.host else target.estate.origins


def _with_hosts(targets: list[Target]) -> list[Target]:
    """The targets, and for an estate its hosts: a scenario once per estate may read their values too
    (the hosts of a role compared read each host's host_specific_parameters)."""
    every = {(target.estate.name, target.name): target for target in targets}
    for target in targets:
        if target.host is None:
            every.update({(target.estate.name, host.name): Target(target.estate, host)
                          for host in target.estate.hosts.values()})
    return list(every.values())


def _check_types(targets: list[Target], findings: Findings) -> None:
    mistyped: dict[str, list[str]] = {}
    warnings: dict[str, list[str]] = {}
    for target in _with_hosts(targets):
        origins = _origins(target)
        for name, value in target.vars.items():
            where = origins.get(name, target.where)
            if contract.is_todo(value):
                mistyped.setdefault(f"{where}: inventory variable '{name}' is still a TODO of mxspec discover "
                                    f"({str(value)[len(contract.TODO):]}): fill it in", []).append(target.name)
                continue
            if name in contract.CONTRACT:
                _check_declared(target, contract.CONTRACT[name], value, where, mistyped, warnings)
                continue
            close = contract.near_miss(name)
            if close and close not in target.vars:
                warnings.setdefault(f"{where}: inventory variable '{name}' is not one mxspec reads: "
                                    f"did you mean '{close}'?", []).append(target.name)
    findings.mistyped = [f"{message} (for {', '.join(names)})" for message, names in mistyped.items()]
    findings.warnings = [f"{message} (for {', '.join(names)})" for message, names in warnings.items()]


def _check_declared(target: Target, variable: contract.Variable, value: object, where: str,
                    mistyped: dict[str, list[str]], warnings: dict[str, list[str]]) -> None:
    if isinstance(value, values.UNUSABLE):
        if variable.connection and target.host is not None:  # every scenario on the host connects
            try:
                values.usable(variable.name, value)
            except MxspecError as error:
                mistyped.setdefault(str(error), []).append(target.name)
        return
    wrong = contract.problem(variable.name, value)
    if wrong:
        mistyped.setdefault(f"{where}: {wrong}", []).append(target.name)
