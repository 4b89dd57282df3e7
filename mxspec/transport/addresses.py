"""Network addresses of inventory hosts, for the checks mxspec makes from outside (SMTP, DNS)."""

import functools
import ipaddress
import socket
import subprocess

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
        return socket.getaddrinfo(name, None, socket.AF_INET)[0][4][0]
    except OSError as error:
        raise MxspecError(f"cannot find the address of '{target}': {error}") from None
