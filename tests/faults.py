"""Faults the lab can inject into a host, each undone whatever happens in between.

A fault is a pair of shell commands for one lab host. The helpers keep what they change on
the host itself (a backup file next to the original, or the old setting in /root), so the
restore needs nothing from the test process.
"""

import contextlib
import shlex
from dataclasses import dataclass

from conftest import lab_ssh

SAVED = "/root/.mxspec-fault"


@dataclass(frozen=True)
class Fault:
    host: str
    inject: str
    restore: str
    what: str


@contextlib.contextmanager
def injected(fault: Fault):
    lab_ssh(fault.host, fault.inject)
    try:
        yield
    finally:
        lab_ssh(fault.host, fault.restore)


def postconf(host: str, setting: str, value: str) -> Fault:
    """A main.cf setting changed, then Postfix reloaded."""
    saved = f"{SAVED}-{setting}"
    return Fault(host,
                 f"postconf -h {setting} > {saved} && postconf -e {shlex.quote(f'{setting}={value}')} && postfix reload",
                 f'postconf -e "{setting}=$(cat {saved})" && rm -f {saved} && postfix reload',
                 f"{setting} = {value or '(empty)'}")


def edit(host: str, path: str, sed: str, then: str = "true") -> Fault:
    """A file edited with sed (a backup kept beside it), then `then` run to apply it."""
    backup = f"{path}.mxspec-fault"
    return Fault(host, f"cp -p {path} {backup} && sed -i {shlex.quote(sed)} {path} && {then}",
                 f"mv {backup} {path} && {then}", f"{path}: {sed}")


def service_stopped(host: str, service: str) -> Fault:
    return Fault(host, f"service {service} stop", f"service {service} start", f"{service} stopped")


def postfix_not_enabled_at_boot(host: str, init: str) -> Fault:
    if init == "sysv":
        return Fault(host, "update-rc.d postfix disable", "update-rc.d postfix enable", "postfix disabled at boot")
    return Fault(host, "systemctl disable -q postfix", "systemctl enable -q postfix", "postfix disabled at boot")
