"""The persistent channel on the lab's hosts: the SysV host and systemd ones, a channel killed mid-run."""

import os
import subprocess
import textwrap
import time

import pytest

from conftest import PROJECT, lab_ssh, output, run_mxspec_pytest
from mxspec.core.errors import CommandTimeout
from mxspec.core.waiting import poll
from mxspec.estate.inventory import load_estate
from mxspec.transport import openssh
from mxspec.transport.connection import ConnectionPool, end_masters, make_control_dir


@pytest.mark.parametrize("estate, name", [("old-mx", "old-mx-1"), ("new-mx", "new-router-1")])
def test_a_hung_command_is_killed_on_the_host_and_the_channel_carries_on(lab, estate, name):
    host = load_estate(PROJECT / "inventories", estate).hosts[name]
    pool = ConnectionPool(command_timeout=2)
    try:
        connection = pool.get(host)
        loop = connection.run("ps -o ppid= -p $PPID").stdout.strip()
        with pytest.raises(CommandTimeout, match="no answer within 2 s"):
            connection.run("sleep 613")
        assert connection.run("ps -o ppid= -p $PPID").stdout.strip() == loop
        assert lab_ssh(name, "pgrep -f '[s]leep 613' || echo gone").stdout.strip() == "gone"
    finally:
        pool.close()
    time.sleep(0.5)  # the loop exits when its stdin closes; sshd reaps the session
    assert lab_ssh(name, "pgrep -f '[m]xspec-channel' || echo none").stdout.strip() == "none"


KILLER = '''
    """Kills each host's channels, on the host, once in the run: after the host's third scenario on the
    worker that gets there first (a host in pieces runs on several; each worker's channel dies, once)."""
    import os
    import subprocess

    done = {}

    def pytest_bdd_after_scenario(request, feature, scenario):
        target = request.getfixturevalue("mx_target")
        if target is None or target.host is None:
            return
        done[target.name] = done.get(target.name, 0) + 1
        if done[target.name] != 3:
            return
        try:
            os.close(os.open(os.path.join(os.environ["KILLED_DIR"], target.name), os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            return  # another worker has killed them
        subprocess.run(["ssh", "-F", "/var/lib/mxspec-lab/run/ssh_config", target.host.target,
                        "pkill -f '[m]xspec-channel'"], timeout=30, check=True)
'''


def test_a_channel_killed_mid_run_is_opened_again_and_the_run_completes(lab, tmp_path):
    (tmp_path / "channel_killer.py").write_text(textwrap.dedent(KILLER))
    (tmp_path / "killed").mkdir()
    result = run_mxspec_pytest("features", "--hosts=old-mx,new-mx", "-p", "channel_killer",
                               env={"PYTHONPATH": str(tmp_path), "KILLED_DIR": str(tmp_path / "killed")})
    text = output(result)
    assert result.returncode == 0, text
    assert "failed" not in text.splitlines()[-1], text
    for name in ("old-mx-1", "new-mx-in-1", "new-mx-in-2", "new-router-1", "new-router-2", "new-out-1"):
        assert f"host {name}: its channel died (" in text, text


def masters(socket: str) -> int:
    """Control master processes listening on `socket` (a master names itself `ssh: SOCKET [mux]`)."""
    return len([line for line in subprocess.run(["pgrep", "-af", "ssh: "], capture_output=True, text=True).stdout.splitlines()
                if f"{socket} [mux]" in line])


def ssh_connections(address: str) -> int:
    """This machine's TCP connections to the address's ssh port."""
    listed = subprocess.run(["ss", "-Htn", "state", "established", "dst", address, "( dport = :22 )"],
                            capture_output=True, text=True, check=True).stdout
    return len(listed.splitlines())


def test_processes_sharing_a_control_directory_ride_one_master_which_the_last_to_leave_ends(lab):
    host = load_estate(PROJECT / "inventories", "new-mx").hosts["new-router-1"]
    directory = make_control_dir()  # as a distributed run's controller makes it for its workers
    first, second = (ConnectionPool(command_timeout=5, control_dir=directory) for _ in range(2))
    socket = f"{directory}/new-router-1.sock"
    address = openssh.resolve(host.target, host.ssh_config)
    before = ssh_connections(address)
    try:
        assert first.get(host).run("echo first").stdout == "first\n"
        assert second.get(host).run("echo second").stdout == "second\n"
        assert masters(socket) == 1 and ssh_connections(address) == before + 1  # the second rode the first's
        first.close()
        assert masters(socket) == 1, "another process still uses the master: it stays"
        assert second.get(host).run("echo still").stdout == "still\n"
        assert second.notices() == []  # its channel never died
        second.close()
        assert not os.path.exists(socket), "the last to leave ends it, and waits until it is gone"
        assert poll(5, lambda: masters(socket) == 0 or None, interval=0.1)
    finally:
        first.close()
        second.close()
        end_masters(directory)
