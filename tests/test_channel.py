"""The persistent channel (transport/channel.py) on this machine: framing, bounds, re-opening, facts.

The same loop runs on the lab's hosts over ssh (tests/test_channel_lab.py); here it runs in a
local shell, which is the `local` kind's line, so every case is quick and needs no lab.
"""

import fcntl
import os
import select
import shlex
import signal
import threading
import time

import pytest

from mxspec.core.errors import CommandTimeout, HostUnreachable
from mxspec.core.waiting import poll
from mxspec.estate.inventory import Host
from mxspec.transport import channel
from mxspec.transport.connection import ConnectionPool
from mxspec.transport.shared import Answer, SharedAnswers


def local_host(name: str = "here") -> Host:
    return Host(name=name, estate="test", where="test", roles=["inbound"], vars={"ansible_connection": "local"})


@pytest.fixture
def pool():
    pool = ConnectionPool(connect_timeout=5, command_timeout=2, is_fact=lambda command: command == "date +%s%N")
    yield pool
    pool.close()


def loop_pid(connection) -> str:
    # The command's parent is `timeout`, whose parent is the loop.
    return connection.run("ps -o ppid= -p $PPID").stdout.strip()


@pytest.mark.parametrize("command, rc, stdout, stderr", [
    ("printf 'no newline at the end'", 0, "no newline at the end", ""),
    ("printf 'a\\n\\nb\\n\\n'; echo oops >&2; exit 7", 7, "a\n\nb\n\n", "oops\n"),
    ("echo one\necho two\n\necho 'three  spaced'", 0, "one\ntwo\nthree  spaced\n", ""),
    ("printf '\\\\n%s 0\\n' fake-token; echo real", 0, "\\nfake-token 0\nreal\n", ""),  # looks like a frame end
    ("echo 'ends in a backslash \\'", 0, "ends in a backslash \\\n", ""),
    ("cat", 0, "", ""),  # stdin is not the channel's: a command reading it gets end of file at once
    ("head -c 300000 /dev/zero | tr '\\0' x", 0, "x" * 300000, ""),
], ids=["no-final-newline", "stderr-and-status", "several-lines", "fake-frame-end", "backslash", "stdin",
        "large-output"])
def test_every_command_comes_back_exactly(pool, command, rc, stdout, stderr):
    connection = pool.get(local_host())
    result = connection.run(command)
    assert (result.rc, result.stdout, result.stderr) == (rc, stdout, stderr)


def test_one_loop_runs_every_command(pool):
    connection = pool.get(local_host())
    first = loop_pid(connection)
    for _ in range(20):
        assert connection.run("true").rc == 0
    assert loop_pid(connection) == first


def test_a_hung_command_is_killed_and_the_next_runs_on_the_same_channel(pool):
    connection = pool.get(local_host())
    first = loop_pid(connection)
    started = time.monotonic()
    with pytest.raises(CommandTimeout, match=r"host here: `sleep 60`: no answer within 2 s \(killed on the host\)"):
        connection.run("sleep 60")
    assert time.monotonic() - started < 5
    assert connection.run("echo next").stdout == "next\n"
    assert loop_pid(connection) == first


def test_a_command_that_exits_124_itself_is_not_a_timeout(pool):
    assert pool.get(local_host()).run("exit 124").rc == 124


def test_a_killed_channel_is_opened_again_once_and_the_command_run_on_it(pool):
    connection = pool.get(local_host())
    first = loop_pid(connection)
    os.killpg(connection.backend.channel().process.pid, signal.SIGKILL)
    assert connection.run("echo after").stdout == "after\n"
    assert loop_pid(connection) != first
    [notice] = connection.notices()
    assert notice.startswith("host here: its channel died (")
    assert "opened again, and the command it was given run on the new one" in notice


def test_a_channel_that_cannot_be_opened_again_makes_the_host_unreachable(pool, tmp_path):
    connection = pool.get(local_host())
    connection.check()
    gate = tmp_path / "reachable"
    gate.touch()
    # From now on the line that opens the channel fails as ssh fails when the host is gone.
    connection.backend.channel().process_line = f"[ -e {gate} ] || {{ echo 'ssh: connect: No route to host' >&2; exit 255; }}; " \
        + connection.backend.channel().process_line
    gate.unlink()
    os.killpg(connection.backend.channel().process.pid, signal.SIGKILL)
    with pytest.raises(HostUnreachable, match="host here unreachable: connection lost: ssh: connect: No route to host"):
        connection.run("true")
    with pytest.raises(HostUnreachable):  # for the rest of the run, at once
        connection.run("true")


def test_a_host_without_timeout_is_refused_with_the_reason():
    died = _open_with("PATH=/nonexistent")
    assert died.status == channel.NO_TIMEOUT
    assert b"no 'timeout' command (GNU coreutils) on this host" in died.stderr


def _open_with(environment: str) -> channel.ChannelDied:
    line = f"{environment} /bin/sh -c {shlex.quote(channel.LOOP)}"
    opened = channel.Channel(line, first_answer_within=5)
    try:
        with pytest.raises(channel.ChannelDied) as died:
            opened.run("true", 5)
    finally:
        opened.close()
    return died.value


def test_facts_are_read_once_until_forgotten(pool):
    connection = pool.get(local_host())
    connection.check()
    connection.testinfra.transcript = transcript = []
    first = connection.run("date +%s%N").stdout
    assert connection.run("date +%s%N").stdout == first  # the fact, as read
    assert connection.run("date +%s%N; true").stdout != first  # not a fact: run again
    assert [command.known for command in transcript] == [False, True, False]
    pool.forget_facts()
    assert connection.run("date +%s%N").stdout != first


def shared_pool(directory, name: str = "here") -> ConnectionPool:
    """A pool as a distributed run's worker has it: `date +%s%N` a fact whose answer holds for the run."""
    return ConnectionPool(connect_timeout=5, command_timeout=2, is_fact=lambda command: command.startswith("date"),
                          shared=SharedAnswers(str(directory)), is_shared=lambda command: command == "date +%s%N")


def test_an_answer_that_holds_for_the_run_is_left_for_the_runs_other_processes(tmp_path):
    reader, asker = shared_pool(tmp_path), shared_pool(tmp_path)
    try:
        first = reader.get(local_host()).run("date +%s%N").stdout
        connection = asker.get(local_host())
        connection.testinfra.transcript = transcript = []
        assert connection.run("date +%s%N").stdout == first  # the other process's answer, taken as read
        assert connection.run("date +%s%N; true").stdout != first  # not shared: run here
        connection.run("date +%s")  # a fact, but not one that holds for the run: run here, and not left
        # Taken without reaching the host; the host reached for the others only (its first `true`, then two).
        assert [(command.command, command.known) for command in transcript] == [
            ("date +%s%N", True), ("true", False), ("date +%s%N; true", False), ("date +%s", False)]
        assert connection.testinfra.commands == 3
        assert SharedAnswers(str(tmp_path)).get("here", "date +%s") is None
        assert SharedAnswers(str(tmp_path)).get("elsewhere", "date +%s%N") is None  # another host's own
    finally:
        reader.close()
        asker.close()


def test_a_shared_answer_is_taken_without_reaching_the_host(tmp_path):
    """An estate's worker needs no connection to a host whose answer another worker left; a host that
    answers nothing else stays unreachable for what it was not asked before."""
    unreachable = Host(name="gone", estate="test", where="test", roles=["inbound"],
                       vars={"ansible_host": "127.0.0.1", "ansible_port": "1", "ansible_user": "nobody"})
    SharedAnswers(str(tmp_path)).put("gone", "date +%s%N", Answer(0, "12345\n", ""))
    pool = shared_pool(tmp_path)
    try:
        connection = pool.get(unreachable)
        assert connection.run("date +%s%N").stdout == "12345\n"
        assert connection.testinfra.commands == 0
        with pytest.raises(HostUnreachable):
            connection.run("date +%s%N; true")
    finally:
        pool.close()


def test_a_host_not_reached_yet_waits_for_its_answer_and_a_host_gone_gets_none_it_had(tmp_path):
    """The estate's worker waits for what the host's own worker is sure to leave, within one bound for
    the process; and once a host is found unreachable, no answer read before is given for it."""
    unreachable = Host(name="gone", estate="test", where="test", roles=["inbound"],
                       vars={"ansible_host": "127.0.0.1", "ansible_port": "1", "ansible_user": "nobody"})
    pool = shared_pool(tmp_path)
    pool.awaited = {"gone"}
    later = threading.Timer(0.3, lambda: SharedAnswers(str(tmp_path)).put("gone", "date +%s%N", Answer(0, "7\n", "")))
    later.start()
    try:
        connection = pool.get(unreachable)
        assert connection.run("date +%s%N").stdout == "7\n"  # waited for, the host never reached
        with pytest.raises(HostUnreachable):
            connection.run("true")
        with pytest.raises(HostUnreachable):  # found unreachable: the answer it had is not given for it
            connection.run("date +%s%N")
    finally:
        later.cancel()
        pool.close()


def test_a_wait_for_a_shared_answer_ends_when_it_comes_or_is_refused_or_at_its_bound(tmp_path):
    shared = SharedAnswers(str(tmp_path))
    later = threading.Timer(0.3, lambda: shared.put("mx-1", "postconf", Answer(0, "a = b\n", "")))
    later.start()
    started = time.monotonic()
    assert shared.get("mx-1", "postconf", wait=10) == Answer(0, "a = b\n", "")
    assert time.monotonic() - started < 2
    shared.refuse("mx-1", "postconf")  # an answer left already stays
    assert shared.get("mx-1", "postconf") == Answer(0, "a = b\n", "")
    shared.refuse("mx-2", "postconf")
    started = time.monotonic()
    assert shared.get("mx-2", "postconf", wait=10) is None
    assert time.monotonic() - started < 1
    started = time.monotonic()
    assert shared.get("mx-3", "postconf", wait=0.5) is None
    assert 0.5 <= time.monotonic() - started < 2


def test_processes_sharing_a_hosts_master_do_their_first_contact_with_it_one_at_a_time(tmp_path):
    """Two workers checking pieces of one host: the second's first-contact work (the look for an interrupted
    run's changes) waits for the first's, and so finds nothing left to restore, instead of running beside it."""
    happened: list[str] = []
    first_inside, first_may_end = threading.Event(), threading.Event()

    def slow_contact(connection):
        happened.append("first starts")
        first_inside.set()
        first_may_end.wait(10)
        happened.append("first ends")

    pools = [ConnectionPool(connect_timeout=5, command_timeout=2, control_dir=str(tmp_path),
                            on_contact=contact) for contact in (slow_contact, lambda c: happened.append("second"))]
    try:
        first = threading.Thread(target=pools[0].get(local_host()).check)
        first.start()
        assert first_inside.wait(10)
        second = threading.Thread(target=pools[1].get(local_host()).check)
        second.start()
        second.join(0.5)
        assert second.is_alive() and happened == ["first starts"], happened  # waiting its turn
        first_may_end.set()
        first.join(10)
        second.join(10)
        assert happened == ["first starts", "first ends", "second"]
    finally:
        first_may_end.set()
        for each in pools:
            each.close()


def test_a_first_contact_that_does_not_end_is_waited_for_within_a_bound_and_said(tmp_path):
    """A process still at its first contact with the host (a kind whose commands testinfra runs unbounded)
    is waited for a connection's and two commands' time at most; then this one goes on, and the run says so."""
    pool = ConnectionPool(connect_timeout=0.5, command_timeout=0.5, control_dir=str(tmp_path),
                          on_contact=lambda connection: None)
    with open(tmp_path / "here.sock.contact", "a") as held:  # another process's turn, never ending
        fcntl.flock(held, fcntl.LOCK_EX)
        try:
            connection = pool.get(local_host())
            started = time.monotonic()
            connection.check()
            assert 1.4 < time.monotonic() - started < 5
            assert connection.notices() == ["host here: another of the run's processes was still making its first "
                                            "contact with the host after 1.5 s; this one went on beside it"]
        finally:
            pool.close()


def test_a_run_keeps_a_bounded_number_of_hosts_connected(pool):
    from mxspec.transport.connection import OPEN_AT_ONCE

    hosts = [local_host(f"host-{n}") for n in range(OPEN_AT_ONCE + 3)]
    first = pool.get(hosts[0])
    loop = loop_pid(first)
    for host in hosts[1:]:
        pool.get(host).run("true")
    open_channels = [c for c in pool.connections.values() if c.backend.channel().process is not None]
    assert len(open_channels) == OPEN_AT_ONCE
    assert first.backend.channel().process is None  # the least recently used, closed
    assert pool.get(hosts[0]).run("echo back").stdout == "back\n"  # and opened again when its host comes back
    assert loop_pid(first) != loop
    assert first.notices() == []  # closed on purpose: not a channel that died


def test_a_host_opened_ahead_is_reached_before_its_first_command_which_runs_on_that_channel(pool, tmp_path):
    started = tmp_path / "started"
    connection = pool.get(local_host())
    connection.backend.channel().process_line = f"touch {started}; " + connection.backend.channel().process_line
    pool.open_ahead([local_host()])
    process = connection.backend.channel().process
    assert process is not None and connection.testinfra.commands == 0
    assert poll(2, lambda: started.exists() or None, interval=0.02)  # the line runs in the background
    connection.check()
    assert connection.run("echo first").stdout == "first\n"
    assert connection.backend.channel().process is process
    assert connection.notices() == []


def test_a_channel_opened_ahead_that_answered_then_died_idle_is_opened_again_once(pool):
    """Another process may end the loop before its first command (a worker checking another piece of the
    host, the host's sshd restarting): it had answered as it opened, so it is opened again, as any
    channel that dies, and the host is not taken for unreachable."""
    connection = pool.get(local_host())
    pool.open_ahead([local_host()])
    process = connection.backend.channel().process
    assert poll(5, lambda: select.select([process.stdout], [], [], 0)[0] or None, interval=0.02)  # it answered
    os.killpg(process.pid, signal.SIGKILL)
    connection.check()
    assert connection.run("echo after").stdout == "after\n"
    [notice] = connection.notices()
    assert notice.startswith("host here: its channel died (")


def test_a_host_opened_ahead_that_cannot_be_reached_is_unreachable_and_its_channel_not_opened_again(pool):
    connection = pool.get(local_host())
    connection.backend.channel().process_line = "echo 'ssh: connect: No route to host' >&2; exit 255"
    pool.open_ahead([local_host()])
    with pytest.raises(HostUnreachable, match="host here unreachable: ssh: connect: No route to host"):
        connection.run("true")
    assert connection.notices() == []  # never answered: not a channel that died and was opened again
    pool.open_ahead([local_host()])  # not tried again
    assert connection.backend.channel().process is None


def test_opening_ahead_is_bounded_by_the_hosts_a_run_keeps_connected(pool):
    from mxspec.transport.connection import OPEN_AT_ONCE

    pool.open_ahead([local_host(f"host-{n}") for n in range(OPEN_AT_ONCE + 3)])
    running = [c for c in pool.connections.values() if c.backend.channel().process is not None]
    assert len(running) == OPEN_AT_ONCE == len(pool.connections)


def test_a_channel_still_reaching_its_host_is_stopped_at_once_when_the_run_ends(pool):
    connection = pool.get(local_host())
    connection.backend.channel().process_line = "sleep 30"  # as ssh waiting for a host that does not answer
    pool.open_ahead([local_host()])
    started = time.monotonic()
    pool.close()
    assert time.monotonic() - started < 1
    assert connection.backend.channel().process is None
