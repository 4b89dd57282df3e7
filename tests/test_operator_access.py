"""Real estates are reached as an operator, through a bastion, with sudo: the lab's estate hosts
accept the operator account `ops` only from lab-bastion, and the whole new-estate suite passes that way."""

import time

import yaml

from conftest import LAB_SSH_CONFIG, PROJECT, lab_ssh, output, run_mxspec_pytest
from faults import edit, injected

JUMP = "-o ProxyJump=ops@lab-bastion"


def operator_ssh(host: str, command: str, *options: str):
    import subprocess

    # A connection of its own each time: never one multiplexed over an earlier login's master.
    return subprocess.run(["ssh", "-F", LAB_SSH_CONFIG, "-o", "User=ops", "-o", "BatchMode=yes",
                           "-o", "ControlMaster=no", "-o", "ControlPath=none",
                           "-o", "ConnectTimeout=5", *options, host, command],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def operator_inventory(directory):
    """The new estate as an operator reaches it: own account, through the bastion, sudo for root."""
    inventory = yaml.safe_load((PROJECT / "inventories/new-mx.yml").read_text())
    inventory["all"]["vars"].update(ansible_user="ops", ansible_become=True,
                                    ansible_ssh_common_args=JUMP)
    (directory / "new-mx.yml").write_text(yaml.safe_dump(inventory))
    return directory


def test_operators_reach_estate_hosts_only_through_the_bastion(lab):
    direct = operator_ssh("new-router-1", "true")
    assert direct.returncode == 255 and "Permission denied" in direct.stderr, direct.stderr
    jumped = operator_ssh("new-router-1", "id -un; sudo -n id -un", "-o", "ProxyJump=ops@lab-bastion")
    assert jumped.returncode == 0 and jumped.stdout.split() == ["ops", "root"], jumped.stderr


def test_the_new_estate_passes_as_an_operator_through_the_bastion_with_sudo(lab, tmp_path):
    since = lab_ssh("new-router-2", "date '+%Y-%m-%d %H:%M:%S'").stdout.strip()
    # One host after another, as every --mx-change run is by default: in parallel, a change scenario
    # restarting a router defers the mail an inbound MX's delivery scenario sends through that router.
    result = run_mxspec_pytest("--hosts=new-mx", f"--inventories={operator_inventory(tmp_path)}", "--mx-change",
                               "-rs", timeout=900)
    text = output(result)
    summary = result.stdout.strip().splitlines()[-1]
    assert result.returncode == 0 and " passed" in summary and "failed" not in summary and "error" not in summary, text
    assert "run with --mx-change" not in text  # the change scenarios ran: journal and restore through sudo
    sudo_log = lab_ssh("new-router-2", f"journalctl -q --no-pager -t sudo --since '{since}'").stdout
    assert "ops : " in sudo_log and "USER=root" in sudo_log, sudo_log


def test_a_sudo_that_wants_a_password_fails_fast_naming_host_and_user(lab, tmp_path):
    with injected(edit("new-router-1", "/etc/sudoers.d/ops", "s/NOPASSWD: //")):
        started = time.monotonic()
        result = run_mxspec_pytest("--hosts=new-mx", f"--inventories={operator_inventory(tmp_path)}",
                                   "-k", "new-router-1")
        seconds = time.monotonic() - started
    text = output(result)
    assert result.returncode == 1, text
    assert ("host new-router-1 unreachable: as ops, `sudo -n` to root refused: "
            "sudo: a password is required") in text, text
    assert "Traceback" not in text
    assert seconds < 60, f"took {seconds:.0f} s"
