"""A run over estates skips the full garbage collections pytest, then Python, make as it ends; a plain
pytest run keeps them.

No lab: the hosts are this machine (`ansible_connection: local`). A small plugin counts the full
collections made once the tests have run, and says at exit whether the heap was frozen (its atexit
hook, registered first, runs after mxspec's).
"""

import re
import textwrap

import pytest

from conftest import output, run_mxspec_pytest

WATCH = """\
    import atexit
    import gc

    import pytest

    seen = {"collections": 0}
    real_collect = gc.collect


    def counting_collect(*args, **kwargs):
        seen["collections"] += 1
        return real_collect(*args, **kwargs)


    def pytest_configure(config):
        gc.collect = counting_collect


    def pytest_sessionfinish(session):
        seen["collections"] = 0  # from here on: what pytest does as it ends


    atexit.register(lambda: print(f"GCWATCH collections={seen['collections']} frozen={gc.get_freeze_count()} "
                                  f"enabled={gc.isenabled()}"))
    """


@pytest.fixture
def project(tmp_path):
    (tmp_path / "gcwatch.py").write_text(textwrap.dedent(WATCH))
    (tmp_path / "test_bind.py").write_text("from pytest_bdd import scenarios\n\nscenarios('.')\n")
    (tmp_path / "checks.feature").write_text(textwrap.dedent("""\
        Feature: Local checks
          Scenario: True is quiet
            Then "true" reports no problems
        """))
    (tmp_path / "inventories").mkdir()
    (tmp_path / "inventories" / "here.yml").write_text(
        "all:\n  children:\n    inbound-mx:\n      hosts:\n"
        "        here-1: {ansible_host: localhost, ansible_connection: local}\n")
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "test_plain.py").write_text("def test_nothing():\n    pass\n")
    return tmp_path


def at_the_end(result) -> tuple[int, int, bool]:
    """Full collections once the tests had run, objects frozen at exit, whether collections were still on."""
    found = re.search(r"GCWATCH collections=(\d+) frozen=(\d+) enabled=(\w+)", output(result))
    assert found, output(result)
    return int(found.group(1)), int(found.group(2)), found.group(3) == "True"


def test_a_run_over_an_estate_makes_no_full_collections_at_its_end(project):
    result = run_mxspec_pytest("-p", "gcwatch", "-p", "no:cacheprovider", "--hosts=here", "--mx-parallel=1",
                               cwd=project, timeout=120, env={"PYTHONPATH": str(project)})
    assert result.returncode == 0, output(result)
    collections, frozen, enabled = at_the_end(result)
    assert collections == 0
    assert frozen > 10_000 and not enabled  # the interpreter's own collections at shutdown skip the run's heap


def test_a_plain_pytest_run_keeps_pytests_own_collections(project):
    """What the run above is measured against: pytest's default, five collections as it ends."""
    result = run_mxspec_pytest("-p", "gcwatch", "-p", "no:cacheprovider", "plain", cwd=project, timeout=120,
                               env={"PYTHONPATH": str(project)})
    assert result.returncode == 0, output(result)
    collections, frozen, enabled = at_the_end(result)
    assert collections >= 5
    assert frozen == 0 and enabled
