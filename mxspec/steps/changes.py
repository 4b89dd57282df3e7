"""Steps that change a host and watch how it picks the change up (@changes_host scenarios only).

Every change is journalled on the host before it is made and undone when the scenario ends,
whatever the outcome (see mxspec.checks.changes).
"""


import shlex

import pytest
from pytest_bdd import parsers, then, when

from mxspec.checks import hostchecks, maillog, services, smtpchecks
from mxspec.checks.changes import ChangeJournal
from mxspec.checks.mailhost import MailHost
from mxspec.checks.smtpchecks import Client
from mxspec.core.waiting import eventually
from mxspec.steps.phrases import TYPES

# Replaces `KEY = ...` (and its continuation lines) with `KEY = VALUE`, or appends it; the file
# is rewritten in place, so it keeps its inode, mode and owner.
SET_KEY = r"""awk 'BEGIN { k = ENVIRON["K"]; v = ENVIRON["V"] }
skip && /^[ \t]/ { next }
{ skip = 0 }
index($0, k) == 1 && substr($0, length(k) + 1) ~ /^[ \t]*=/ { if (!done) print k " = " v; done = 1; skip = 1; next }
{ print }
END { if (!done) print k " = " v }'"""


class ChangedHost:
    """The scenario's changes to its host: the journal, and what was seen just before the change."""

    def __init__(self, mailhost: MailHost, journal: ChangeJournal) -> None:
        self.mailhost = mailhost
        self.journal = journal
        self.log_mark: str | None = None

    def before_change(self, path: str, service: str) -> None:
        self.journal.record_file(path)
        self.journal.record_service(service)
        if self.log_mark is None:
            self.log_mark = maillog.mark(self.mailhost)

    @property
    def since_change(self) -> str:
        """The mail log's mark from just before the first change."""
        if self.log_mark is None:
            raise AssertionError("this scenario changed nothing yet: there is no mail log since the change")
        return self.log_mark

    def pid_before(self, service: str) -> str:
        if service not in self.journal.services:
            raise AssertionError(f"this scenario changed nothing of {service}: say which change concerns it")
        return self.journal.services[service]


@pytest.fixture
def changed_host(mailhost: MailHost, request: pytest.FixtureRequest) -> ChangedHost:
    if request.node.get_closest_marker("changes_host") is None:
        raise AssertionError("changing a host needs the scenario tagged @changes_host (run with --mx-change)")
    journal = ChangeJournal(mailhost, request.node.name)
    request.addfinalizer(journal.restore)
    return ChangedHost(mailhost, journal)


def _edit(mailhost: MailHost, command: str, path: str) -> None:
    result = mailhost.run(command)
    if result.rc != 0:
        raise AssertionError(f"host {mailhost.name}: could not change {path}: {result.stderr.strip()}")


@when(parsers.parse("the {service:Quoted} setting {key:Quoted} in {path:Quoted} is changed to {value:Quoted}",
                    extra_types=TYPES))
def setting_changed(mailhost: MailHost, changed_host: ChangedHost, service: str, key: str, path: str, value: str) -> None:
    """Sets `KEY = VALUE` in a file of that service (main.cf, an INI-style file), as an operator would."""
    path, key, value = mailhost.value(path), mailhost.value(key), mailhost.value(value)
    changed_host.before_change(path, mailhost.value(service))
    quoted = shlex.quote(path)
    _edit(mailhost, f"new=$(K={shlex.quote(key)} V={shlex.quote(value)} {SET_KEY} {quoted}) && "
                    f"printf '%s\\n' \"$new\" > {quoted}", path)


@when(parsers.parse("the line {line:Quoted} is added to the {service:Quoted} file {path:Quoted}", extra_types=TYPES))
def line_added(mailhost: MailHost, changed_host: ChangedHost, line: str, service: str, path: str) -> None:
    """Appends the line to a file of that service (a map, main.cf, ...)."""
    path = mailhost.value(path)
    changed_host.before_change(path, mailhost.value(service))
    _edit(mailhost, f"printf '%s\\n' {shlex.quote(mailhost.value(line))} >> {shlex.quote(path)}", path)


@then(parsers.parse("within {seconds:Count} seconds Postfix reloads, keeping its master process", extra_types=TYPES))
def postfix_reloads(mailhost: MailHost, changed_host: ChangedHost, seconds: str) -> None:
    """The mail log shows the master process (the one from before the change) reloading."""
    before = changed_host.pid_before("postfix")

    def reloaded() -> None:
        now = services.pid(mailhost, "postfix")
        if now != before:
            raise AssertionError(f"host {mailhost.name}: Postfix was restarted, not reloaded "
                                 f"(master process {before or 'none'} -> {now or 'none'})")
        if not any(f"postfix/master[{before}]: reload" in line
                   for line in maillog.lines_since(mailhost, changed_host.since_change)):
            raise AssertionError(f"host {mailhost.name}: Postfix (master process {before}) has not reloaded "
                                 "since the change")

    eventually(float(mailhost.value(seconds)), reloaded)


@then(parsers.parse("within {seconds:Count} seconds the service {service:Quoted} restarts", extra_types=TYPES))
def service_restarts(mailhost: MailHost, changed_host: ChangedHost, seconds: str, service: str) -> None:
    """Its main process (Postfix: the master) is a new one, and the service runs."""
    name = mailhost.value(service)
    before = changed_host.pid_before(name)

    def restarted() -> None:
        now = services.pid(mailhost, name)
        if not now or now == before:
            raise AssertionError(f"host {mailhost.name}: {name} has not restarted "
                                 f"(main process {now or 'none'}, before the change {before or 'none'})")
        hostchecks.service_running(mailhost, name)

    eventually(float(mailhost.value(seconds)), restarted)


@then(parsers.parse("the service {service:Quoted} is still running, not restarted", extra_types=TYPES))
def service_not_restarted(mailhost: MailHost, changed_host: ChangedHost, service: str) -> None:
    """Same main process as before the change, and running."""
    name = mailhost.value(service)
    before, now = changed_host.pid_before(name), services.pid(mailhost, name)
    if now != before:
        raise AssertionError(f"host {mailhost.name}: {name} was restarted or stopped "
                             f"(main process {before or 'none'} -> {now or 'none'})")
    hostchecks.service_running(mailhost, name)


@then(parsers.parse("within {seconds:Count} seconds the mail log shows {text:Quoted}", extra_types=TYPES))
def log_shows(mailhost: MailHost, changed_host: ChangedHost, seconds: str, text: str) -> None:
    """A mail log line written since the change contains the text."""
    wanted = mailhost.value(text)

    def logged() -> None:
        lines = maillog.lines_since(mailhost, changed_host.since_change)
        found = [line for line in lines if wanted in line]
        if not found:
            raise AssertionError(f"host {mailhost.name}: no mail log line with '{wanted}' since the change; "
                                 "logged since:\n  " + ("\n  ".join(lines[-20:]) or "(nothing)"))
        mailhost.evidence.append(f"-- mail log: {found[0]}")

    eventually(float(mailhost.value(seconds)), logged)


@then(parsers.parse("within {seconds:Count} seconds the transport map {table:Quoted} sends {domain:Quoted} to "
                    "{nexthop:Quoted}", extra_types=TYPES))
def map_picks_up(mailhost: MailHost, seconds: str, table: str, domain: str, nexthop: str) -> None:
    """`postmap -q DOMAIN MAP` on the host gives the next hop, once the host has picked the change up."""
    rows = [{"domain": mailhost.value(domain), "next hop": mailhost.value(nexthop)}]
    eventually(float(mailhost.value(seconds)), lambda: hostchecks.map_lookups(mailhost, mailhost.value(table), rows))


@then(parsers.parse("the SMTP greeting includes {text:Quoted}", extra_types=TYPES))
def greeting_includes(mailhost: MailHost, smtp_client: Client, text: str) -> None:
    """The 220 banner on port 25 carries the text."""
    wanted = mailhost.value(text)
    banner, _ = smtpchecks.greeting(mailhost, smtp_client, mailhost.timeout)
    if wanted not in banner.message:
        raise AssertionError(f"host {mailhost.name}: greeting '{banner}' does not include '{wanted}'")


@then(parsers.parse("the host does not listen on {sockets:QuotedList}", extra_types=TYPES))
def not_listening(mailhost: MailHost, sockets: str) -> None:
    """testinfra socket specs, e.g. "tcp://0.0.0.0:25"."""
    hostchecks.listening(mailhost, [mailhost.value(s) for s in sockets], wanted=False)
