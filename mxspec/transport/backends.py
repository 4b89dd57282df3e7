"""The connection kinds mxspec can reach a host by: one table, one resolver, one way to run.

Each row says what the kind is and makes its testinfra backend. mxspec's own kinds run every
command bounded in time: `ssh` and `local` on the host's persistent channel (`ChannelMixin`,
transport/channel.py), `ssh-command` as one ssh session per command over the shared connection
(`BoundedRunMixin`); `paramiko` and testinfra's other backends run as testinfra runs them. A
kind that can hold a long-lived process on the host (the channel, the change journal's lock)
says how to start one (`process_line`). Adding a kind is one backend class and one row.
"""

import os
import shlex
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from testinfra.backend import BACKENDS, base, get_backend, parse_hostspec
from testinfra.backend.local import LocalBackend
from testinfra.backend.ssh import SshBackend

from mxspec.core.errors import CommandTimeout, MxspecError
from mxspec.estate.inventory import IDENTITY, PORT, SPEC, SSH_CONFIG, TARGET, TRANSPORT, USER, Host
from mxspec.transport import channel

BECOME = "ansible_become"  # inventory: run commands as another user (root by default) with sudo
BECOME_USER = "ansible_become_user"
BECOME_METHOD = "ansible_become_method"
SSH_ARGS = ("ansible_ssh_common_args", "ansible_ssh_extra_args")  # e.g. -o ProxyJump=me@bastion


class BoundedRunMixin:
    """Bounds every command a testinfra backend runs through a local process (ssh, local)."""

    command_timeout: float = 60

    def get_sudo_command(self, command: str, sudo_user: str | None) -> str:
        # -n: a sudo that wants a password fails at once with its own message, instead of
        # waiting for a prompt nobody will answer until the command's bound.
        if sudo_user is None:
            return str(self.quote("sudo -n /bin/sh -c %s", command))  # type: ignore[attr-defined]
        return str(self.quote("sudo -n -u %s /bin/sh -c %s", sudo_user, command))  # type: ignore[attr-defined]

    def become_line(self, command: str) -> str:
        """`command` as the inventory's become user (through sudo -n), or as the login user."""
        if self.sudo:  # type: ignore[attr-defined]
            return self.get_sudo_command(command, self.sudo_user)  # type: ignore[attr-defined]
        return command

    def run_local(self, command: str, *args: str) -> base.CommandResult:
        cmd = self.encode(self.quote(command, *args))  # type: ignore[attr-defined]
        proc = subprocess.Popen(cmd, shell=True, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True)
        try:
            stdout, stderr = proc.communicate(timeout=self.command_timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise CommandTimeout(f"no answer within {self.command_timeout:g} s") from None
        return self.result(proc.returncode, cmd, stdout, stderr)  # type: ignore[attr-defined]


class ChannelMixin(BoundedRunMixin):
    """Runs every command on the host's one persistent channel, opened on the first command.

    The loop itself runs as the become user, so a command in it needs no sudo of its own: sudo's
    PAM is paid once per host, like sshd's session.
    """

    connect_timeout: float = 10
    _channel: channel.Channel | None = None

    def channel(self) -> channel.Channel:
        if self._channel is None:
            # exec /bin/sh: the loop is POSIX sh whatever the login shell is; $0 names it on the host.
            loop = f"exec /bin/sh -c {shlex.quote(channel.LOOP)} {channel.NAME}"
            self._channel = channel.Channel(self.process_line(loop), self.connect_timeout)  # type: ignore[attr-defined]
        return self._channel

    def open_ahead(self) -> None:
        """Start the channel, if it is not running, before any command is given it (Connection.open_ahead)."""
        self.channel().start_ahead()

    def get_command(self, command: str, *args: str) -> str:
        return str(self.quote(command, *args))  # type: ignore[attr-defined]

    def run(self, command: str, *args: str, **kwargs: Any) -> base.CommandResult:
        line = self.get_command(command, *args)
        cmd = self.encode(line)  # type: ignore[attr-defined]
        try:
            status, stdout, stderr = self.channel().run(line, self.command_timeout)
        except channel.Timeout as error:
            raise CommandTimeout(str(error)) from None
        except channel.ChannelDied as died:
            said = died.stderr or str(died).encode()
            if died.status not in (None, 255) and not self.channel().answered_ever:
                # The line reached the host but the loop would not start there (sudo refused, no
                # `timeout`): that is the answer to this command, and Connection.check words it.
                return self.result(died.status, cmd, b"", said)  # type: ignore[attr-defined]
            # Otherwise the connection is gone, as testinfra's ssh backend says it (exit 255).
            raise RuntimeError(self.result(255, cmd, b"", said)) from None  # type: ignore[attr-defined]
        return self.result(status, cmd, stdout, stderr)  # type: ignore[attr-defined]

    @property
    def reopened(self) -> list[str]:
        """Why, each time the channel died under a command and was opened again."""
        return self._channel.reopened if self._channel is not None else []

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()


class BoundedSshBackend(BoundedRunMixin, SshBackend):
    def process_line(self, remote: str) -> str:
        """The shell line that runs `remote` on the host over this backend's connection."""
        cmd, args = self._build_ssh_command(self.become_line(remote))
        return str(self.quote(" ".join(cmd), *args))


class ChannelSshBackend(ChannelMixin, BoundedSshBackend):
    pass


SshKind = TypeVar("SshKind", bound=BoundedSshBackend)


class ChannelLocalBackend(ChannelMixin, LocalBackend):
    def process_line(self, remote: str) -> str:
        return self.become_line(remote)


@dataclass(frozen=True)
class Kind:
    """One connection kind: what it is, and how it makes the backend for a host."""

    name: str
    description: str
    make: Callable[[Host, str, float], Any]  # (host, control path, connect timeout) -> backend


def _address(host: Host) -> str:
    spec = host.target
    if host.vars.get(USER):
        spec = f"{host.vars[USER]}@{spec}"
    if host.vars.get(PORT):
        spec = f"{spec}:{host.vars[PORT]}"
    return spec


def become(host: Host) -> tuple[bool, str | None]:
    """Whether the host's commands run through sudo, and as whom (None: sudo's default, root)."""
    value = host.vars.get(BECOME, False)
    on = value if isinstance(value, bool) else str(value).strip().lower() in ("yes", "true", "1", "on")
    method = host.vars.get(BECOME_METHOD, "sudo")
    if on and method != "sudo":
        raise MxspecError(f"{host.where}: host '{host.name}': {BECOME_METHOD} '{method}' is not supported; "
                          "mxspec becomes another user with sudo")
    return on, (str(host.vars[BECOME_USER]) if on and host.vars.get(BECOME_USER) else None)


def _ssh(host: Host, control_path: str, connect_timeout: float) -> ChannelSshBackend:
    backend = _ssh_command(host, control_path, connect_timeout, ChannelSshBackend)
    backend.connect_timeout = connect_timeout
    return backend


def _ssh_command(host: Host, control_path: str, connect_timeout: float,
                 kind: type[SshKind] = BoundedSshBackend) -> SshKind:
    sudo, sudo_user = become(host)
    # The inventory's own ssh arguments (a ProxyJump through a bastion, options) as Ansible passes
    # them: shell words on ssh's command line.
    own = " ".join(str(host.vars[name]) for name in SSH_ARGS if host.vars.get(name))
    return kind(
        _address(host),
        ssh_config=host.ssh_config,
        ssh_identity_file=host.vars.get(IDENTITY),
        timeout=int(max(1, connect_timeout)),
        controlpersist=300,
        ssh_extra_args=f"-o BatchMode=yes -o ControlPath={control_path} "
                       f"-o ServerAliveInterval=5 -o ServerAliveCountMax=2 {own}".rstrip(),
        sudo=sudo, sudo_user=sudo_user,
    )


def _paramiko(host: Host, control_path: str, connect_timeout: float) -> Any:
    return get_backend(f"paramiko://{_address(host)}", ssh_config=host.ssh_config,
                       ssh_identity_file=host.vars.get(IDENTITY), timeout=int(max(1, connect_timeout)))


def _local(host: Host, control_path: str, connect_timeout: float) -> ChannelLocalBackend:
    sudo, sudo_user = become(host)
    return ChannelLocalBackend(sudo=sudo, sudo_user=sudo_user)


def _testinfra(host: Host, control_path: str, connect_timeout: float) -> Any:
    return get_backend(host.vars[SPEC])


KINDS = {kind.name: kind for kind in (
    Kind("ssh", "OpenSSH, one shared control master and one persistent channel per host, every command "
                "bounded (the default)", _ssh),
    Kind("ssh-command", "OpenSSH, one shared control master per host and one ssh session per command, "
                        "bounded (testinfra's ssh backend with ControlMaster)", _ssh_command),
    Kind("paramiko", "testinfra's default for a bare host name, kept for comparison", _paramiko),
    Kind("local", "the machine mxspec runs on (ansible_connection: local, or local://)", _local),
    Kind("testinfra", "another of testinfra's backends, given as a raw spec ("
                      + ", ".join(f"{name}://" for name in sorted(set(BACKENDS) - {"ssh", "paramiko", "local"}))
                      + "): unbounded, as testinfra runs it", _testinfra),
)}
CHOOSABLE = ("ssh", "ssh-command", "paramiko")  # what an inventory may set as mxspec_transport


def kind_of(host: Host) -> Kind:
    """The connection kind for the host: from its inventory variables, or the raw spec it was given as."""
    if host.vars.get("ansible_connection") == "local":  # Ansible's way to say "this machine itself"
        return KINDS["local"]
    spec = host.vars.get(SPEC)
    if spec and not spec.startswith("ssh://"):
        return KINDS["local" if spec.startswith("local://") else "testinfra"]
    chosen = host.vars.get(TRANSPORT, "ssh")
    if chosen not in CHOOSABLE:
        choices = f"{', '.join(CHOOSABLE[:-1])} or {CHOOSABLE[-1]}"
        raise MxspecError(f"{host.where}: host '{host.name}': {TRANSPORT} must be {choices}, not '{chosen}'")
    return KINDS[chosen]


def backend_for(host: Host, control_path: str, connect_timeout: float) -> Any:
    return kind_of(host).make(host, control_path, connect_timeout)


def spec_variables(spec: str) -> dict:
    """A raw `ssh://user@host:port?ssh_config=...&ssh_identity_file=...` spec as connection variables.

    So a host given on the command line is reached the same bounded, shared way as an inventory's.
    """
    address, options = parse_hostspec(spec)
    user, _, address = address.rpartition("@")
    name, _, port = address.partition(":")
    values = {TARGET: name, USER: user, PORT: port, SSH_CONFIG: options.get("ssh_config"),
              IDENTITY: options.get("ssh_identity_file")}
    return {key: value for key, value in values.items() if value}
