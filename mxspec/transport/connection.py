"""One shared, bounded connection per host for the whole run.

testinfra's default for a bare name (paramiko) pays ~50 ms a command, and plain `ssh://`
without a ControlPath opens a new connection per command (~450 ms). Every inventory host here
gets an OpenSSH control master in a run-local directory, so each command is one round trip
over an open connection; every command is bounded in time so a hung host cannot hang the run.
"""

import os
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass

import testinfra.host
from testinfra.backend import base, get_backend
from testinfra.backend.local import LocalBackend
from testinfra.backend.ssh import SshBackend

from mxspec.core.errors import CommandTimeout, HostUnreachable, MxspecError
from mxspec.estate.inventory import IDENTITY, PORT, USER, Host

SPEC = "mxspec_spec"  # set on hosts given as a raw testinfra spec on the command line
TRANSPORT = "mxspec_transport"  # ssh (default: shared OpenSSH connection) or paramiko


@dataclass
class Command:
    """A command as issued on a host, kept as evidence for the report."""

    command: str
    rc: int | None
    stdout: str
    stderr: str
    seconds: float


class BoundedRunMixin:
    """Bounds every command a testinfra backend runs through a local process (ssh, local)."""

    command_timeout: float = 60

    def run_local(self, command: str, *args: str) -> base.CommandResult:
        cmd = self.encode(self.quote(command, *args))
        proc = subprocess.Popen(cmd, shell=True, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True)
        try:
            stdout, stderr = proc.communicate(timeout=self.command_timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise CommandTimeout(f"no answer within {self.command_timeout:g} s") from None
        return self.result(proc.returncode, cmd, stdout, stderr)


class BoundedSshBackend(BoundedRunMixin, SshBackend):
    pass


class BoundedLocalBackend(BoundedRunMixin, LocalBackend):
    pass


def _backend_for(host: Host, control_path: str, connect_timeout: float):
    transport = host.vars.get(TRANSPORT, "ssh")
    if host.vars.get("ansible_connection") == "local":  # Ansible's way to say "this machine itself"
        return BoundedLocalBackend()
    if SPEC in host.vars and not host.vars[SPEC].startswith("ssh://"):
        spec = host.vars[SPEC]
        if spec.startswith("local://"):
            return BoundedLocalBackend()
        return get_backend(spec)  # other testinfra transports: unbounded, as testinfra runs them
    spec = host.target
    if host.vars.get(USER):
        spec = f"{host.vars[USER]}@{spec}"
    if host.vars.get(PORT):
        spec = f"{spec}:{host.vars[PORT]}"
    if transport == "paramiko":  # testinfra's default for a bare name; kept for comparison
        return get_backend(f"paramiko://{spec}", ssh_config=host.ssh_config,
                           ssh_identity_file=host.vars.get(IDENTITY), timeout=int(max(1, connect_timeout)))
    if transport != "ssh":
        raise MxspecError(f"{host.where}: host '{host.name}': {TRANSPORT} must be ssh or paramiko, not '{transport}'")
    return BoundedSshBackend(
        spec,
        ssh_config=host.ssh_config,
        ssh_identity_file=host.vars.get(IDENTITY),
        timeout=int(max(1, connect_timeout)),
        controlpersist=300,
        ssh_extra_args=f"-o BatchMode=yes -o ControlPath={control_path} "
                       "-o ServerAliveInterval=5 -o ServerAliveCountMax=2",
    )


class CountingHost(testinfra.host.Host):
    """testinfra's Host that counts, times and (per scenario) records every command it runs."""

    def __init__(self, backend):
        super().__init__(backend)
        self.commands = 0
        self.seconds = 0.0
        self.transcript: list[Command] | None = None

    def run(self, command, *args, **kwargs):
        started = time.monotonic()
        self.commands += 1
        shown = self.backend.get_command(command, *args)
        try:
            result = super().run(command, *args, **kwargs)
        except CommandTimeout:
            self._record(Command(shown, None, "", "", time.monotonic() - started))
            raise
        self._record(Command(shown, result.rc, result.stdout, result.stderr, time.monotonic() - started))
        return result

    def _record(self, command: Command) -> None:
        self.seconds += command.seconds
        if self.transcript is not None:
            self.transcript.append(command)


class Connection:
    """The connection to one inventory host, opened once and checked before first use."""

    def __init__(self, host: Host, control_dir: str, connect_timeout: float, command_timeout: float,
                 on_contact=None):
        self.name = host.name
        self.on_contact = on_contact  # called once, right after the host first answers
        self.control_path = os.path.join(control_dir, f"{host.name}.sock")
        try:
            self.backend = _backend_for(host, self.control_path, connect_timeout)
        except RuntimeError as error:  # testinfra: unknown transport, or its library missing
            raise MxspecError(f"host {host.name} ({host.where}): {error}") from None
        self.backend.command_timeout = command_timeout
        self.testinfra = CountingHost(self.backend)
        self._checked = False
        self._unreachable: str | None = None

    def check(self) -> None:
        """Raise HostUnreachable, at once after the first failed try, unless the host answers."""
        if not self._checked:
            self._checked = True
            try:
                result = self.testinfra.run("true")
                if result.rc != 0:
                    self._unreachable = _last_line(result.stderr) or f"exit {result.rc}"
            except CommandTimeout as error:
                self._unreachable = str(error)
            except RuntimeError as error:  # testinfra's ssh backend: ssh itself failed (rc 255)
                self._unreachable = _ssh_reason(error)
            except Exception as error:  # paramiko and other transports raise their own errors
                self._unreachable = f"{type(error).__name__}: {error}"
            if not self._unreachable and self.on_contact:
                self.on_contact(self)
        if self._unreachable:
            raise HostUnreachable(f"host {self.name} unreachable: {self._unreachable}")

    def run(self, command: str, *args: str) -> base.CommandResult:
        self.check()
        try:
            return self.testinfra.run(command, *args)
        except CommandTimeout as error:
            raise CommandTimeout(f"host {self.name}: `{self.backend.get_command(command, *args)}`: {error}") from None
        except RuntimeError as error:
            self._unreachable = "connection lost: " + _ssh_reason(error)
            raise HostUnreachable(f"host {self.name} unreachable: {self._unreachable}") from None

    def close(self) -> None:
        if os.path.exists(self.control_path):
            subprocess.run(["ssh", "-o", f"ControlPath={self.control_path}", "-O", "exit", "mxspec"],
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=10, check=False)


def _ssh_reason(error: RuntimeError) -> str:
    result = error.args[0] if error.args else None
    return _last_line(getattr(result, "stderr", "")) or "ssh failed"


def _last_line(text: str) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else ""


class ConnectionPool:
    """Connections to every host of the run, made on first use and closed at the end."""

    def __init__(self, connect_timeout: float = 10, command_timeout: float = 60, on_contact=None):
        self.control_dir = tempfile.mkdtemp(prefix="mxspec-ssh-")
        self.on_contact = on_contact
        self.connect_timeout = connect_timeout
        self.command_timeout = command_timeout
        self.connections: dict[str, Connection] = {}

    def get(self, host: Host) -> Connection:
        if host.name not in self.connections:
            self.connections[host.name] = Connection(
                host, self.control_dir, self.connect_timeout, self.command_timeout, self.on_contact)
        return self.connections[host.name]

    def stats(self) -> tuple[int, float]:
        hosts = [c.testinfra for c in self.connections.values()]
        return sum(h.commands for h in hosts), sum(h.seconds for h in hosts)

    def close(self) -> None:
        for connection in self.connections.values():
            connection.close()
        try:
            os.rmdir(self.control_dir)
        except OSError:
            pass
