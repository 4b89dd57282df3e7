"""Checks of a host's state, read over its connection. Each failure says what was expected and seen.

All items of a table are checked before failing, so one run shows every gap, not the first.
"""

import json
import shlex

from mxspec.checks import maillog, services
from mxspec.checks.mailhost import MailHost
from mxspec.core.waiting import eventually


def _fail_if(problems: list[str], what: str) -> None:
    if problems:
        raise AssertionError(f"{what}:\n  " + "\n  ".join(problems))


def packages_installed(mailhost: MailHost, names: list[str]) -> None:
    problems = []
    for name in names:
        if not mailhost.testinfra.package(name).is_installed:
            problems.append(f"{name}: not installed")
    _fail_if(problems, f"host {mailhost.name}: packages missing")


def services_running_and_enabled(mailhost: MailHost, names: list[str]) -> None:
    problems = []
    for name in names:
        service = mailhost.testinfra.service(name)
        if not service.is_running:
            problems.append(f"{name}: not running")
        if not service.is_enabled:
            problems.append(f"{name}: not enabled at boot")
    _fail_if(problems, f"host {mailhost.name}: services not as expected")


def service_running(mailhost: MailHost, name: str) -> None:
    if not services.is_running(mailhost, name):
        raise AssertionError(f"host {mailhost.name}: {name} is not running")


def command_is_silent(mailhost: MailHost, command: str) -> None:
    result = mailhost.run(command)
    output = (result.stdout + result.stderr).strip()
    if result.rc != 0 or output:
        raise AssertionError(f"host {mailhost.name}: `{command}` exited {result.rc}"
                             + (f" and printed:\n{output}" if output else ""))


def listening(mailhost: MailHost, sockets: list[str], wanted: bool = True) -> None:
    """Each socket spec (e.g. tcp://0.0.0.0:25) is listening, or with wanted=False, is not."""
    wrong = [spec for spec in sockets if mailhost.testinfra.socket(spec).is_listening != wanted]
    if wrong:
        seen = ", ".join(mailhost.testinfra.socket.get_listening_sockets())
        state = "not listening" if wanted else "listening"
        raise AssertionError(f"host {mailhost.name}: {state} on {', '.join(wrong)}; listening: {seen}")


def no_log_lines_since_start(mailhost: MailHost, patterns: list[str]) -> None:
    maillog.fatal_lines_since_start(mailhost, patterns)


def queue_size(mailhost: MailHost) -> int:
    result = mailhost.run("postqueue -j")
    if result.rc != 0:
        raise AssertionError(f"host {mailhost.name}: `postqueue -j` failed: {result.stderr.strip()}")
    return sum(1 for line in result.stdout.splitlines() if line.strip() and json.loads(line))


def queue_at_most(mailhost: MailHost, limit: int) -> None:
    size = queue_size(mailhost)
    if size > limit:
        raise AssertionError(f"host {mailhost.name}: {size} messages in the mail queue, more than {limit}")


def postfix_settings(mailhost: MailHost, rows: list[dict], mode: str) -> None:
    """mode `is`: the value equals; `includes`: the value is one of the setting's list items."""
    names = sorted({row["setting"] for row in rows})
    result = mailhost.run("postconf " + " ".join(shlex.quote(n) for n in names))
    if result.rc != 0:
        raise AssertionError(f"host {mailhost.name}: postconf failed: {result.stderr.strip()}")
    actual = {}
    for line in result.stdout.splitlines():
        name, _, value = line.partition(" = ")
        actual[name.strip()] = " ".join(value.split())
    problems = []
    for row in rows:
        value, wanted = actual.get(row["setting"], ""), " ".join(row[mode].split())
        items = [item.strip() for item in value.replace(",", " ").split()]
        ok = value == wanted if mode == "is" else wanted in items
        if not ok:
            verb = "be" if mode == "is" else "include"
            problems.append(f"{row['setting']} = {value or '(empty)'}; expected it to {verb} {wanted}")
    _fail_if(problems, f"host {mailhost.name}: Postfix settings")


def starts_before(mailhost: MailHost, service: str, other: str) -> None:
    """systemd: `service` is ordered Before= `other`; SysV: its rc2.d start number is lower."""
    if mailhost.testinfra.service(service).__class__.__name__.startswith("Systemd"):
        before = mailhost.run(f"systemctl show -p Before --value {shlex.quote(service)}").stdout.split()
        if not any(unit.split(".")[0].split("@")[0] == other for unit in before):
            raise AssertionError(f"host {mailhost.name}: {service} is not ordered before {other} "
                                 f"(Before={' '.join(before) or 'nothing'})")
        return
    links = mailhost.run("ls /etc/rc2.d").stdout.split()
    order = {link[3:]: int(link[1:3]) for link in links if link.startswith("S") and link[1:3].isdigit()}
    if service not in order or other not in order or order[service] >= order[other]:
        raise AssertionError(f"host {mailhost.name}: {service} does not start before {other} at boot "
                             f"(rc2.d: {service}={order.get(service, 'absent')}, {other}={order.get(other, 'absent')})")


def map_lookups(mailhost: MailHost, table: str, rows: list[dict]) -> None:
    problems = []
    for row in rows:
        result = mailhost.run(f"postmap -q {shlex.quote(row['domain'])} {shlex.quote(table)}")
        got = result.stdout.strip()
        if got != row["next hop"]:
            problems.append(f"{row['domain']}: {got or 'no entry'}, expected {row['next hop']}")
    _fail_if(problems, f"host {mailhost.name}: routes in {table}")


def start_and_wait(mailhost: MailHost, service: str, seconds: float = 60) -> None:
    """Start a service again and wait until it runs."""
    mailhost.run(f"service {shlex.quote(service)} start")
    eventually(seconds, lambda: service_running(mailhost, service), interval=0.5)
