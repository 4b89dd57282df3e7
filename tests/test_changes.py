"""Change scenarios: both estates pass them, they are opt-in, and the host is always put back.

Ctrl-C midway and a connection dropped midway are real here: a signal to the running pytest,
and a relay on loopback between mxspec and the lab host that is cut while the change is live.
"""

import os
import signal
import subprocess
import sys
import textwrap
import time

import yaml

from conftest import LAB_SSH_CONFIG, PROJECT, lab_ssh, output, run_mxspec_pytest
from hoststate import journals, snapshot
from mxspec.core.waiting import poll
from proxy import relay

ROUTERS = ("old-mx-1", "new-router-1", "new-router-2")
RELOAD = "test_a_setting_postfix_can_reload_is_reloaded_and_in_effect_on_the_wire"
PROBE = "mxspec-change-probe"  # what the reload scenario puts in smtpd_banner


def test_both_estates_pass_every_change_scenario_and_get_their_hosts_back(lab):
    before = {host: snapshot(host) for host in ROUTERS}
    # One worker per host: a host's change scenarios must not overlap.
    result = run_mxspec_pytest("--hosts=old-mx,new-mx", "--mx-change", "-m", "changes_host",
                               "-n", "3", "--dist", "loadgroup")
    text = output(result)
    assert result.returncode == 0 and "15 passed" in text, text
    for host in ROUTERS:
        assert snapshot(host) == before[host], f"{host} differs after the change scenarios"


def test_change_scenarios_do_not_run_unless_asked(lab):
    result = run_mxspec_pytest("--hosts=old-mx,new-mx", "-m", "changes_host", "-rs")
    text = output(result)
    assert result.returncode == 0 and "15 skipped" in text, text
    assert "not run: changes a host's configuration; run with --mx-change" in text
    assert not any(journals(host) for host in ROUTERS)


def _start(*args: str, inventories: str | None = None) -> subprocess.Popen:
    extra = [f"--inventories={inventories}"] if inventories else []
    return subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:randomly", "--hosts=old-mx", "--mx-change",
                             *extra, *args], cwd=PROJECT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, text=True, start_new_session=True,
                            env={**os.environ, "COLUMNS": "100"}, preexec_fn=_as_in_a_terminal)


def _as_in_a_terminal() -> None:
    """Ctrl-C as a terminal delivers it: a shell running these tests in the background ignores SIGINT,
    its children inherit that, and Python then never raises KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _wait_until_changed(process: subprocess.Popen, host: str, seconds: float = 60) -> None:
    """Until the scenario's change is live on the host (its journal written, main.cf changed)."""

    def changed() -> bool | None:
        if journals(host) and lab_ssh(host, f"grep -q {PROBE} /etc/postfix/main.cf", check=False).returncode == 0:
            return True
        assert process.poll() is None, "the scenario ended before its change was seen:\n" + process.stdout.read()
        return None

    assert poll(seconds, changed, interval=0.2), "the scenario's change never showed on the host"


def _away_from_the_minute(margin: int = 20) -> None:
    """The old estate picks changes up on the minute: start well clear of it, so the change is
    still waiting for pick-up when the test interrupts it."""
    poll(60, lambda: True if 2 <= time.gmtime().tm_sec <= 60 - margin else None, interval=0.5)


def test_ctrl_c_midway_puts_the_host_back_byte_for_byte(lab):
    before = snapshot("old-mx-1")
    _away_from_the_minute()
    process = _start(f"features/test_features.py::{RELOAD}[old-mx-1]")
    _wait_until_changed(process, "old-mx-1")
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in the terminal sends
    text, _ = process.communicate(timeout=180)
    assert process.returncode == 2 and "KeyboardInterrupt" in text, text
    assert snapshot("old-mx-1") == before, text


def test_a_dropped_connection_leaves_a_journal_the_next_run_restores_first(lab, tmp_path):
    before = snapshot("old-mx-1")
    with relay(("10.213.0.10", 22)) as cut_off:
        # The old estate as it is, but mxspec reaches old-mx-1 through the relay.
        inventory = yaml.safe_load((PROJECT / "inventories/old-mx.yml").read_text())
        (tmp_path / "relay_ssh_config").write_text(textwrap.dedent(f"""\
            Include {LAB_SSH_CONFIG}
            Host old-mx-1-via-relay
              HostName 127.0.0.1
              Port {cut_off.port}
              User root
              IdentityFile /var/lib/mxspec-lab/secrets/id_ed25519
              IdentitiesOnly yes
              StrictHostKeyChecking no
              UserKnownHostsFile /dev/null
              LogLevel ERROR
            """))
        for group in inventory["all"]["children"].values():
            if (group.get("hosts") or {}).get("old-mx-1"):
                group["hosts"]["old-mx-1"].update(ansible_host="old-mx-1-via-relay", smtp_address="10.213.0.10",
                                                  mxspec_ssh_config=str(tmp_path / "relay_ssh_config"))
        (tmp_path / "old-mx.yml").write_text(yaml.safe_dump(inventory))
        _away_from_the_minute()
        process = _start(f"features/test_features.py::{RELOAD}[old-mx-1]", inventories=str(tmp_path))
        _wait_until_changed(process, "old-mx-1")
        cut_off.cut()
        text, _ = process.communicate(timeout=180)
        # Nothing reaches the host through the relay any more.
        assert subprocess.run(["ssh", "-F", str(tmp_path / "relay_ssh_config"), "-o", "ConnectTimeout=5",
                               "old-mx-1-via-relay", "true"], capture_output=True, timeout=30).returncode != 0
    assert process.returncode == 1, text
    assert "Traceback" not in text
    assert "could not restore what this scenario changed" in text and "restores it first" in text, text
    left = journals("old-mx-1")
    assert len(left) == 1, f"expected the scenario's journal on the host, found {left}"
    assert snapshot("old-mx-1") != before  # the change is still there

    # The next run, over a good connection, restores before it checks anything (here in a
    # pytest-xdist worker, which hands its notice back to the run's summary).
    result = run_mxspec_pytest("--hosts=old-mx", "-k", "queue_is_short and old-mx-1", "-n", "2")
    text = output(result)
    assert result.returncode == 0 and "1 passed" in text, text
    notice = "host old-mx-1: restored what an interrupted run had changed"
    assert notice in text and text.index(notice) < text.index("1 passed"), text
    assert f"journal /var/lib/mxspec/changes/{left[0]}" in text
    assert snapshot("old-mx-1") == before
