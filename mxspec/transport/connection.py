"""One shared, bounded connection per host for the whole run.

testinfra's default for a bare name (paramiko) pays ~50 ms a command, and plain `ssh://`
without a ControlPath opens a new connection per command (~450 ms). Every inventory host here
gets an OpenSSH control master in a run-local directory, so each command is one round trip
over an open connection; every command is bounded in time so a hung host cannot hang the run.
"""

import contextlib
import fcntl
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import testinfra.host
from testinfra.backend import base

from mxspec.core.errors import CommandTimeout, HostUnreachable, MxspecError
from mxspec.core.waiting import poll
from mxspec.estate.inventory import Host
from mxspec.transport import openssh
from mxspec.transport.backends import backend_for
from mxspec.transport.shared import Answer, SharedAnswers
from mxspec.transport.silence import Silences

CommandResult = base.CommandResult  # what running a command gave: rc, stdout, stderr


@dataclass
class Command:
    """A command as issued on a host, kept as evidence for the report."""

    command: str
    rc: int | None
    stdout: str
    stderr: str
    seconds: float
    known: bool = False  # a fact read earlier in the run, not run again


class CountingHost(testinfra.host.Host):
    """testinfra's Host that counts, times and (per scenario) records every command it runs.

    Facts — commands whose answer holds until the host is changed (`is_fact` says which) — are
    run once and their answer kept, until `forget_facts()`; a scenario that changes a host
    forgets them before and after it runs. Those whose answer holds for the whole run (`is_shared`)
    are also left for the run's other processes, and taken from them (transport/shared.py).
    """

    def __init__(self, backend: Any, is_fact: Callable[[str], bool] = lambda command: False, name: str = "",
                 shared: SharedAnswers | None = None, is_shared: Callable[[str], bool] = lambda command: False):
        super().__init__(backend)
        self.commands = 0
        self.seconds = 0.0
        self.transcript: list[Command] | None = None
        self.is_fact = is_fact
        self.facts: dict[str, base.CommandResult] = {}
        self.name = name
        self.shared = shared
        self.is_shared = is_shared
        # How long, from now, to wait for the host's shared answers another process is sure to leave (0: none).
        self.awaited: Callable[[], float] = lambda: 0.0

    def known(self, command: str, *args: str, wait: bool = False) -> base.CommandResult | None:
        """The answer to a fact read earlier in this run, here or by another of its processes, recorded
        as such; None if it has not been read: run it. `wait`: for a shared answer another process is
        sure to leave (`awaited`), up to its bound."""
        return self._known(base.BaseBackend.quote(command, *args), self.backend.get_command(command, *args), wait)

    def _known(self, asked: str, shown: str, wait: bool) -> base.CommandResult | None:
        known = self.facts.get(asked)
        if known is None and self.shared is not None and self.is_shared(asked):
            answer = self.shared.get(self.name, asked, wait=self.awaited() if wait else 0.0)
            if answer is not None:
                known = self.facts[asked] = self.backend.result(answer.rc, self.backend.encode(shown),
                                                                answer.stdout, answer.stderr)
        if known is not None:
            self._record(Command(shown, known.rc, known.stdout, known.stderr, 0.0, known=True))
        return known

    def run(self, command: str, *args: str, **kwargs: Any) -> base.CommandResult:
        asked = base.BaseBackend.quote(command, *args)  # as the check asked it, whoever it runs as
        shown = self.backend.get_command(command, *args)
        known = self._known(asked, shown, wait=False)
        if known is not None:
            return known
        started = time.monotonic()
        self.commands += 1
        try:
            result = super().run(command, *args, **kwargs)
        except CommandTimeout:
            self._record(Command(shown, None, "", "", time.monotonic() - started))
            raise
        self._record(Command(shown, result.rc, result.stdout, result.stderr, time.monotonic() - started))
        if result.rc == 0 and self.is_fact(asked):
            self.facts[asked] = result
            if self.shared is not None and self.is_shared(asked):
                self.shared.put(self.name, asked, Answer(result.rc, result.stdout, result.stderr))
        return result

    def forget_facts(self) -> None:
        self.facts.clear()

    def _record(self, command: Command) -> None:
        self.seconds += command.seconds
        if self.transcript is not None:
            self.transcript.append(command)


class Connection:
    """The connection to one inventory host, opened once and checked before first use."""

    def __init__(self, host: Host, control_dir: str, connect_timeout: float, command_timeout: float,
                 on_contact: "Callable[[Connection], None] | None" = None,
                 is_fact: Callable[[str], bool] = lambda command: False,
                 shared: SharedAnswers | None = None, is_shared: Callable[[str], bool] = lambda command: False):
        self.name = host.name
        self.on_contact = on_contact  # called once, right after the host first answers
        self.control_path = os.path.join(control_dir, f"{host.name}.sock")
        try:
            self.backend = backend_for(host, self.control_path, connect_timeout)
        except RuntimeError as error:  # testinfra: unknown transport, or its library missing
            raise MxspecError(f"host {host.name} ({host.where}): {error}") from None
        self.backend.command_timeout = command_timeout
        self.testinfra = CountingHost(self.backend, is_fact, host.name, shared, is_shared)
        self._checked = False
        self._unreachable: str | None = None
        self._users: Any = None  # the file this process holds locked (shared) while it uses the control master
        # The longest wait for another process's first contact with the host: its look for an interrupted run's
        # changes and its first reads, a command or two (`_first_contact_turn`).
        self._turn_within = connect_timeout + 2 * command_timeout
        self._said: list[str] = []  # what the run should say of this connection besides its channel's re-opening

    def use_master(self) -> None:
        """Before anything may reach the host (ConnectionPool.get): this process counts among the control
        master's users, until close().

        The master may be shared with the run's other processes (ConnectionPool's `control_dir`): each
        holds a shared lock on `<socket>.users` while it uses the master; the last to let go ends it
        (`close`). A process ending the master holds that lock exclusively until its socket is gone (at
        most MASTER_GONE_WITHIN), so another waits for the end, then starts a master of its own.
        """
        if self._users is None:
            self._users = open(self.control_path + ".users", "a")  # noqa: SIM115 - held until close()
            fcntl.flock(self._users, fcntl.LOCK_SH)

    def check(self) -> None:
        """Raise HostUnreachable, at once after the first failed try, unless the host answers."""
        if not self._checked:
            self._checked = True
            try:
                result = self.testinfra.run("true")
                if result.rc != 0:
                    self._unreachable = self._refused(result)
            except Exception as error:  # each transport fails its own way: decoded in one place
                self._unreachable = reason(error)
            if not self._unreachable and self.on_contact:
                with self._first_contact_turn():
                    self.on_contact(self)
        if self._unreachable:
            raise HostUnreachable(f"host {self.name} unreachable: {self._unreachable}")

    @contextlib.contextmanager
    def _first_contact_turn(self) -> Iterator[None]:
        """One process at a time does its first-contact work on the host (on_contact: restore what an
        interrupted run left changed, read what the estate scenarios will compare) among those sharing the
        control directory: a distributed run's workers, two of which may check pieces of one host. The next
        finds nothing left to restore, and the answers read, instead of restoring beside the first. A process
        that dies lets go at once; one still at it after `_turn_within` is not waited for any longer (a kind
        whose commands testinfra runs unbounded): this one goes on, and the run says so."""
        with open(self.control_path + ".contact", "a") as turn:
            if not poll(self._turn_within, lambda: _locked_now(turn, fcntl.LOCK_EX) or None, interval=0.05):
                self._said.append(f"host {self.name}: another of the run's processes was still making its first "
                                  f"contact with the host after {self._turn_within:g} s; this one went on beside it")
            yield  # the lock ends with the file's closing

    def _refused(self, result: base.CommandResult) -> str:
        """Why a trivial command failed: sudo's refusal said with the user and what to change."""
        said = _last_line(result.stderr) or f"exit {result.rc}"
        if not (getattr(self.backend, "sudo", False) and "sudo" in result.stderr):
            return said
        user = getattr(getattr(self.backend, "host", None), "user", None) or "the login user"
        become = getattr(self.backend, "sudo_user", None) or "root"
        return (f"as {user}, `sudo -n` to {become} refused: {said} (mxspec never answers a password "
                f"prompt: give {user} NOPASSWD sudo on the host, or connect as a user that needs no become)")

    def open_ahead(self) -> None:
        """Start reaching the host in the background, before a command needs it (kinds with a channel; a
        host found unreachable is not tried again): ssh's connection (~0.25 s on the lab, most of it the
        key exchange) is under way while the run collects, or checks the host before this one."""
        open_ahead = getattr(self.backend, "open_ahead", None)
        if open_ahead is not None and not self._unreachable:
            open_ahead()

    def run(self, command: str, *args: str) -> base.CommandResult:
        if not self._checked:  # read already (here, or by the host's own worker): the host need not be reached
            known = self.testinfra.known(command, *args, wait=True)
            if known is not None:
                return known
        self.check()  # once reached (or found unreachable), as every command: no answer for a host gone since
        try:
            return self.testinfra.run(command, *args)
        except CommandTimeout as error:
            raise CommandTimeout(f"host {self.name}: `{self.backend.get_command(command, *args)}`: {error}") from None
        except RuntimeError as error:
            self._unreachable = "connection lost: " + reason(error)
            raise HostUnreachable(f"host {self.name} unreachable: {self._unreachable}") from None

    def start(self, remote: str, why: str) -> subprocess.Popen[bytes]:
        """Start a long-lived command on the host (stdin, stdout and stderr are pipes to it).

        It ends with the connection, or as the command decides (e.g. when its stdin closes).
        Only kinds that run through a local process can hold one (ssh, local); `why` completes
        the error for the others ("scenarios that change a host need ...").
        """
        process_line = getattr(self.backend, "process_line", None)
        if process_line is None:
            raise MxspecError(f"host {self.name}: {why} the ssh or local transport")
        return subprocess.Popen(process_line(remote), shell=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True)

    def notices(self) -> list[str]:
        """What the run should say of this connection: each time its channel died and was re-opened."""
        return self._said + [
            f"host {self.name}: its channel died ({why}); opened again, and the command it was given run on the new one"
            for why in getattr(self.backend, "reopened", [])]  # kinds without a channel reopen nothing

    def close(self) -> None:
        """This process's channel ends; the control master too, unless another process still uses it."""
        close_channel = getattr(self.backend, "close", None)
        if close_channel is not None:
            close_channel()
        if self._users is None:
            return  # never reached the host: a master there is another process's
        users, self._users = self._users, None
        if not _locked_now(users, fcntl.LOCK_EX):  # another process still uses the master
            users.close()
            return
        try:
            if os.path.exists(self.control_path):
                openssh.end_control_master(self.control_path)
                # `-O exit` is answered before the master has gone: a process waiting for the lock must find
                # no socket, not one about to be unlinked (it starts a master of its own).
                poll(MASTER_GONE_WITHIN, lambda: None if os.path.exists(self.control_path) else True, interval=0.05)
        finally:
            users.close()


def _locked_now(file: Any, mode: int) -> bool:
    """Take the lock (`fcntl.LOCK_EX` or `LOCK_SH`) on the open file if no other process holds it, without waiting."""
    try:
        fcntl.flock(file, mode | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def reason(error: BaseException) -> str:
    """Why a transport failed, in one line: the one decoding of every transport's errors."""
    if isinstance(error, CommandTimeout):
        return str(error)
    if isinstance(error, RuntimeError):  # testinfra's ssh backend: ssh itself failed (exit 255)
        result = error.args[0] if error.args else None
        return _last_line(getattr(result, "stderr", "")) or "ssh failed"
    return f"{type(error).__name__}: {error}"  # paramiko and other transports raise their own errors


def as_unreachable(error: BaseException, name: str) -> BaseException:
    """An ssh failure raised through testinfra's modules (package, service, ...) as HostUnreachable."""
    if isinstance(error, RuntimeError) and error.args and hasattr(error.args[0], "stderr"):
        return HostUnreachable(f"host {name} unreachable: ssh failed: {error.args[0].stderr.strip()}")
    return error


def _last_line(text: str) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else ""


# Hosts a run's process keeps connected at once. Each costs an ssh master and a channel on both
# ends (~7 MB here, a session on the host); a run checks one host's scenarios after another, so
# the least recently used connection is closed when another is needed, and opened again if its
# host comes back (the mailstores every delivery reads stay in use, hence open).
OPEN_AT_ONCE = 8
# How long a control master asked to exit may take to remove its socket (it answers first).
MASTER_GONE_WITHIN = 2.0


class ConnectionPool:
    """Connections to every host of the run, made on first use, at most OPEN_AT_ONCE open, closed at the end.

    `control_dir`: where the control masters listen, shared by the run's processes (a distributed run's
    controller makes it, and ends what is left there when its workers are done: `end_masters`); each
    process's connection to a host then rides the master another made before it (a session, ~8 ms of
    CPU on both ends together, against ~140 ms for a connection of its own). Without it, a directory of
    this pool's own.
    """

    def __init__(self, connect_timeout: float = 10, command_timeout: float = 60,
                 on_contact: Callable[[Connection], None] | None = None,
                 is_fact: Callable[[str], bool] = lambda command: False,
                 shared: SharedAnswers | None = None, is_shared: Callable[[str], bool] = lambda command: False,
                 control_dir: str | None = None):
        self.owns_control_dir = control_dir is None
        self._control_dir = control_dir  # made on the first connection: a pool that makes none leaves nothing
        self.on_contact = on_contact
        self.is_fact = is_fact
        self.shared = shared  # the answers the run's processes leave each other: a distributed run's only
        self.is_shared = is_shared
        self.awaited: set[str] = set()  # hosts whose shared answers another process is sure to leave
        self._wait_ends: float | None = None  # one bound for all of this process's waits for them
        self.silences = Silences()  # endpoints that did not answer: later probes of them fail at once
        self.connect_timeout = connect_timeout
        self.command_timeout = command_timeout
        self.connections: dict[str, Connection] = {}
        self.recent: dict[str, Connection] = {}  # the ones that may be open, least recently asked for first

    @property
    def control_dir(self) -> str:
        if self._control_dir is None:
            self._control_dir = make_control_dir()
        return self._control_dir

    def get(self, host: Host) -> Connection:
        connection = self.connections.get(host.name)
        if connection is None:
            connection = self.connections[host.name] = Connection(
                host, self.control_dir, self.connect_timeout, self.command_timeout, self.on_contact, self.is_fact,
                self.shared, self.is_shared)
            if host.name in self.awaited:
                connection.testinfra.awaited = self._wait_left
        connection.use_master()
        self.recent.pop(host.name, None)
        self.recent[host.name] = connection  # the most recently asked for last
        while len(self.recent) > OPEN_AT_ONCE:
            self.recent.pop(next(iter(self.recent))).close()
        return connection

    def open_ahead(self, hosts: list[Host]) -> None:
        """Start reaching these hosts (at most OPEN_AT_ONCE: the first) before any command needs them. A
        host whose connection cannot be made (its transport) is left for its first scenario to report."""
        for host in hosts[:OPEN_AT_ONCE]:
            try:
                connection = self.get(host)
            except MxspecError:
                continue
            connection.open_ahead()

    def _wait_left(self) -> float:
        """What is left of the one bound on this process's waits for answers other processes leave: a host's
        connection and one command's time, from the first wait (its worker may be reaching it through a timeout)."""
        now = time.monotonic()
        if self._wait_ends is None:
            self._wait_ends = now + self.connect_timeout + self.command_timeout
        return max(0.0, self._wait_ends - now)

    def notices(self) -> list[str]:
        return [notice for connection in self.connections.values() for notice in connection.notices()]

    def forget_facts(self) -> None:
        """Before and after a scenario that changes a host: what was read may no longer hold."""
        for connection in self.connections.values():
            connection.testinfra.forget_facts()

    def stats(self) -> tuple[int, float]:
        hosts = [c.testinfra for c in self.connections.values()]
        return sum(h.commands for h in hosts), sum(h.seconds for h in hosts)

    def close(self) -> None:
        for connection in self.connections.values():
            connection.close()
        if self.owns_control_dir and self._control_dir is not None:
            end_masters(self._control_dir)


def make_control_dir() -> str:
    """A directory for a run's control masters, only its owner may enter (mode 0700)."""
    return tempfile.mkdtemp(prefix="mxspec-ssh-")


def end_masters(control_dir: str) -> None:
    """End every control master left in a run's directory (a process that ended before closing its
    connections leaves its masters), and remove the directory."""
    for name in os.listdir(control_dir) if os.path.isdir(control_dir) else ():
        if name.endswith(".sock"):
            openssh.end_control_master(os.path.join(control_dir, name))
    shutil.rmtree(control_dir, ignore_errors=True)


def format_transcript(transcript: list[Command]) -> list[str]:
    """Each command with its output; a check polled until a bound shows its repeats once."""
    lines: list[str] = []
    recent: list[tuple[str, int | None, str]] = []
    repeats = 0
    for command in transcript:
        key = (command.command, command.rc, command.stdout)
        if key in recent:  # a poll going round: the same few commands, the same answers
            repeats += 1
            continue
        if repeats:
            lines.append(f"  ({repeats} more runs of the commands above, with the same output)")
        lines.append(_format_command(command))
        recent, repeats = (recent + [key])[-3:], 0
    if repeats:
        lines.append(f"  ({repeats} more runs of the commands above, with the same output)")
    return lines


def _format_command(command: Command) -> str:
    status = "timed out" if command.rc is None else f"exit {command.rc}"
    took = "as read earlier in this run" if command.known else f"{command.seconds * 1000:.0f} ms"
    lines = [f"$ {command.command}    # {status}, {took}"]
    for stream in (command.stdout, command.stderr):
        text = stream.rstrip()
        if text:
            lines += ["  " + line for line in text.splitlines()[:40]]
    return "\n".join(lines)
