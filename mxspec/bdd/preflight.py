"""Checks made before any host is contacted: every `{{ name }}` a scenario uses is set for its host."""

import os

from pytest_bdd.scenario import scenario_wrapper_template_registry

from mxspec.estate import values


def missing_variables(items, target_of) -> list[str]:
    """One message per (feature line, variable) with the hosts or estates that lack it."""
    missing: dict[tuple[str, int, str], list[str]] = {}
    for item in items:
        template = scenario_wrapper_template_registry.get(getattr(item, "obj", None))
        target = target_of(item)
        if template is None or target is None:
            continue
        example = item.callspec.params.get("_pytest_bdd_example") or {}
        scenario = template.render(example)
        for step in scenario.steps:
            texts = [step.name] + [cell.value for row in (step.datatable.rows if step.datatable else [])
                                   for cell in row.cells]
            for text in texts:
                for name in values.references(text):
                    try:
                        values.lookup(target.vars, name, target.name)
                    except values.MissingVariable:
                        key = (os.path.relpath(scenario.feature.filename), step.line_number, name)
                        if target.name not in missing.setdefault(key, []):
                            missing[key].append(target.name)
    return [f"{where}:{line}: inventory variable '{name}' is not set for {', '.join(hosts)}"
            for (where, line, name), hosts in sorted(missing.items())]
