"""Steps every mail host shares: packages, services, configuration, sockets, log, queue; and the
hosts of one role compared with each other."""

import pytest
from pytest_bdd import parsers, then

from mxspec.checks import alike, configwarnings, facts, hostchecks, liveconfig
from mxspec.checks.mailhost import MailHost, Subject
from mxspec.steps.phrases import TYPES


@then("these packages are installed:")
def packages_installed(mailhost: MailHost, datatable: list[list[str]]) -> None:
    """Each package of the table (column `package`) is installed."""
    hostchecks.packages_installed(mailhost, [row["package"] for row in mailhost.table(datatable)])


@then("these services are running and enabled at boot:")
def services_running_and_enabled(mailhost: MailHost, datatable: list[list[str]]) -> None:
    """Each service of the table (column `service`) runs now and starts at boot (SysV or systemd)."""
    hostchecks.services_running_and_enabled(mailhost, [row["service"] for row in mailhost.table(datatable)])


@then(parsers.parse("{command:Quoted} reports no problems", extra_types=TYPES))
def command_reports_no_problems(mailhost: MailHost, command: str) -> None:
    """The command exits 0 and prints nothing (e.g. "postfix check")."""
    hostchecks.command_is_silent(mailhost, mailhost.value(command))


@then("every indexed map Postfix uses is compiled from its current source, in a format this Postfix can open")
def maps_compiled_from_source(mailhost: MailHost) -> None:
    """Each hash/btree/lmdb/cdb map: a type `postconf -m` lists, compiled after its source, sampled keys as in the source."""
    if not liveconfig.maps_compiled_from_source(mailhost):
        pytest.skip(f"host {mailhost.name}: Postfix uses no indexed (hash, btree, lmdb, cdb) map")


@then("main.cf and master.cf have not changed since Postfix last started or reloaded")
def configuration_is_live(mailhost: MailHost) -> None:
    """Their modification times are not after the master's start or its last reload in the mail log."""
    liveconfig.configuration_is_live(mailhost)


@then("Postfix reports no configuration warnings, neither when reading main.cf and master.cf "
      "nor in the mail log since it last started")
def no_configuration_warnings(mailhost: MailHost) -> None:
    """`postconf -n` prints no warning; the mail log has none of the configuration kinds since the start."""
    configwarnings.no_configuration_warnings(mailhost)


@then("the host listens on:")
def listens_on(mailhost: MailHost, datatable: list[list[str]]) -> None:
    """Each socket of the table (column `socket`, like tcp://0.0.0.0:25) is listening."""
    hostchecks.listening(mailhost, [row["socket"] for row in mailhost.table(datatable)])


@then(parsers.parse("the mail log shows no {patterns:QuotedList} lines since Postfix last started",
                    extra_types=TYPES))
def no_bad_log_lines(mailhost: MailHost, patterns: list[str]) -> None:
    """No line of the mail log (file or journal: `mail_log`) since Postfix's last start contains these."""
    hostchecks.no_log_lines_since_start(mailhost, patterns)


@then(parsers.parse("the mail queue holds at most {limit:Count} messages", extra_types=TYPES))
def queue_at_most(mailhost: MailHost, limit: str) -> None:
    """The number of messages in the Postfix queue (all queues) is at most the limit."""
    hostchecks.queue_at_most(mailhost, int(mailhost.value(limit)))


@then("no message has waited in the deferred queue longer than the estate's bound")
def deferred_not_older_than(mailhost: MailHost) -> None:
    """Each deferred message arrived at most `deferred_max_age_minutes` ago (`postqueue -j`'s arrival time)."""
    hostchecks.deferred_not_older_than(mailhost, mailhost.setting("deferred_max_age_minutes"))


@then(parsers.parse("every host playing {role:Role} has the same effective Postfix parameters, "
                    "except the host-specific ones", extra_types=TYPES))
@facts.compares_every_host(facts.EFFECTIVE_CONFIGURATION)
def hosts_configured_alike(estate: Subject, role: str) -> None:
    """Every `postconf` parameter (defaults included), master.cf service and -o override alike; host-specific: as inventory."""
    hosts = estate.hosts_playing(role)
    if len(hosts) < 2:
        pytest.skip(f"estate {estate.name}: {'one host plays' if hosts else 'no host plays'} {role}: nothing to compare")
    alike.configured_alike(estate, role, hosts)
