"""Steps about how a host routes mail: its Postfix settings, milters and transport map."""



from pytest_bdd import parsers, then

from mxspec.checks import hostchecks
from mxspec.checks.mailhost import MailHost
from mxspec.steps.phrases import TYPES


@then("the Postfix settings are:")
def postfix_settings_are(mailhost: MailHost, datatable: list[list[str]]) -> None:
    """Columns setting, is: `postconf` shows exactly this value."""
    hostchecks.postfix_settings(mailhost, mailhost.table(datatable), "is")


@then("the Postfix settings include:")
def postfix_settings_include(mailhost: MailHost, datatable: list[list[str]]) -> None:
    """Columns setting, includes: the list-valued setting (e.g. smtpd_milters) has this item."""
    hostchecks.postfix_settings(mailhost, mailhost.table(datatable), "includes")


@then(parsers.parse("the service {service:Quoted} starts before {other:Quoted} at boot", extra_types=TYPES))
def service_starts_before(mailhost: MailHost, service: str, other: str) -> None:
    """systemd ordering (Before=) or SysV start order (rc2.d numbers)."""
    hostchecks.starts_before(mailhost, mailhost.value(service), mailhost.value(other))


@then(parsers.parse("the transport map {table:Quoted} sends each domain to its next hop:", extra_types=TYPES))
def transport_routes(mailhost: MailHost, table: str, datatable: list[list[str]]) -> None:
    """Columns domain, next hop: `postmap -q DOMAIN MAP` on the host gives the next hop."""
    hostchecks.map_lookups(mailhost, mailhost.value(table), mailhost.table(datatable))
