"""`mxspec vars`: the estate contract, which scenarios need each variable, and what an estate sets.

The scenarios come from the feature files themselves (pytest-bdd's parser, through the adapter)
and the step definitions they match, so what `mxspec vars` says a variable is needed by is what
preflight will ask of an estate.
"""

import importlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from mxspec import steps
from mxspec.bdd import adapter
from mxspec.bdd.preflight import step_name
from mxspec.core.errors import MxspecError
from mxspec.core.yamlfile import Vaulted
from mxspec.estate import contract, values
from mxspec.estate.inventory import Estate, Host
from mxspec.estate.render import Unrenderable
from mxspec.estate.roles import TAG_ROLES
from mxspec.estate.vault import Secret


@dataclass(frozen=True)
class Need:
    scenario: adapter.FeatureScenario
    line: int  # the step's line

    @property
    def where(self) -> str:
        return f"{os.path.relpath(self.scenario.filename)}:{self.scenario.line}"


def scenario_needs(features: Path) -> dict[str, list[Need]]:
    """variable -> the scenarios (and step lines) that need it, over every feature file."""
    for module in steps.MODULES:
        importlib.import_module(module)
    paths = sorted(features.glob("*.feature"))
    if not paths:
        raise MxspecError(f"{features}: no feature files (run from the project's folder, or give --features DIR)")
    found: dict[str, list[Need]] = {}
    for path in paths:
        for scenario in adapter.read_feature(str(path)):
            for step in scenario.steps:
                names = [name.split(".")[0] for text in (step.name, *step.cells) for name in values.references(text)]
                for function in adapter.matching_functions(step):
                    names += contract.STEP_NEEDS.get(step_name(function), [])
                for name in dict.fromkeys(names):
                    needs = found.setdefault(name, [])
                    if not any(need.scenario == scenario for need in needs):
                        needs.append(Need(scenario, step.line))
    return found


def _default(variable: contract.Variable) -> str:
    if variable.required:
        return f"required where {variable.only_with} is set" if variable.only_with else "required"
    if variable.default is None:
        return "optional"
    return f"default: {variable.default}"


def _needed_by(needs: list[Need]) -> str:
    files: dict[str, int] = {}
    for need in needs:
        name = os.path.basename(need.scenario.filename)
        files[name] = files.get(name, 0) + 1
    return ", ".join(f"{name} ({count})" for name, count in files.items())


def describe(features: Path) -> str:
    needs = scenario_needs(features)
    lines: list[str] = []
    group = None
    for variable in contract.VARIABLES:
        if variable.group != group:
            group = variable.group
            lines += ["", f"{group}:"] if lines else [f"{group}:"]
        lines.append(f"  {variable.name:30} {variable.type.name:24} {_default(variable)}")
        lines.append(f"      {variable.meaning}; e.g. {variable.example}")
        if needs.get(variable.name):
            lines.append(f"      needed by scenarios in {_needed_by(needs[variable.name])}")
    lines += ["", "Postfix parameters that differ host by host (left out of comparisons; expected value):"]
    lines += [f"  {name:30} {default or '(empty)'}" for name, default in contract.HOST_PARAMETERS.items()]
    return "\n".join(lines)


def markdown() -> str:
    rows = ["| variable | type | default | meaning | example |", "| --- | --- | --- | --- | --- |"]
    for variable in contract.VARIABLES:
        default = "**required**" if variable.required else ("—" if variable.default is None else f"`{variable.default}`")
        rows.append(f"| `{variable.name}` | {variable.type.name} | {default} | {variable.meaning} | `{variable.example}` |")
    return "\n".join(rows) + "\n"


def _shown(value: object) -> str:
    if isinstance(value, Vaulted):
        return "(vault-encrypted)"
    if isinstance(value, Secret):
        return "(decrypted secret)"
    if isinstance(value, Unrenderable):
        return "(cannot be rendered)"
    text = str(value)
    return text if len(text) <= 50 else text[:47] + "..."


def _runs_on(scenario: adapter.FeatureScenario, host: Host | None) -> bool:
    if "estate" in scenario.tags:
        return host is None
    wanted = {TAG_ROLES[tag] for tag in scenario.tags if tag in TAG_ROLES}
    return host is not None and (not wanted or host.has_any_role(wanted))


def _subjects(estate: Estate) -> Iterable[tuple[str, Host | None, dict, dict[str, str]]]:
    yield f"estate {estate.name}", None, estate.vars, estate.origins
    for host in estate.hosts.values():
        yield host.name, host, host.vars, host.origins


def estate_report(estate: Estate, features: Path) -> str:
    """What the estate sets of the contract, from which file, and what each missing value disables."""
    needs = scenario_needs(features)
    lines = [f"estate {estate.name} ({estate.path}): {len(estate.hosts)} hosts"]
    for variable in contract.VARIABLES:
        states: dict[str, list[str]] = {}
        for name, host, variables, origins in _subjects(estate):
            if host is None and not any(_runs_on(need.scenario, None) for need in needs.get(variable.name, [])):
                continue  # the estate's own values matter only to @estate scenarios
            if variable.name in variables:
                value = variables[variable.name]
                wrong = None if isinstance(value, values.UNUSABLE) else contract.problem(variable.name, value)
                state = f"{'WRONG TYPE' if wrong else 'set':10} {_shown(value)}  ({origins.get(variable.name, '?')})"
                if wrong:
                    state += f": {wrong}"
            else:
                disabled = [need for need in needs.get(variable.name, []) if _runs_on(need.scenario, host)]
                if variable.only_with and variable.only_with not in variables:
                    disabled = []
                if not variable.fills_in and disabled:
                    state = "MISSING    disables " + "; ".join(f"{n.where} {n.scenario.name}" for n in disabled)
                else:
                    state = f"{'not set':10} {_default(variable)}"
            states.setdefault(state, []).append(name)
        for state, names in states.items():
            hosts = [n for n in names if n in estate.hosts]
            who = "every host" if len(hosts) == len(estate.hosts) else ", ".join(hosts)
            if len(hosts) < len(names):
                who = f"the estate and {who}" if hosts else "the estate"
            lines.append(f"  {variable.name:30} {state}  [{who}]")
    return "\n".join(lines)
