"""The estate contract is complete and true: every variable the features and steps read is declared,
nothing declared is unused, and what it says a step needs, the step reads."""

import ast
import re
from pathlib import Path

from conftest import PROJECT
from mxspec.estate import contract
from mxspec.estate.values import references

PACKAGE = PROJECT / "mxspec"
READERS = {"setting", "has", "other_host"}  # Subject's ways to read a declared variable


def feature_references() -> set[str]:
    return {name.split(".")[0] for path in (PROJECT / "features").glob("*.feature")
            for name in references(path.read_text())}


def _constants(tree: ast.Module) -> dict[str, list[str]]:
    """Module-level NAME = "text" or {key: "text"} assignments: what a reader's argument may name."""
    found: dict[str, list[str]] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            for target in node.targets:
                for name, value in _assigned(target, node.value):
                    if isinstance(value, ast.Constant) and isinstance(value.value, str):
                        found[name] = [value.value]
                    elif isinstance(value, ast.Dict):
                        found[name] = [v.value for v in value.values if isinstance(v, ast.Constant)]
    return found


def _assigned(target: ast.expr, value: ast.expr) -> list[tuple[str, ast.expr]]:
    if isinstance(target, ast.Name):
        return [(target.id, value)]
    if isinstance(target, ast.Tuple) and isinstance(value, ast.Tuple):
        return [pair for t, v in zip(target.elts, value.elts, strict=False) for pair in _assigned(t, v)]
    return []


def _read_names(node: ast.AST, constants: dict[str, list[str]]) -> set[str]:
    names: set[str] = set()
    for call in ast.walk(node):
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr in READERS \
                and call.args:
            argument = call.args[0]
            if isinstance(argument, ast.Subscript):
                argument = argument.value
            if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
                names.add(argument.value)
            elif isinstance(argument, ast.Name) and argument.id in constants:
                names.update(constants[argument.id])
    return names


def reads_by_function() -> dict[str, set[str]]:
    """`module.function` (under mxspec/, steps without their package) -> variables it reads,
    with those read by the same module's helpers and fixtures it calls or takes."""
    result: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if "lab" in path.relative_to(PACKAGE).parts:
            continue
        tree = ast.parse(path.read_text())
        constants = _constants(tree)
        functions = {node.name: node for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))}
        direct = {name: _read_names(node, constants) for name, node in functions.items()}
        uses = {name: {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and n.id in functions}
                | {a.arg for a in ast.walk(node) if isinstance(a, ast.arg) and a.arg in functions}
                for name, node in functions.items()}
        module = ".".join(path.relative_to(PACKAGE).with_suffix("").parts).removeprefix("steps.")
        for name in functions:
            seen, todo, reads = {name}, [name], set()
            while todo:
                current = todo.pop()
                reads |= direct[current]
                for other in uses[current] - seen:
                    seen.add(other)
                    todo.append(other)
            result[f"{module}.{name}"] = reads
    return result


def test_every_variable_the_features_use_is_declared():
    undeclared = sorted(feature_references() - set(contract.CONTRACT))
    assert not undeclared, f"declare these in mxspec/estate/contract.py: {undeclared}"


def test_every_variable_the_code_reads_is_declared():
    read = {name for names in reads_by_function().values() for name in names}
    assert read, "the scan found no reads at all: it is broken"
    undeclared = sorted(read - set(contract.CONTRACT))
    assert not undeclared, f"declare these in mxspec/estate/contract.py: {undeclared}"


def connection_names() -> set[str]:
    """String constants of the modules that connect: the connection variables they read."""
    found: set[str] = set()
    for path in [PACKAGE / "estate" / "inventory.py", *sorted((PACKAGE / "transport").glob("*.py"))]:
        found |= {node.value for node in ast.walk(ast.parse(path.read_text()))
                  if isinstance(node, ast.Constant) and isinstance(node.value, str)}
    return found


def test_nothing_declared_is_unused():
    read = {name for names in reads_by_function().values() for name in names}
    used = feature_references() | read | connection_names()
    unused = sorted(name for name, variable in contract.CONTRACT.items()
                    if name not in used)
    assert not unused, f"declared but read by no feature, step, check or connection: {unused}"


def test_what_the_contract_says_a_step_needs_the_step_reads():
    reads = reads_by_function()
    checks_read = {name for function, names in reads.items() if function.startswith("checks.") for name in names}
    for variable in contract.VARIABLES:
        for step in variable.steps:
            assert step in reads, f"{variable.name}: no step function {step}"
            assert variable.name in reads[step] or variable.name in checks_read, \
                f"{variable.name}: {step} does not read it"


def test_a_step_reading_a_required_variable_declares_it():
    steps_dir = {path.stem for path in (PACKAGE / "steps").glob("*.py")}
    for function, names in reads_by_function().items():
        if function.split(".")[0] not in steps_dir or function.split(".")[1].startswith("_"):
            continue
        for name in names:
            variable = contract.CONTRACT[name]
            if variable.required and not variable.connection:
                assert function in variable.steps, f"{function} reads {name}: add it to {name}'s steps"


def test_examples_and_defaults_have_their_declared_type():
    for variable in contract.VARIABLES:
        example = variable.example
        if variable.type.name.startswith("list") or variable.type.name in ("host mapping", "mapping", "list of roles"):
            import yaml
            example = yaml.safe_load(example)
        elif variable.type in (contract.SECONDS, contract.COUNT, contract.PORT):
            example = float(example) if "." in example else int(example)
        assert variable.type.check(example) is None, f"{variable.name}: example {example!r}"
        if not variable.required and variable.default is not None and not variable.connection:
            assert variable.type.check(variable.default) is None, f"{variable.name}: default"


def test_near_misses_and_types():
    assert contract.near_miss("local_domain") == "local_domains"
    assert contract.near_miss("smtp_nmae") == "smtp_name"
    assert contract.near_miss("ntp_servers") is None and contract.near_miss("local_domains") is None
    assert contract.problem("queue_limit", "twenty") is not None
    assert contract.problem("queue_limit", "20") is None and contract.typed("queue_limit", "20") == 20
    assert "item 2" in (contract.problem("local_domains", ["example.org", "not a domain"]) or "")
    assert contract.problem("local_domains", "example.org") is not None  # a text where a list is expected
    assert contract.problem("relay_refused_with", "554 5.7.1") is None
    assert contract.problem("mailstore", {"ansible_host": "store"}) is not None  # no maildir_root


def test_host_parameters_are_declared_once_with_defaults_from_the_host():
    assert contract.host_parameters({"smtp_name": "mx1.example.org"}, "mx1")["myhostname"] == "mx1.example.org"
    assert contract.host_parameters({}, "mx2.example.org")["myhostname"] == "mx2.example.org"
    assert set(contract.HOST_PARAMETERS) >= {"myhostname", "inet_interfaces", "smtp_bind_address"}


def test_the_readme_inventory_table_is_the_contract():
    readme = (PROJECT / "README.md").read_text()
    block = readme.split("<!-- inventory variables: the output of `mxspec vars --markdown` -->\n", 1)[1]
    block = block.split("<!-- end of inventory variables -->", 1)[0]
    rows = [line for line in block.splitlines() if line.startswith("| `")]
    assert [re.match(r"\| `([^`]+)`", row).group(1) for row in rows] == [v.name for v in contract.VARIABLES]
    from mxspec.cli import vars_markdown
    assert block == vars_markdown(), "README's inventory variables are out of date: paste `mxspec vars --markdown`"


def test_no_project_file_names_a_variable_outside_the_contract_in_inventories():
    """The lab's estate files set nothing mxspec does not read, apart from connection details."""
    for path in sorted(Path(PROJECT / "inventories").glob("*.yml")):
        text = path.read_text()
        names = set(re.findall(r"^\s*([a-z_][a-z0-9_]*):", text, re.M)) - {"all", "vars", "children", "hosts"}
        names -= {"maildir_root", "inbound-mx", "smtp-router", "outbound-mx"}
        unknown = sorted(n for n in names if n not in contract.CONTRACT)
        assert not unknown, f"{path.name} sets undeclared variables: {unknown}"
