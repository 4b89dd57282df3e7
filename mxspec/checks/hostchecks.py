"""Checks of a host's state, read over its connection. Each failure says what was expected and seen.

All items of a table are checked before failing, so one run shows every gap, not the first.
"""

import json
import shlex
from dataclasses import dataclass

from mxspec.checks import liveconfig, maillog, services
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


@dataclass(frozen=True)
class Queued:
    """One message in the Postfix queue, as `postqueue -j` shows it."""

    queue: str  # incoming, active, deferred, hold, maildrop
    id: str
    arrival: int  # when Postfix received it (the queue file's own record, not its modification time)
    sender: str
    recipients: tuple[tuple[str, str], ...]  # (address, why its delivery was delayed, or "")


# The host's clock first, so that ages are measured against the time the queue was read at.
QUEUE_COMMAND = "date +%s && postqueue -j"


def parse_queue(output: str) -> tuple[int, list[Queued]]:
    """The host's time and the queued messages from QUEUE_COMMAND's output."""
    now, _, listing = output.partition("\n")
    messages = []
    for line in listing.splitlines():
        if not line.strip():
            continue
        entry = json.loads(line)
        messages.append(Queued(entry["queue_name"], entry["queue_id"], int(entry["arrival_time"]),
                               entry.get("sender", ""),
                               tuple((r["address"], r.get("delay_reason", "")) for r in entry.get("recipients", []))))
    return int(now), messages


def read_queue(mailhost: MailHost) -> tuple[int, list[Queued]]:
    result = mailhost.run(QUEUE_COMMAND)
    if result.rc != 0:
        raise AssertionError(f"host {mailhost.name}: `postqueue -j` failed: {result.stderr.strip()}")
    try:
        return parse_queue(str(result.stdout))
    except (ValueError, KeyError, TypeError) as error:
        raise AssertionError(f"host {mailhost.name}: cannot read `{QUEUE_COMMAND}`'s output: "
                             f"{type(error).__name__}: {error}") from None


def queue_at_most(mailhost: MailHost, limit: int) -> None:
    _, messages = read_queue(mailhost)
    if len(messages) > limit:
        raise AssertionError(f"host {mailhost.name}: {len(messages)} messages in the mail queue, more than {limit}")


def overdue(now: int, messages: list[Queued], minutes: int) -> list[str]:
    """The deferred messages that arrived more than `minutes` before `now`, oldest first, one line each."""
    late = sorted((m for m in messages if m.queue == "deferred" and now - m.arrival > minutes * 60),
                  key=lambda m: m.arrival)
    return [f"{m.id}: waiting {(now - m.arrival) // 60} min (since {liveconfig.when(m.arrival)}), from "
            f"<{m.sender}> to " + ", ".join(f"<{address}> ({reason or 'no reason given'})"
                                            for address, reason in m.recipients)
            for m in late]


def deferred_not_older_than(mailhost: MailHost, minutes: int) -> None:
    """No message in the deferred queue arrived more than `minutes` ago. A held message (postsuper -h)
    is an operator's choice, and one being tried again right now is in the active queue: neither counts."""
    now, messages = read_queue(mailhost)
    deferred = [m for m in messages if m.queue == "deferred"]
    oldest = max((now - m.arrival for m in deferred), default=None)
    mailhost.evidence.append(f"-- deferred queue: {len(deferred)} messages"
                             + (f", the oldest waiting {oldest // 60} min" if oldest is not None else "")
                             + f" (bound {minutes} min)")
    _fail_if(overdue(now, messages, minutes),
             f"host {mailhost.name}: messages have waited in the deferred queue longer than {minutes} minutes")


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
