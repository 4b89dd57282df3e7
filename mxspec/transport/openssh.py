"""Every OpenSSH command line mxspec runs outside a testinfra backend: one module builds them.

`ssh -G` resolves an alias to the address SMTP and DNS checks must use, `-O exit` ends a
control master, and `command()` is the argument list for one bounded command on a host named
in an ssh_config (the lab's readiness and healing use it).
"""

import functools
import ipaddress
import socket
import subprocess
from pathlib import Path

from mxspec.core.errors import MxspecError


def is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


@functools.cache
def resolve(target: str, ssh_config: str | None = None) -> str:
    """The address behind an ssh alias or name: ssh's own view first (`ssh -G`), then the resolver."""
    if is_address(target):
        return target
    args = ["ssh", "-G", *(["-F", ssh_config] if ssh_config else []), target]
    result = subprocess.run(args, capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL)
    name = target
    for line in result.stdout.splitlines():
        if line.startswith("hostname "):
            name = line.split(None, 1)[1].strip()
    if is_address(name):
        return name
    try:
        return str(socket.getaddrinfo(name, None, socket.AF_INET)[0][4][0])
    except OSError as error:
        raise MxspecError(f"cannot find the address of '{target}': {error}") from None


def command(ssh_config: Path | str, host: str, remote: str, connect_timeout: int | None = 3,
            options: tuple[str, ...] = ()) -> list[str]:
    """`ssh -F CONFIG HOST REMOTE`, non-interactive, giving up on connecting after `connect_timeout` s;
    `options` are more `-o NAME=VALUE` settings (e.g. "ControlPath=none")."""
    bound = ["-o", f"ConnectTimeout={connect_timeout}"] if connect_timeout else []
    more = [word for option in options for word in ("-o", option)]
    return ["ssh", "-F", str(ssh_config), *bound, "-o", "BatchMode=yes", *more, host, remote]


def shell(ssh_config: Path | str, host: str, remote: list[str]) -> list[str]:
    """An interactive shell (or a command) on the host, as `ssh -F CONFIG HOST [COMMAND...]`."""
    return ["ssh", "-F", str(ssh_config), host, *remote]


def end_control_master(control_path: Path | str, host: str = "mxspec") -> None:
    """Ask the control master listening on `control_path` to exit (nothing happens if none does, or if it
    does not answer within 10 s: its ControlPersist ends it)."""
    try:
        subprocess.run(["ssh", "-o", f"ControlPath={control_path}", "-O", "exit", host],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=10, check=False)
    except subprocess.TimeoutExpired:
        pass
