"""Fixtures for mxspec's own tests: running mxspec as an operator would, and the lab."""

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent
LAB = PROJECT / "mxspec" / "lab" / "builtin"  # the built-in lab's definition
LAB_SSH_CONFIG = "/var/lib/mxspec-lab/run/ssh_config"


def run_mxspec_pytest(*args: str, cwd=PROJECT, timeout: float = 600, env: dict | None = None
                      ) -> subprocess.CompletedProcess:
    """`pytest ARGS` in a fresh process, as an operator types it; output combined."""
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:randomly", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                          env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "COLUMNS": "100", **(env or {})})


def run_mxspec(*args: str, timeout: float = 900, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mxspec.cli", *args], cwd=PROJECT, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL, **kwargs)


def lab_ssh(host: str, command: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(["ssh", "-F", LAB_SSH_CONFIG, host, command], capture_output=True, text=True,
                            timeout=120, stdin=subprocess.DEVNULL)
    if check and result.returncode != 0:
        raise AssertionError(f"{host}: `{command}` exited {result.returncode}: {result.stderr}")
    return result


def output(result: subprocess.CompletedProcess) -> str:
    return result.stdout + result.stderr


@pytest.fixture(scope="session")
def lab_up():
    """The built-in lab, up for the tests that need it; taken down after if this run started it."""
    if os.geteuid() != 0:
        pytest.skip("the lab needs root")
    was_up = run_mxspec("lab", "status").returncode == 0
    result = run_mxspec("lab", "up")
    assert result.returncode == 0, output(result)
    yield
    if not was_up and not os.environ.get("MXSPEC_KEEP_LAB"):
        down = run_mxspec("lab", "down")
        assert down.returncode == 0, output(down)


@pytest.fixture
def lab(lab_up):
    """The lab, healthy before each test that uses it: every host's configuration as it was at
    boot and every service ready, or healed so (`mxspec lab heal`), or the test fails at once
    naming the host and the cause, instead of waiting out its bounds on a broken lab."""
    from faults import lab_verified_healthy
    from mxspec import MxspecError
    from mxspec.lab.commands import heal

    try:
        healed = heal(LAB)
    except MxspecError as error:
        if "not running" not in str(error):
            pytest.fail(f"the lab is not healthy: {error}", pytrace=False)
        booted = run_mxspec("lab", "up")  # a host that stopped: boot it again, from its image
        if booted.returncode != 0:
            pytest.fail(f"the lab is not healthy ({error}) and `mxspec lab up` failed: {output(booted)}",
                        pytrace=False)
        healed = []
    lab_verified_healthy()
    for line in healed:  # an earlier test left the lab so: say it, that test has a bug
        warnings.warn(f"lab healed before the test: {line}", stacklevel=1)


def pytest_configure(config):
    config.addinivalue_line("markers", "lab: the test uses the lab (added to every test that asks for it)")


def pytest_collection_modifyitems(config, items):
    """Mark each test that uses the lab, so that `-m lab` / `-m "not lab"` split the suite by it."""
    for item in items:
        if "lab_up" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.lab)
