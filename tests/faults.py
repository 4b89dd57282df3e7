"""Faults the lab can inject into a host, each undone whatever happens in between."""

import contextlib

from conftest import lab_ssh


@contextlib.contextmanager
def fault(host: str, inject: str, restore: str):
    lab_ssh(host, inject)
    try:
        yield
    finally:
        lab_ssh(host, restore)


def postfix_not_enabled_at_boot(host: str, init: str):
    if init == "sysv":
        return fault(host, "update-rc.d postfix disable", "update-rc.d postfix enable")
    return fault(host, "systemctl disable -q postfix", "systemctl enable -q postfix")
