"""Faults the lab can inject into a host, each undone whatever happens in between.

A fault is a pair of shell commands for one lab host, and the configuration files it changes.
Those files are never backed up before the inject: a copy taken then would be whatever an
earlier, failed restore left behind. They are put back from the copy the lab kept when the host
booted (`mxspec.lab.baseline`); `restore` then only applies them (postmap, reload, restart).
Every restore is checked: the host's configuration as at boot, every lab service of the host
ready. A restore that fails stops the fault cases, naming the host and what is wrong, rather than
letting every later case run on a broken lab; they run again only once the lab is verified
healthy as a whole (`lab_verified_healthy`, from the `lab` fixture's heal before each test).
"""

import contextlib
import shlex
from dataclasses import dataclass

import pytest

from conftest import LAB, lab_ssh
from mxspec import MxspecError
from mxspec.lab import baseline, readiness
from mxspec.lab.commands import running_lab, ssh_config_path

SETTLE = 60  # seconds a restored host's services get to report ready again
_stopped: list[str] = []  # why the fault cases stopped, once a restore failed


@dataclass(frozen=True)
class Fault:
    host: str
    inject: str
    restore: str
    what: str
    files: tuple[str, ...] = ()  # configuration the inject changes (files or folders), put back from the boot copy


@contextlib.contextmanager
def injected(fault: Fault):
    if _stopped:
        pytest.fail(f"fault cases stopped: {_stopped[0]}", pytrace=False)
    try:
        lab_ssh(fault.host, fault.inject)
        yield
    finally:
        problem = restore(fault)
        if problem:
            _stopped.append(problem)
            pytest.fail(problem, pytrace=False)


def lab_verified_healthy() -> None:
    """Every host as at boot and ready again (the lab fixture healed it): fault cases may run again."""
    _stopped.clear()


def restore(fault: Fault) -> str:
    """Undo the fault and check the host is as it booted and ready; '' or what is wrong."""
    lab = running_lab(LAB)
    config = ssh_config_path(lab)
    try:
        changed = [path for path in baseline.differences(lab, config, fault.host)
                   if any(path == mine or path.startswith(mine.rstrip("/") + "/") for mine in fault.files)]
        if changed:
            baseline.put_back(lab, config, fault.host, changed)
        result = lab_ssh(fault.host, fault.restore, check=False)
        if result.returncode != 0:
            return f"{fault.host}: restoring '{fault.what}': `{fault.restore}` exited {result.returncode}: {result.stderr}"
        left = baseline.differences(lab, config, fault.host)
        if left:
            return (f"{fault.host}: after restoring '{fault.what}', differs from its state at boot: "
                    + ", ".join(f"{path} ({why})" for path, why in left.items()))
        readiness.wait(lab, config, [fault.host], SETTLE)
    except MxspecError as error:
        return f"{fault.host}: restoring '{fault.what}': {error}"
    return ""


def postconf(host: str, setting: str, value: str) -> Fault:
    """A main.cf setting changed, then Postfix reloaded."""
    return Fault(host, f"postconf -e {shlex.quote(f'{setting}={value}')} && postfix reload", "postfix reload",
                 f"{setting} = {value or '(empty)'}", ("/etc/postfix/main.cf",))


def edit(host: str, path: str, sed: str, then: str = "true") -> Fault:
    """A file edited with sed, then `then` run to apply it (and again once the file is back)."""
    return Fault(host, f"sed -i {shlex.quote(sed)} {path} && {then}", then, f"{path}: {sed}", (path,))


def service_stopped(host: str, service: str) -> Fault:
    return Fault(host, f"service {service} stop", f"service {service} start", f"{service} stopped")


# Where "enabled at boot" lives: the links of every runlevel and insserv's order files (SysV, and
# systemd's own `disable` of a service with an init script calls update-rc.d too), systemd's links.
BOOT_FILES = (*(f"/etc/rc{level}.d" for level in "0123456S"), "/etc/init.d", "/etc/systemd/system")


def postfix_not_enabled_at_boot(host: str, init: str) -> Fault:
    if init == "sysv":
        return Fault(host, "update-rc.d postfix disable", "true", "postfix disabled at boot", BOOT_FILES)
    return Fault(host, "systemctl disable -q postfix", "systemctl daemon-reload", "postfix disabled at boot",
                 BOOT_FILES)


# Sends what a fault left in a host's queue on its way now, and waits (30 s at most) until the
# queue is empty. `postqueue -f` alone is not enough: right after `postfix reload` the queue
# manager may not be back yet and the flush request is lost; the deferred mail would then wait
# out Postfix's retry time (5 min) and a later test would find the queue long.
QUEUE_DELIVERED = ("for i in $(seq 30); do postqueue -f 2>/dev/null; [ -z \"$(postqueue -j)\" ] && exit 0; sleep 1; done; "
                   "echo \"messages still queued 30 s after the flush: $(postqueue -j | wc -l)\" >&2; exit 1")


# Rewrites the arrival time in a queue file in place: postqueue -j (showq) and the queue manager
# read it from the file's own time record (`T` type byte, length byte, seconds), never from the
# file's modification time, which in the deferred queue is the next retry time and is kept as it was.
AGE_QUEUE_FILE = ("perl -e 'open(my $q, \"+<\", $ARGV[0]) or die \"$ARGV[0]: $!\\n\"; read($q, my $head, 512); "
                  "$head =~ /T.(\\d{{10}})(?!\\d)/s or die \"no arrival record in $ARGV[0]\\n\"; "
                  "seek($q, $-[1], 0); print $q $1 - {seconds}; close($q) or die \"$ARGV[0]: $!\\n\"'")


def deferred_message_aged(host: str, minutes: int) -> Fault:
    """One message held in the deferred queue (its transport deferred), made `minutes` older than it is."""
    recipient = "someone@elsewhere.example"  # never leaves the host: its transport is deferred
    find_id = (f"postqueue -j | sed -n 's/.*\"queue_name\": \"deferred\", \"queue_id\": \"\\([0-9A-Za-z]*\\)\""
               f".*\"{recipient}\".*/\\1/p' | head -n 1")
    inject = (f"postconf -e defer_transports=smtp && postfix reload && "
              f"echo probe | sendmail -f mxspec-fault@alpha.test {recipient} && "
              f"for i in $(seq 30); do id=$({find_id}); [ -n \"$id\" ] && break; sleep 1; done && "
              "[ -n \"$id\" ] && f=$(find \"$(postconf -h queue_directory)/deferred\" -type f -name \"$id\") && "
              f"m=$(stat -c %Y \"$f\") && {AGE_QUEUE_FILE.format(seconds=minutes * 60)} \"$f\" && touch -d \"@$m\" \"$f\"")
    return Fault(host, inject, "postsuper -d ALL deferred >/dev/null 2>&1; postfix reload",
                 f"a message deferred {minutes} min ago", ("/etc/postfix/main.cf",))
