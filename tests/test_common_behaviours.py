"""The common features against the lab's real hosts: ids, role selection, and proof they can fail."""

import os
import re
import shutil
import time
from collections import Counter
from pathlib import Path

import pytest

from conftest import PROJECT, output, run_mxspec_pytest
from faults import injected, postconf, postfix_not_enabled_at_boot

OLD_HOSTS = ["old-mx-1"]
NEW_HOSTS = ["new-mx-in-1", "new-mx-in-2", "new-router-1", "new-router-2", "new-out-1"]


def collected_ids(*args):
    result = run_mxspec_pytest("--collect-only", "-q", *args)
    assert result.returncode == 0, output(result)
    return [line for line in result.stdout.splitlines() if "::" in line]


def test_ids_name_the_scenario_and_the_inventory_host():
    ids = collected_ids("--hosts=old-mx,new-mx")
    for host in OLD_HOSTS + NEW_HOSTS:
        assert f"features/test_features.py::test_the_postfix_configuration_is_valid[{host}]" in ids
    assert len([i for i in ids if "postfix_configuration" in i]) == 6


def test_dash_k_selects_a_host():
    ids = collected_ids("--hosts=old-mx,new-mx", "-k", "new-mx-in-1")
    assert ids and all(i.endswith("[new-mx-in-1]") for i in ids)


@pytest.mark.parametrize("estate, hosts", [("old-mx", OLD_HOSTS), ("new-mx", NEW_HOSTS)])
def test_both_estates_pass_the_common_behaviours(lab, estate, hosts):
    result = run_mxspec_pytest(f"--hosts={estate}", "-q",
                               "-m", "not (inbound_mx or smtp_router or outbound_mx or estate)")
    assert result.returncode == 0, output(result)
    scenarios = (PROJECT / "features/common.feature").read_text().count("Scenario:")
    assert f"{scenarios * len(hosts)} passed" in result.stdout, result.stdout


def test_the_new_estates_redundant_roles_are_configured_alike_and_single_hosts_have_nothing_to_compare(lab):
    result = run_mxspec_pytest("--hosts=old-mx,new-mx", "-k", "configured_alike", "-rs", "-p", "no:cacheprovider")
    text = output(result)
    assert result.returncode == 0 and "2 passed, 4 skipped" in result.stdout, text  # new-mx's inbound MXs and routers
    for estate, role in [("old-mx", "inbound-mx"), ("old-mx", "smtp-router"), ("old-mx", "outbound-mx"),
                         ("new-mx", "outbound-mx")]:
        assert f"estate {estate}: one host plays {role}: nothing to compare" in result.stdout, text


SSH_WATCH = """#!/bin/sh
echo "$*" >> "$(dirname "$0")/ssh.log"
exec {ssh} "$@"
"""


def channels_opened(log: Path) -> Counter:
    """Host -> channels the run opened to it (each an ssh process of its own), from the watching ssh's log."""
    return Counter(re.search(r"(\S+) exec /bin/sh -c", line).group(1)
                   for line in log.read_text().split("\n") if "exec /bin/sh -c" in line and " -O " not in line)


@pytest.mark.parametrize("parallel", ["1", "3"])
def test_a_roles_hosts_are_compared_on_what_was_read_as_each_was_first_contacted(lab, tmp_path, parallel):
    """Each host's effective configuration is read as it is first contacted, and the estate's scenario,
    run last, compares the hosts on those reads: one channel per host, where a distributed run opened
    two (the estate's worker reached every host again). The host configured otherwise is still found."""
    (tmp_path / "ssh").write_text(SSH_WATCH.format(ssh=shutil.which("ssh")))
    (tmp_path / "ssh").chmod(0o755)
    args = ("--hosts=new-mx", f"--mx-parallel={parallel}", "-k", "configured_alike or mail_software_is_installed")
    env = {"PATH": f"{tmp_path}:{os.environ['PATH']}"}
    started = time.monotonic()
    healthy = run_mxspec_pytest(*args, env=env)
    assert healthy.returncode == 0 and "7 passed, 1 skipped" in healthy.stdout, output(healthy)
    assert time.monotonic() - started < 40, output(healthy)  # no wait ran to its bound (--mx-timeout's 60 s)
    opened = channels_opened(tmp_path / "ssh.log")
    assert set(opened) == set(NEW_HOSTS), opened
    assert opened == {host: 1 for host in NEW_HOSTS}, output(healthy)
    with injected(postconf("new-mx-in-2", "message_size_limit", "1234567")):
        broken = run_mxspec_pytest(*args, env=env)
    assert broken.returncode == 1 and "1 failed" in broken.stdout, output(broken)
    assert "message_size_limit: new-mx-in-1 has 10240000; new-mx-in-2 has 1234567" in output(broken)


@pytest.mark.parametrize("host, estate, init", [("old-mx-1", "old-mx", "sysv"), ("new-router-2", "new-mx", "systemd")])
def test_postfix_not_enabled_at_boot_fails_the_scenario_that_says_so(lab, host, estate, init):
    args = (f"--hosts={estate}", "-k", f"start_again and {host}")
    with injected(postfix_not_enabled_at_boot(host, init)):
        broken = run_mxspec_pytest(*args)
    text = output(broken)
    assert broken.returncode == 1, text
    assert "1 failed" in text
    step = "Then these services are running and enabled at boot:"
    line = (PROJECT / "features/common.feature").read_text().splitlines().index(f"    {step}") + 1
    assert f"features/common.feature:{line}: {step}" in text
    assert "postfix: not enabled at boot" in text
    assert "not running" not in text  # it still runs: only the boot behaviour is missing
    restored = run_mxspec_pytest(*args)
    assert restored.returncode == 0 and "1 passed" in restored.stdout, output(restored)


def test_a_raw_ssh_spec_is_reached_with_its_user_port_and_ssh_config(lab):
    from mxspec.transport.backends import spec_variables

    assert spec_variables("ssh://admin@mx1.example.org:2222?ssh_config=/etc/mx/ssh_config&ssh_identity_file=/k") == {
        "ansible_host": "mx1.example.org", "ansible_user": "admin", "ansible_port": "2222",
        "mxspec_ssh_config": "/etc/mx/ssh_config", "ansible_ssh_private_key_file": "/k"}
    spec = "ssh://root@new-router-1?ssh_config=/var/lib/mxspec-lab/run/ssh_config"
    result = run_mxspec_pytest(f"--hosts={spec}", "--roles=smtp-router", "-k", "configuration_is_valid", "-v")
    assert result.returncode == 0, output(result)
    assert re.search(r"^.*PASSED.*test_the_postfix_configuration_is_valid\[root@new-router-1\]|"
                     r"test_the_postfix_configuration_is_valid\[root@new-router-1\] PASSED", result.stdout, re.M), \
        output(result)
