"""`mxspec discover ESTATE`: a draft estate inventory from what the estate's hosts do.

Per host, a bounded number of read-only commands over the shared pool (the diff's `Reader`): one for everything
but the maps (`hostfacts.DISCOVER_COMMAND`: the diff's survey — Postfix's effective configuration, defaults,
master.cf and its overrides, packages, listening sockets — and the rest of `hostfacts`), one for the transport
maps' sources (no other map's: a SASL password table stays on the host), one `postmap -q -` per transport
parameter for its routes (keys on its standard input: nothing is written on a host). Then the DNS of the
domains found (MX, SPF, DKIM, DMARC), asked of the DNS server the hosts use (not a local cache on the host).
`draft.py` turns what was read into the inventory. Roles are the given inventory's (its role groups), or `--roles`
for hosts given as raw specs: discover does not guess them.
"""


import ipaddress
import json
import re
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import dns.exception

from mxspec.checks.dnschecks import Dns, mx_records, spf_records
from mxspec.core.errors import CommandTimeout, DependencyDown, HostUnreachable, MxspecError
from mxspec.diff import draft
from mxspec.diff.command import Reader, Unread, check_writable, write_file
from mxspec.diff.hostfacts import DISCOVER_COMMAND, HostFacts, parse_facts
from mxspec.diff.survey import (
    LookupFailed,
    MapUse,
    SurveyFailed,
    map_uses,
    source_keys,
)
from mxspec.estate import contract, values
from mxspec.estate.inventory import ROLES as ROLES_VARIABLE
from mxspec.estate.inventory import Estate, Host, load_estates, raw_estate
from mxspec.estate.roles import ROLES as ROLE_NAMES
from mxspec.transport.backends import spec_variables
from mxspec.transport.connection import ConnectionPool


def route_uses(facts: HostFacts) -> list[MapUse]:
    """The transport parameters (main.cf's, a service's -o) whose tables list their keys: every key a route."""
    return [use for use in map_uses(facts.survey) if use.parameter.rpartition("/")[2] == "transport_maps" and use.keyed]


class DiscoveryReader(Reader):
    """The diff's reader (the shared pool, each thing once, hosts that could not be read), reading facts."""

    def facts(self, host: Host) -> HostFacts | None:
        """One command for the host's facts, one for its map sources, one lookup per transport parameter."""
        if host.name in self.unreachable:
            return None
        try:
            connection = self.pool.get(host)
            result = connection.run(DISCOVER_COMMAND)
        except (HostUnreachable, CommandTimeout) as error:
            self._failed(host, "reading what it does", error)
            return None
        facts = parse_facts(host.name, str(result.stdout))
        if not facts.survey.parameters:
            self._failed(host, "", SurveyFailed(f"host {host.name}: postconf printed nothing: is Postfix installed? "
                                                f"({(result.stderr or '').strip() or f'exit {result.rc}'})"))
            return None
        self.surveys[host.name] = facts.survey
        try:
            # Only the route maps' sources: every other map (a SASL password table...) stays on the host.
            facts.sources = self.texts(host, [path for use in route_uses(facts) for _type, path in use.keyed],
                                       every=False)
            for use in route_uses(facts):
                keys = source_keys(use, facts.sources)
                answers = self.look_up(host, use.maps, keys, use)
                facts.routes[use.parameter] = {key: answers[key.lower()] for key in keys if key.lower() in answers}
        except Unread:
            return None
        except LookupFailed as error:
            self.progress(f"[mxspec] {host.name}: its routes could not be looked up: {error}")
        self.progress(f"[mxspec] read {host.name}: Postfix {facts.survey.version}, {facts.init}, "
                      f"{len(facts.survey.parameters)} parameters, "
                      f"{sum(len(r) for r in facts.routes.values())} routes, {connection.testinfra.commands} commands")
        return facts


@dataclass
class Discovery:
    """What `discover()` read: the draft to write, the hosts it could not read, the commands each took (and their
    seconds: the round trips discovery costs a host)."""

    draft: draft.Draft
    unreachable: dict[str, str]
    commands: dict[str, int]
    seconds: dict[str, float]


def discover(inventories: str, names: list[str], roles_option: str | None = None,
             vault_password_file: str | None = None,
             progress: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
             connect_timeout: float = 10, command_timeout: float = 60) -> Discovery:
    estate = _estate(inventories, names, roles_option, vault_password_file)
    pool = ConnectionPool(connect_timeout, command_timeout)
    reader = DiscoveryReader(pool, progress)
    try:
        read = {name: reader.facts(host) for name, host in estate.hosts.items()}
        result = draft_of(estate, {name: facts for name, facts in read.items() if facts is not None},
                          lambda server: Dns(server, 53, command_timeout, pool.silences, []))
    finally:
        pool.close()
    for name, why in reader.unreachable.items():
        result.notes.append(f"NOT READ: {why}")
        result.host_vars.setdefault(name, {})
    counters = {name: pool.connections[name].testinfra for name in estate.hosts if name in pool.connections}
    return Discovery(result, reader.unreachable, {name: counters[name].commands if name in counters else 0
                                                  for name in estate.hosts},
                     {name: counters[name].seconds if name in counters else 0.0 for name in estate.hosts})


def _estate(inventories: str, names: list[str], roles_option: str | None, vault_password_file: str | None) -> Estate:
    """One estate of an inventory, or hosts given as raw specs (ssh://...) with their roles (--roles)."""
    raw = [name for name in names if "://" in name]
    if raw:
        if len(raw) != len(names):
            raise MxspecError("give one estate, or hosts as raw specs (ssh://...) with --roles, not both")
        return raw_estate(raw, roles_option, spec_variables)
    if roles_option:
        raise MxspecError("--roles applies to hosts given as raw specs (ssh://...); an estate's roles are its groups")
    if len(names) != 1:
        raise MxspecError(f"give one estate to discover, not {len(names)} ({', '.join(names)})")
    return load_estates(inventories, names, vault_password_file)[0]


def _connection(host: Host) -> dict[str, draft.Found]:
    """The connection settings the given inventory has for the host, copied as set (vaulted ones left out)."""
    copied = {}
    for variable in contract.VARIABLES:
        value = host.vars.get(variable.name)
        if variable.connection and variable.name != ROLES_VARIABLE and value is not None \
                and not isinstance(value, values.UNUSABLE):
            copied[variable.name] = draft.Found(value, f"as {host.origins.get(variable.name, host.where)} sets it")
    return copied


def draft_of(estate: Estate, read: dict[str, HostFacts], resolver_for: Callable[[str], Dns]) -> draft.Draft:
    """The draft inventory from the hosts' facts, the DNS asked of the server the hosts use (`resolver_for`)."""
    result = draft.Draft(estate.name, roles={role: [h.name for h in estate.hosts.values() if role in h.roles]
                                             for role in ROLE_NAMES})
    found_domains = [f for f in (draft.local_domains(facts) for facts in read.values()) if f]
    domains = list(dict.fromkeys(d for f in found_domains for d in f.value))
    per_host: dict[str, dict[str, draft.Found]] = {}
    for name, host in estate.hosts.items():
        per_host[name] = _connection(host)
        if name in read:
            per_host[name].update(draft.derive(read[name], host.roles, domains))
    estate_wide: dict[str, draft.Found] = {}
    if domains:
        estate_wide["local_domains"] = draft.Found(domains, found_domains[0].source,
                                                   [h for f in found_domains for h in f.hosts])
    addresses = [f for values in per_host.values() for f in [values.pop("outbound_addresses", None)] if f]
    if addresses:
        estate_wide["outbound_addresses"] = draft.Found(list(dict.fromkeys(a for f in addresses for a in f.value)),
                                                        addresses[0].source, [h for f in addresses for h in f.hosts])
    asked = {name: usable_nameservers(facts)[:1] for name, facts in read.items()}
    servers = Counter(server for first in asked.values() for server in first)
    if servers:
        server = servers.most_common(1)[0][0]
        estate_wide["dns_server"] = draft.Found(server, "/etc/resolv.conf (its first nameserver not on the host)",
                                                [n for n, first in asked.items() if first == [server]])
        selectors = list(dict.fromkeys(s for facts in read.values() for _d, s, _k in draft.dkim_keys(facts)))
        estate_wide.update(_dns(resolver_for(server), server, domains, _askable(selectors, "DKIM selector", result), result))
    elif any(facts.nameservers for facts in read.values()):
        estate_wide["dns_server"] = draft.todo("dns_server", "the hosts resolve through a local cache: "
                                                             "give the estate's DNS server")
        result.notes.append("DNS not read: the hosts resolve through a local cache (a loopback or link-local "
                            "nameserver), which asked from here would be this machine's own resolver")
    result.notes.append("not read: ipv6_address, mta_sts_mode, tls_rpt_address; the IPv6, MTA-STS and TLS-RPT "
                        "scenarios stay not applicable until the inventory declares them")
    draft.merge(result, per_host, estate_wide)
    for name, facts in read.items():
        result.host_vars.setdefault(name, {})["discovered"] = draft.discovered(facts)
    return result


def usable_nameservers(facts: HostFacts) -> list[str]:
    """The host's nameservers that mean the same asked from here: not a loopback or link-local address (a
    local cache, 127.0.0.53: asked from the runner, that is the runner's own resolver)."""
    usable = []
    for server in facts.nameservers:
        try:
            address = ipaddress.ip_address(server)
        except ValueError:  # not an address: resolv.conf's resolver would ignore it too
            continue
        if not (address.is_loopback or address.is_link_local):
            usable.append(server)
    return usable


# A DNS name as discover asks it: labels of 1 to 63 letters, digits, hyphens or underscores (a DKIM selector is
# such labels too, RFC 6376 3.1), 253 characters in all. Anything else, asked, would be a resolver's exception.
LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
DNS_NAME = re.compile(rf"{LABEL}(?:\.{LABEL})*\.?")


def _askable(names: list[str], what: str, result: draft.Draft) -> list[str]:
    """The names that can be asked of DNS; each other one a note (it cannot be published either)."""
    valid = [name for name in names if DNS_NAME.fullmatch(name) and len(name) <= 253]
    result.notes.extend(f"{what} {name!r} is not a DNS name: not asked" for name in names if name not in valid)
    return valid


def _dns(resolver: Dns, server: str, domains: list[str], selectors: list[str], result: draft.Draft) -> dict[str, Any]:
    """The domains' MX, SPF, DKIM and DMARC records, asked of the DNS server the hosts use (bounded, once each)."""
    records: dict[str, Any] = {}
    mx: dict[str, list[str]] = {}
    domains = _askable(domains, "local domain", result)
    try:
        for domain in domains:
            where = f"DNS {server}"
            mx[domain] = [rr.rstrip(".") for rr in mx_records(resolver, domain)]
            found = {"MX": draft.Found(mx[domain], f"{where} {domain} MX"),
                     "SPF": draft.Found(spf_records(resolver, domain), f"{where} {domain} TXT")}
            for selector in selectors:
                name = f"{selector}._domainkey.{domain}"
                if len(name) > 253:
                    result.notes.append(f"DKIM {name} is longer than a DNS name: not asked")
                    continue
                found[f"DKIM {selector}"] = draft.Found([t[:60] + ("..." if len(t) > 60 else "")
                                                         for t in resolver.txt(name)], f"{where} {name} TXT")
            found["DMARC"] = draft.Found(resolver.txt(f"_dmarc.{domain}"), f"{where} _dmarc.{domain} TXT")
            records[domain] = found
    except (DependencyDown, AssertionError) as error:
        result.notes.append(f"DNS not read: {error}")
    except dns.exception.DNSException as error:  # a name the checks above let through: said, not a traceback
        result.notes.append(f"DNS not read: {type(error).__name__}: {error}")
    wide: dict[str, Any] = {}
    sets = {tuple(v) for v in mx.values()}
    if len(sets) == 1 and mx[domains[0]]:
        wide["mx_records"] = draft.Found(mx[domains[0]], f"DNS {server} MX of {', '.join(domains)}")
    elif mx:
        result.notes.append(f"the local domains' MX records differ: {mx}")
    if records:
        wide["discovered_dns"] = records
    return wide


def run(names: list[str], inventories: str, output: str | None, roles_option: str | None = None,
        vault_password_file: str | None = None, connect_timeout: float = 10, command_timeout: float = 60,
        markdown: str | None = None, json_file: str | None = None) -> int:
    check_writable(output, markdown, json_file)
    found = discover(inventories, names, roles_option, vault_password_file, connect_timeout=connect_timeout,
                     command_timeout=command_timeout)
    given = "--roles" if roles_option else f"the role groups of {inventories}"
    text = draft.write(found.draft, [
        f"Draft inventory of estate {found.draft.estate}, written by `mxspec discover` from what its hosts do.",
        f"Roles are as {given} say. Each value says where it came from: `<command> on <host>`.",
        "A TODO value is what no host can tell (test mailboxes, mxspec's own addresses, how long to wait):",
        "fill each in; mxspec refuses to run while one is left. `discovered` values are for reading: mxspec",
        "reads none of them.", ""])
    if markdown:
        write_file(markdown, draft.markdown(found.draft))
    if json_file:
        write_file(json_file, json.dumps(draft.as_dict(found.draft), indent=2) + "\n")
    if output:
        write_file(output, text)
        print(f"mxspec: wrote {output} ({sum(1 for line in text.splitlines() if contract.TODO in line)} TODO values)",
              file=sys.stderr)
    else:
        print(text, end="")
    for host, why in found.unreachable.items():
        print(f"mxspec: {why}" if host in why else f"mxspec: host {host}: {why}", file=sys.stderr)
    return 1 if found.unreachable else 0
