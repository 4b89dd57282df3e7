"""Both estates' mail logs over the canary's window, read from their hosts: read-only, one command each.

Every host of an estate is read (mail crosses the estate from the inbound MX to the host that
delivers it); its inbound MXs are the doors whose connections are judged. A log is read from the
window's start to now, so mail accepted near the window's end is followed to where it went.
A host whose log cannot be read stops the canary with its name and why: a judgement on part of
an estate's log would count its mail as lost.
"""

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from mxspec.canary import outcomes
from mxspec.canary.attempts import Attempt, Window
from mxspec.checks.maillog import JOURNAL, MailLog
from mxspec.core.errors import CommandTimeout, HostUnreachable, MxspecError
from mxspec.estate.inventory import Estate, Host
from mxspec.transport.connection import ConnectionPool

DOOR_ROLE = "inbound-mx"
CLOCK_MARK = "## clock "
SETTLE_SECONDS = 60  # mail accepted this shortly before the logs were read and not yet delivered: too soon to say


def doors(estate: Estate) -> list[Host]:
    """The estate's inbound MXs: where the connections the canary judges arrive."""
    return [host for host in estate.hosts.values() if DOOR_ROLE in host.roles]


def log_command(where: str, since: float) -> str:
    """A shell command printing the host's clock (`## clock EPOCH +ZZZZ`: what its syslog stamps are read in),
    then its mail log from `since` on, as `checks.maillog` reads that kind of log."""
    return f"echo \"{CLOCK_MARK}$(date +'%s %z')\"; {MailLog.kind(where).from_command(where, since)}"


def read_host(pool: ConnectionPool, host: Host, since: float) -> list[outcomes.Line]:
    where = str(host.vars.get("mail_log") or JOURNAL)  # the contract's default
    try:
        result = pool.get(host).run(log_command(where, since))
    except (HostUnreachable, CommandTimeout) as error:
        raise MxspecError(f"host {host.name}: its mail log ({where}) could not be read: {error}") from None
    if result.rc != 0:
        raise MxspecError(f"host {host.name}: its mail log ({where}) could not be read: "
                          f"{(result.stderr or '').strip() or f'exit {result.rc}'}")
    text = str(result.stdout)
    first, _, rest = text.partition("\n")
    if not first.startswith(CLOCK_MARK):
        raise MxspecError(f"host {host.name}: unexpected answer reading its mail log: {first[:80]}")
    try:
        now, offset = first.removeprefix(CLOCK_MARK).split()
        sign = -1 if offset.startswith("-") else 1
        clock = outcomes.Clock(float(now), sign * (int(offset[1:3]) * 3600 + int(offset[3:5]) * 60))
    except ValueError:
        raise MxspecError(f"host {host.name}: its clock reads {first.removeprefix(CLOCK_MARK)!r}, not `date +'%s %z'`") from None
    return outcomes.parse(rest.splitlines(), host.name, clock)


def estate_attempts(pool: ConnectionPool, estate: Estate, side: str, window: Window,
                    progress: Callable[[str], None]) -> list[Attempt]:
    hosts = list(estate.hosts.values())
    door_names = {host.name for host in doors(estate)}
    if not door_names:
        raise MxspecError(f"estate {estate.name}: no host has the role {DOOR_ROLE}: the canary judges the "
                          "connections its inbound MXs take")
    with ThreadPoolExecutor(max_workers=min(8, len(hosts))) as threads:
        logs = list(threads.map(lambda host: read_host(pool, host, window.since), hosts))
    lines = [line for log in logs for line in log]
    local_domains = {str(domain).lower() for host in hosts for domain in host.vars.get("local_domains") or []}
    # A relay is a hop of the estate when it names one of its hosts: by inventory name, connection target or address.
    names = frozenset(str(value) for host in hosts
                      for value in (host.name, host.target, host.vars.get("ipv6_address"), host.vars.get("smtp_address"))
                      if value)
    found = outcomes.attempts(side, lines, door_names, local_domains, window.since, window.until, names,
                              settled_before=time.time() - SETTLE_SECONDS)
    progress(f"[mxspec] {estate.name}: {len(lines)} mail log lines from {len(hosts)} hosts, "
             f"{len(found)} connections to {', '.join(sorted(door_names))}")
    return found
