"""A server that accepts the connection and then says nothing fails the step within the bound."""

import textwrap
import time

import pytest

from conftest import output, run_mxspec_pytest
from silent import silent_server

SILENT = "127.0.0.2"  # a loopback address of its own, so port 25 is free for the silent server


@pytest.fixture
def silent_smtp_server():
    try:
        with silent_server(SILENT, 25):
            yield
    except OSError as error:
        pytest.fail(f"cannot listen on {SILENT}:25 for the silent server: {error}")


def test_silent_smtp_server_fails_the_step_within_the_bound(tmp_path, silent_smtp_server):
    (tmp_path / "silent.yml").write_text(textwrap.dedent(f"""\
        all:
          children:
            inbound-mx:
              hosts:
                silent-mx:
                  ansible_host: localhost
                  ansible_connection: local
                  smtp_address: {SILENT}
                  smtp_name: silent-mx.example
                  greeting_seconds: 2
        """))
    started = time.monotonic()
    result = run_mxspec_pytest("--hosts=silent", f"--inventories={tmp_path}", "--mx-timeout=2", "-k", "greets")
    elapsed = time.monotonic() - started
    text = output(result)
    assert result.returncode == 1, text
    assert "features/common.feature:" in text and "Then the SMTP greeting arrives within" in text
    assert f"host silent-mx: SMTP greeting: {SILENT}:25 did not greet within 2 s" in text
    assert "Traceback" not in text
    assert elapsed < 20, f"took {elapsed:.0f} s"


def test_a_connection_this_machine_cannot_make_is_said_as_the_machines_not_the_hosts():
    """No route, or no such source address here (as with IPv6 on a runner without it): the runner's network
    is at fault, not the host. A source address this machine does not have fails at bind, sending nothing."""
    from mxspec import MxspecError
    from mxspec.transport.smtp import Session, converse

    async def greeting(session):
        return None

    with pytest.raises(MxspecError, match=r"greeting: this machine has no route to 127\.0\.0\.1:9 .*a way to that network"):
        converse(Session("127.0.0.1", 9, 2, source="198.51.100.7"), greeting, "greeting")
