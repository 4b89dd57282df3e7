"""Unreachable and hung hosts: tried once within a bound, their scenarios fail at once, others carry on."""

import socket
import textwrap
import time

import pytest

from conftest import LAB_SSH_CONFIG, output, run_mxspec_pytest
from silent import silent_server


@pytest.fixture
def silent_port():
    """A hung sshd on loopback."""
    with silent_server() as port:
        yield port


def closed_port() -> int:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return port


def test_unreachable_and_hung_hosts_fail_fast_while_a_good_host_passes(lab, tmp_path, silent_port):
    (tmp_path / "mixed.yml").write_text(textwrap.dedent(f"""\
        all:
          vars: {{ansible_user: root, queue_limit: 50}}
          children:
            smtp-router:
              hosts:
                good-router: {{ansible_host: new-router-1, mxspec_ssh_config: {LAB_SSH_CONFIG}}}
                refused-router: {{ansible_host: 127.0.0.1, ansible_port: {closed_port()}}}
                hung-router: {{ansible_host: 127.0.0.1, ansible_port: {silent_port}}}
        """))
    started = time.monotonic()
    result = run_mxspec_pytest("--hosts=mixed", f"--inventories={tmp_path}", "--mx-connect-timeout=2",
                               "-k", "configuration_is_valid or queue_is_short", "-rA")
    elapsed = time.monotonic() - started
    text = output(result)
    assert result.returncode == 1, text
    assert "Traceback" not in text
    assert "4 failed, 2 passed" in text, text
    # Count in the failure reports only: the one-line summary repeats them when the terminal is wide.
    failures = text.split("short test summary info")[0]
    assert failures.count("host refused-router unreachable: ") == 2 and "Connection refused" in failures
    assert failures.count("host hung-router unreachable: ") == 2
    assert "timed out" in failures.split("host hung-router unreachable: ")[1].splitlines()[0]
    # Each bad host is tried once: two bounded attempts, not one per scenario.
    assert elapsed < 25, f"took {elapsed:.0f} s"
