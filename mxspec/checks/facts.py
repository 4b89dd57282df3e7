"""Facts: what a host's answer to a command stays until the host is changed.

Several scenarios ask the same of one host — the listening sockets, the Postfix configuration,
whether a package is installed, the host's system — and the answer cannot change in between
unless something changes the host. So each is read once per host and run, and kept until a
scenario that changes a host (@changes_host, @disruptive) begins or ends. What can change on its
own is never a fact: whether a service is running, the queue, the mail log, the time.
"""

import re
from collections.abc import Callable
from typing import Any, TypeVar

from mxspec.checks.changes import JOURNALS_LISTED
from mxspec.checks.mailhost import MailHost
from mxspec.checks.postconf import SECTION_MARK

F = TypeVar("F", bound=Callable[..., Any])

# Every setting of main.cf and master.cf as `name = value` lines, $names expanded: how Postfix
# reads its configuration from disk. One spelling, so that it is read once.
POSTFIX_CONFIGURATION = "postconf -nx && postconf -Px"
# Every parameter as Postfix uses it, defaults included: as written, with $names expanded, which of
# them main.cf sets, master.cf's services and their -o overrides both ways — what hosts are compared
# on (a value that differs only once expanded differs by a $name, which is compared itself); last,
# the change journals on the host (`changes.JOURNALS_LISTED`: a host being changed is read again
# once the change is put back). One command, its output cut into these sections (`postconf.sections`).
EFFECTIVE_SECTIONS = {"main": "postconf", "main-expanded": "postconf -x", "main-explicit": "postconf -n",
                      "services": "postconf -M", "overrides": "postconf -P", "overrides-expanded": "postconf -Px",
                      "journals": JOURNALS_LISTED}
EFFECTIVE_CONFIGURATION = " && ".join(f"echo '{SECTION_MARK}{name}' && {command}"
                                      for name, command in EFFECTIVE_SECTIONS.items())

# Each a whole command, as the check (or testinfra's module) asks it.
FACTS = [re.compile(pattern) for pattern in (
    r"(/usr/bin/|/bin/|/usr/sbin/|/sbin/)?ss --numeric --listening --(tcp|udp|unix)",  # testinfra's socket module
    r"(/usr/bin/|/bin/|/usr/sbin/|/sbin/)?netstat -n -l -[tuxp]+",
    re.escape(POSTFIX_CONFIGURATION),
    re.escape(EFFECTIVE_CONFIGURATION),
    r"postconf -m",  # the map types this Postfix supports
    r"dpkg-query -f '\$\{Status\}' -W [\w.+-]+",  # testinfra's package module
    r"command -v [\w.-]+",  # testinfra: which commands the host has
    r"uname -[smr]|cat /etc/os-release|test -d /run/systemd/system/",  # testinfra: the system
)]


def is_fact(command: str) -> bool:
    return any(pattern.fullmatch(command) for pattern in FACTS)


def is_shared(command: str) -> bool:
    """Whether a fact's answer holds for the whole run, so the run's processes may share it
    (transport/shared.py): the effective configuration is kept only as read while no change
    scenario had the host changed (a change journal makes the read exit `changes.CHANGING`), and
    what a change scenario changes it puts back. Other facts may be read in the middle of a change."""
    return command == EFFECTIVE_CONFIGURATION


# The attribute a step definition carries when it compares one command's answer across the hosts
# playing a role (`compares_every_host`): the run reads it of each such host as it first contacts it,
# on the worker checking that host, so that the estate's scenario finds it read (bdd/plugin.py).
COMPARES_EVERY_HOST = "mxspec_compares_every_host"


def compares_every_host(command: str) -> Callable[[F], F]:
    """Declares that the step compares `command`'s answer across the hosts playing the role its phrase
    names (`role`), where two or more play it (one host has nothing to be compared with)."""
    def declare(function: F) -> F:
        setattr(function, COMPARES_EVERY_HOST, command)
        return function
    return declare


def postfix_configuration(mailhost: MailHost) -> str:
    return mailhost.output(POSTFIX_CONFIGURATION, "reading the Postfix configuration")


