"""The layout keeps its promises: one adapter, one transport, one way to wait (see ARCHITECTURE.md)."""

import ast
import importlib
import re
import time

import pytest

import mxspec
from conftest import PROJECT
from mxspec.core.waiting import Definite, eventually, poll

PACKAGES = ["core", "estate", "transport", "checks", "canary", "steps", "bdd", "report", "lab", "premerge"]
PYTHON = [path for folder in ("mxspec", "bench", "tests", "steps", "features")
          for path in sorted((PROJECT / folder).rglob("*.py")) if "builtin" not in path.parts]
BDD_INTERNALS = re.compile(r"pytest_bdd\.(scenario|steps|parser|compat|utils)\b|_registry\b|_pytest_bdd_example"
                           r"|find_fixturedefs_for_step|_fixturemanager")
TESTINFRA_PRIVATE = re.compile(r"\b_build_ssh_command\b|testinfra\.backend\b|from testinfra\b")


def _holding(pattern: re.Pattern) -> set[str]:
    this = PROJECT / "tests" / "test_architecture.py"
    return {str(path.relative_to(PROJECT)) for path in PYTHON if path != this and pattern.search(path.read_text())}


def test_pytest_bdd_internals_are_touched_in_the_adapter_only():
    assert _holding(BDD_INTERNALS) == {"mxspec/bdd/adapter.py"}


def test_pytests_own_internals_are_touched_in_the_adapter_only():
    private = re.compile(r"^\s*(import|from) _pytest\b", re.M)
    assert {path for path in _holding(private) if path.startswith("mxspec/")} == {"mxspec/bdd/adapter.py"}


def test_testinfra_backends_are_touched_in_the_transport_only():
    assert {path for path in _holding(TESTINFRA_PRIVATE) if not path.startswith("mxspec/transport/")} == set()


def test_ansible_core_is_imported_in_the_vault_only():
    """ansible-core is optional: only decrypting a vault may need it (the tests use it as an oracle).
    premerge's callback plugin is Ansible's to load, inside ansible-playbook: mxspec never imports it."""
    imports = re.compile(r"^\s*(import|from) ansible\b|import_module\(\"ansible[.\"]", re.M)
    assert {p for p in _holding(imports) if p.startswith("mxspec/")} == {
        "mxspec/estate/vault.py", "mxspec/premerge/ansible/mxspec_record.py"}
    assert not (PROJECT / "mxspec/premerge/ansible/__init__.py").exists()  # a plugin folder, not a package


def test_ssh_command_lines_are_built_in_the_transport_only():
    package = {path for path in _holding(re.compile(r'\[\s*"ssh"|execvp\("ssh"')) if path.startswith("mxspec/")}
    assert package == {"mxspec/transport/openssh.py"}


def _poll_loops(path) -> list[int]:
    """Lines of loops that sleep between rounds: hand-written polling."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.While, ast.For)):
            for inner in ast.walk(node):
                if (isinstance(inner, ast.Call) and isinstance(inner.func, ast.Attribute)
                        and inner.func.attr == "sleep"):
                    found.append(node.lineno)
                    break
    return found


def test_every_poll_goes_through_the_waiting_helper():
    loops = {str(path.relative_to(PROJECT)): _poll_loops(path) for path in PYTHON}
    hand_written = {path: lines for path, lines in loops.items() if lines and path != "mxspec/core/waiting.py"}
    assert hand_written == {}, "use mxspec.core.waiting.poll (or eventually) instead"
    assert loops["mxspec/core/waiting.py"], "the one polling loop is in mxspec.core.waiting"


@pytest.mark.parametrize("package", PACKAGES)
def test_each_layer_says_what_it_owns_and_may_import(package):
    doc = importlib.import_module(f"mxspec.{package}").__doc__ or ""
    assert "Owns:" in doc and "May import:" in doc, doc


def test_the_package_names_few_things():
    assert mxspec.__all__ == ["BadInput", "BehaviourFailed", "CommandTimeout", "HostUnreachable", "MxspecError",
                              "__version__"]
    assert issubclass(mxspec.BehaviourFailed, AssertionError) and mxspec.BadInput is mxspec.MxspecError


def test_poll_answers_as_soon_as_the_probe_does():
    answers = iter([None, None, "there"])
    assert poll(5, lambda: next(answers), interval=0.01) == "there"


def test_poll_gives_up_after_its_bound():
    started = time.monotonic()
    assert poll(0.2, lambda: None, interval=0.05) is None
    assert 0.2 <= time.monotonic() - started < 2


def test_a_definite_answer_ends_the_wait_at_once():
    def bounced():
        raise Definite("status=bounced: waiting longer cannot help")

    started = time.monotonic()
    with pytest.raises(Definite, match="status=bounced"):
        eventually(30, bounced, interval=0.01)
    assert time.monotonic() - started < 1


def test_eventually_retries_until_the_check_passes_then_says_how_long_it_waited():
    tries = []

    def check():
        tries.append(1)
        assert len(tries) >= 3, "not yet"
        return len(tries)

    assert eventually(5, check, interval=0.01) == 3
    with pytest.raises(AssertionError, match=r"^still, after 0.1 s: never$"):
        eventually(0.1, lambda: (_ for _ in ()).throw(AssertionError("never")), interval=0.02)
