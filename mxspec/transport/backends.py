"""The connection kinds mxspec can reach a host by: one table, one resolver, one way to run.

Each row says what the kind is and makes its testinfra backend. mxspec's own kinds (`ssh`,
`local`) run every command as a local process bounded in time (`BoundedRunMixin`); `paramiko`
and testinfra's other backends run as testinfra runs them. A kind that can hold a long-lived
process on the host (the change journal's lock) says how to start one (`process_line`).
Adding a kind is one backend class and one row.
"""

import os
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from testinfra.backend import BACKENDS, base, get_backend, parse_hostspec
from testinfra.backend.local import LocalBackend
from testinfra.backend.ssh import SshBackend

from mxspec.core.errors import CommandTimeout, MxspecError
from mxspec.estate.inventory import IDENTITY, PORT, SPEC, SSH_CONFIG, TARGET, TRANSPORT, USER, Host

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


class BoundedSshBackend(BoundedRunMixin, SshBackend):
    def process_line(self, remote: str) -> str:
        """The shell line that runs `remote` on the host over this backend's connection."""
        cmd, args = self._build_ssh_command(self.get_command(remote))
        return str(self.quote(" ".join(cmd), *args))


class BoundedLocalBackend(BoundedRunMixin, LocalBackend):
    def process_line(self, remote: str) -> str:
        return str(self.get_command(remote))


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


def _ssh(host: Host, control_path: str, connect_timeout: float) -> BoundedSshBackend:
    sudo, sudo_user = become(host)
    # The inventory's own ssh arguments (a ProxyJump through a bastion, options) as Ansible passes
    # them: shell words on ssh's command line.
    own = " ".join(str(host.vars[name]) for name in SSH_ARGS if host.vars.get(name))
    return BoundedSshBackend(
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


def _local(host: Host, control_path: str, connect_timeout: float) -> BoundedLocalBackend:
    sudo, sudo_user = become(host)
    return BoundedLocalBackend(sudo=sudo, sudo_user=sudo_user)


def _testinfra(host: Host, control_path: str, connect_timeout: float) -> Any:
    return get_backend(host.vars[SPEC])


KINDS = {kind.name: kind for kind in (
    Kind("ssh", "OpenSSH, one shared control master per host, every command bounded (the default)", _ssh),
    Kind("paramiko", "testinfra's default for a bare host name, kept for comparison", _paramiko),
    Kind("local", "the machine mxspec runs on (ansible_connection: local, or local://)", _local),
    Kind("testinfra", "another of testinfra's backends, given as a raw spec ("
                      + ", ".join(f"{name}://" for name in sorted(set(BACKENDS) - {"ssh", "paramiko", "local"}))
                      + "): unbounded, as testinfra runs it", _testinfra),
)}
CHOOSABLE = ("ssh", "paramiko")  # what an inventory may set as mxspec_transport


def kind_of(host: Host) -> Kind:
    """The connection kind for the host: from its inventory variables, or the raw spec it was given as."""
    if host.vars.get("ansible_connection") == "local":  # Ansible's way to say "this machine itself"
        return KINDS["local"]
    spec = host.vars.get(SPEC)
    if spec and not spec.startswith("ssh://"):
        return KINDS["local" if spec.startswith("local://") else "testinfra"]
    chosen = host.vars.get(TRANSPORT, "ssh")
    if chosen not in CHOOSABLE:
        raise MxspecError(f"{host.where}: host '{host.name}': {TRANSPORT} must be {' or '.join(CHOOSABLE)}, "
                          f"not '{chosen}'")
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
