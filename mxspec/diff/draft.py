"""A draft estate inventory from what the hosts do: each value with where it came from, TODOs for the rest.

`derive()` turns each host's facts (`diff/discover.py`) into the estate contract's variables, each a `Found`
(the value, the command that showed it, the hosts it was read on); `merge()` puts a value every host agrees on
in `all.vars` and a value that differs host by host on each host; `write()` writes the YAML inventory, every
line commented with its source. What no host can say (a test mailbox, mxspec's own client addresses, how
long to wait) is a `TODO` value, which preflight refuses (`contract.TODO`) until it is filled in.
"""

import re
import socket
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import yaml

from mxspec.diff.compare import MAIL_PACKAGES
from mxspec.diff.hostfacts import KNOWN_MILTERS, MAIL_SERVICES, SPAM_MARKS, HostFacts, Owner
from mxspec.diff.survey import map_uses, source_keys
from mxspec.estate import contract
from mxspec.estate.roles import ROLES


@dataclass
class Found:
    """A value and where it came from: a command and the hosts it was read on (or a file, or a TODO)."""

    value: Any
    source: str
    hosts: list[str] = field(default_factory=list)

    @property
    def comment(self) -> str:
        return f"{self.source} on {', '.join(self.hosts)}" if self.hosts else self.source


def todo(name: str, why: str = "not on any host") -> Found:
    variable = contract.CONTRACT.get(name)
    what = f"{variable.meaning} (e.g. {variable.example})" if variable else name
    return Found(f"{contract.TODO}{what}", f"TODO ({why}): fill it in")


# The values of the estate contract discover cannot read from a host: mxspec's own side of the tests
# (its client addresses, the CA it trusts), the test mailboxes, and the estate's choices of how long to
# wait and how much to allow. Each is written as a TODO, however the host is.
RUNNER_SIDE = ("outside_client", "trusted_client", "tls_ca")
# Optional values that a host cannot show but an estate may well have (a change scenario's restore runs it):
# a TODO, to be filled in or deleted.
MAYBE = {"config_apply_command": "not on any host; delete the line if the estate has no apply step"}
HOST_LEVEL = ("ansible_host", "smtp_name", "mail_log", "packages", "services", "listening", "submission_port",
              "submission_user")
TLS_VERSIONS = ("SSLv2", "SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
NOT_A_DOMAIN = re.compile(r"localhost(\..*)?|.*[:/$].*")


def _words(value: str) -> list[str]:
    return [word for word in re.split(r"[\s,]+", value) if word]


def local_domains(facts: HostFacts) -> Found | None:
    """The domains the host receives mail for: its final, virtual and relay destinations."""
    domains: dict[str, None] = {}
    used = []
    own = {facts.postconf("myhostname"), facts.postconf("mydomain") and f"localhost.{facts.postconf('mydomain')}"}
    for parameter in ("mydestination", "virtual_mailbox_domains", "virtual_alias_domains", "relay_domains"):
        found = [d for d in _words(facts.postconf(parameter)) if not NOT_A_DOMAIN.fullmatch(d) and d not in own]
        if found:
            used.append(parameter)
            domains.update(dict.fromkeys(found))
    return Found(list(domains), f"postconf -x {' '.join(used)}", [facts.name]) if domains else None


def milters(facts: HostFacts) -> list[str]:
    return _words(facts.postconf("smtpd_milters"))


def milter_owner(facts: HostFacts, milter: str) -> tuple[str, Owner | None]:
    """The service behind a milter socket, and the process listening on it (inet sockets only)."""
    kind, _, where = milter.partition(":")
    if kind == "inet":
        host, _, port = where.rpartition(":")
        for address in (host, "0.0.0.0", "*", "::"):
            for pid in facts.socket_pids.get(f"{address}:{port}", []):
                owner = facts.owners.get(pid)
                if owner:
                    return service_of(facts, owner), owner
        return "", None
    for name in KNOWN_MILTERS:  # a unix socket: named after its milter, as packages name them
        if name.split("-")[0] in where:
            return name, None
    return "", None


def service_of(facts: HostFacts, owner: Owner) -> str:
    """The service a process belongs to: its systemd unit, else the SysV service its command line names."""
    if owner.unit:
        return owner.unit
    for service in facts.enabled + facts.running:
        if service == owner.program or re.search(rf"(^|/|\s){re.escape(service)}(\s|$)", owner.command):
            return service
    return owner.program


def filters(facts: HostFacts) -> dict[str, str]:
    """Milter service -> what it does (virus, spam, DKIM signing...), or `in-house` for one no package names."""
    found = {}
    for milter in milters(facts) + _words(facts.postconf("non_smtpd_milters")):
        service, owner = milter_owner(facts, milter)
        known = next((what for name, what in KNOWN_MILTERS.items()
                      if name in (service, owner.program if owner else "")), None)
        found[milter] = f"{service or '?'} ({known or 'in-house'})"
    return found


def _in_house(facts: HostFacts) -> tuple[str, str] | None:
    """(milter socket, service) of the first milter no known filter package runs: the estate's own."""
    for milter in milters(facts):
        service, owner = milter_owner(facts, milter)
        program = owner.program if owner else ""
        if service and not any(name in (service, program) for name in KNOWN_MILTERS):
            return milter, service
    return None


def _filter_service(facts: HostFacts, kind: str) -> str | None:
    for milter in milters(facts):
        service, _owner = milter_owner(facts, milter)
        if service and kind in KNOWN_MILTERS.get(service, ""):
            return service
    return None


def next_hop_relay(route: str) -> str:
    """`smtp:[store.example.org]:25` as the mail log names the next hop: `store.example.org`."""
    destination = route.partition(":")[2]
    if destination.startswith("["):
        return destination[1:destination.find("]")]
    return destination.rpartition(":")[0] if destination.count(":") == 1 else destination


def tls_floor(protocols: str) -> str | None:
    """The oldest TLS version a protocols setting (`>=TLSv1.2`, `!SSLv2, !SSLv3`) leaves enabled."""
    words = _words(protocols)
    for word in words:
        if word.startswith(">="):
            return word[2:] if word[2:] in TLS_VERSIONS else None
    excluded = {word[1:] for word in words if word.startswith("!")}
    included = [word for word in words if not word.startswith("!")]
    for version in TLS_VERSIONS:
        if version not in excluded and (not included or version in included):
            return version if version.startswith("TLS") else None
    return None


def submission_port(facts: HostFacts) -> Found | None:
    """The port of a master.cf smtpd service (other than smtp) that offers SASL authentication."""
    for service in facts.survey.services:
        name, _, kind = service.partition("/")
        if kind != "inet" or name == "smtp":
            continue
        if facts.survey.overrides.get(f"{service}/smtpd_sasl_auth_enable", "").lower() != "yes":
            continue
        port = name.rpartition(":")[2]
        try:
            number = int(port) if port.isdigit() else socket.getservbyname(port, "tcp")
        except OSError:
            continue
        return Found(number, f"postconf -M {service} (-o smtpd_sasl_auth_enable=yes)", [facts.name])
    return None


def mail_log(facts: HostFacts) -> Found:
    explicit = facts.survey.explicit.get("maillog_file")
    if explicit:
        return Found(explicit, "postconf -n maillog_file", [facts.name])
    if facts.init == "systemd":
        return Found("journal", "systemd (no maillog_file in main.cf)", [facts.name])
    for rule in facts.syslog:
        words = rule.rstrip("\\").split()  # `mail.*  -/var/log/mail.log`: the dash only says "no sync"
        if len(words) < 2:
            continue
        selector, target = words[0], words[1].lstrip("-")
        if "mail.*" in selector and target.startswith("/"):
            return Found(target, f"syslog rule '{selector}'", [facts.name])
    return todo("mail_log", f"{facts.name} logs mail neither to the journal nor to a syslog file discover knows")


def _mail_process(facts: HostFacts, owner: Owner, services: list[str]) -> bool:
    return (owner.unit.startswith("postfix") or owner.program in ("master", "smtpd") or owner.unit in services
            or service_of(facts, owner) in services or bool(MAIL_SERVICES.fullmatch(owner.program)))


def host_values(facts: HostFacts) -> dict[str, Found]:
    """The host-level variables: its name, mail log, mail packages, mail services and sockets, submission."""
    found = {"smtp_name": Found(facts.postconf("myhostname"), "postconf -x myhostname", [facts.name]),
             "mail_log": mail_log(facts)}
    packages = [name for name in facts.survey.packages if MAIL_PACKAGES.fullmatch(name)]
    if packages:
        found["packages"] = Found(packages, "dpkg-query -W (the mail stack)", [facts.name])
    milter_services = {milter_owner(facts, milter)[0] for milter in milters(facts)} - {""}
    services = [s for s in facts.running if s in facts.enabled and not s.startswith("postfix")
                and (MAIL_SERVICES.fullmatch(s) or s in milter_services)]
    if services:
        found["services"] = Found(services, f"{'systemctl' if facts.init == 'systemd' else 'SysV rc'} "
                                  "running and enabled at boot", [facts.name])
    sockets = [f"tcp://{address}:{port}" for address_port, pids in facts.socket_pids.items()
               for address, _, port in [address_port.rpartition(":")]
               if "." in address and any(facts.owners.get(p) and _mail_process(facts, facts.owners[p], services)
                                         for p in pids)]
    if sockets:
        found["listening"] = Found(sorted(set(sockets), key=sockets.index), "ss -ltnp (mail processes)", [facts.name])
    port = submission_port(facts)
    if port:
        found["submission_port"] = port
        found["submission_user"] = todo("submission_user", f"a login of {facts.name}'s submission service")
    return found


def router_values(facts: HostFacts, domains: list[str]) -> dict[str, Found]:
    """What a router does: its in-house milter, its transport map and the next hop of the local domains."""
    found: dict[str, Found] = {}
    own = _in_house(facts)
    if own:
        found["milter_socket"] = Found(own[0], "postconf -x smtpd_milters", [facts.name])
        found["milter_service"] = Found(own[1], f"ss -ltnp (who listens on {own[0]})", [facts.name])
    if milters(facts):
        found["milter_default_action"] = Found(facts.postconf("milter_default_action"), "postconf milter_default_action",
                                               [facts.name])
    maps = [spec for spec in _words(facts.postconf("transport_maps")) if ":" in spec]
    if maps:
        found["transport_map"] = Found(maps[0], "postconf -x transport_maps", [facts.name])
        path = maps[0].partition(":")[2]
        if path.startswith("/"):
            found["transport_file"] = Found(path, "postconf -x transport_maps", [facts.name])
    routes = facts.routes.get("transport_maps", {})
    hops = Counter(routes[d] for d in domains if d in routes)
    if hops:
        route = hops.most_common(1)[0][0]
        found["mailstore_route"] = Found(route, "postmap -q (the local domains) transport_maps", [facts.name])
        found["mailstore_relay"] = Found(next_hop_relay(route), "the next hop of mailstore_route", [facts.name])
    main_cf = facts.postconf("config_directory") or "/etc/postfix"
    found["postfix_main_cf"] = Found(f"{main_cf}/main.cf", "postconf -h config_directory", [facts.name])
    return found


def inbound_values(facts: HostFacts) -> dict[str, Found]:
    """What an inbound MX does: its size limit, its virus and spam filters, how it refuses relaying."""
    found: dict[str, Found] = {}
    limit = facts.postconf("message_size_limit")
    if limit.isdigit() and int(limit) > 0:
        found["oversize_bytes"] = Found(int(limit) + 1, f"postconf message_size_limit ({limit}) + 1", [facts.name])
    virus = _filter_service(facts, "virus")
    if virus:
        found["virus_scanner_service"] = Found(virus, "postconf smtpd_milters, ss -ltnp", [facts.name])
    spam = _filter_service(facts, "spam")
    if spam in SPAM_MARKS:
        found["spam_mark"] = Found(SPAM_MARKS[spam], f"{spam}'s own header (postconf smtpd_milters)", [facts.name])
    return found


def relay_values(facts: HostFacts) -> dict[str, Found]:
    restrictions = facts.postconf("smtpd_relay_restrictions") + " " + facts.postconf("smtpd_recipient_restrictions")
    if "reject_unauth_destination" not in restrictions:
        return {}
    code = facts.postconf("relay_domains_reject_code") or "554"
    return {"relay_refused_with": Found(f"{code} 5.7.1", "postconf smtpd_relay_restrictions relay_domains_reject_code",
                                        [facts.name])}


def outbound_values(facts: HostFacts) -> dict[str, Found]:
    found: dict[str, Found] = {}
    bind = facts.postconf("smtp_bind_address")
    address = bind or (facts.addresses[0] if facts.addresses else "")
    if address:
        found["outbound_addresses"] = Found([address], "postconf smtp_bind_address" if bind else "hostname -I",
                                            [facts.name])
    selectors = dkim_keys(facts)
    if selectors:
        found["dkim_selector"] = Found(selectors[0][1], "/etc/opendkim.conf (Selector, KeyTable)", [facts.name])
    return found


def dkim_keys(facts: HostFacts) -> list[tuple[str, str, str]]:
    """(domains, selector, key file) the DKIM signer signs with: KeyTable rows, else Selector/Domain/KeyFile."""
    if facts.dkim_rows:
        return facts.dkim_rows
    selectors = facts.dkim.get("selector", [])
    domains = ",".join(facts.dkim.get("domain", []))
    key = (facts.dkim.get("keyfile") or [""])[0]
    return [(domains, selector, key) for selector in selectors]


def tls_value(facts: HostFacts) -> dict[str, Found]:
    floor = tls_floor(facts.postconf("smtpd_tls_protocols"))
    if floor is None:
        return {}
    return {"tls_minimum": Found(floor, "postconf smtpd_tls_protocols (OpenSSL's own floor may be higher)",
                                 [facts.name])}


def discovered(facts: HostFacts) -> dict[str, Any]:
    """What the host does that mxspec reads no variable for, written for the engineer (under `discovered`)."""
    on = [facts.name]
    info: dict[str, Any] = {
        "postfix": Found(facts.survey.version, "postconf mail_version", on),
        "compatibility_level": Found(facts.survey.compatibility_level, "postconf compatibility_level", on),
        "init": Found(facts.init, "/run/systemd/system", on),
        "mynetworks": Found(_words(facts.postconf("mynetworks")), "postconf -x mynetworks", on),
        "message_size_limit": Found(facts.postconf("message_size_limit"), "postconf message_size_limit", on),
        "smtpd_tls_protocols": Found(facts.postconf("smtpd_tls_protocols"), "postconf smtpd_tls_protocols", on),
        "smtpd_tls_cert_file": Found(facts.postconf("smtpd_tls_cert_file"), "postconf -x smtpd_tls_cert_file", on),
    }
    validation = {p: facts.postconf(p) for p in ("local_recipient_maps", "relay_recipient_maps",
                                                   "virtual_mailbox_maps") if facts.postconf(p)}
    if validation:
        info["recipient_validation"] = {p: Found(v, f"postconf -x {p}", on) for p, v in validation.items()}
    if milters(facts) or facts.postconf("non_smtpd_milters"):
        info["milters"] = {m: Found(what, "postconf smtpd_milters, ss -ltnp", on) for m, what in filters(facts).items()}
    maps = {}
    for use in map_uses(facts.survey):
        # entries counted only in the sources read (the route maps'): every other map stays on the host
        entries = f"; {len(source_keys(use, facts.sources))} entries in its sources" \
            if use.keyed and all(path in facts.sources for _type, path in use.keyed) else ""
        maps[use.parameter] = Found(list(use.maps), f"postconf -x {use.parameter}{entries}", on)
    if maps:
        info["maps"] = maps
    for parameter, routes in facts.routes.items():
        info.setdefault("routes", {}).update(
            {key: Found(hop, f"postmap -q {key} {parameter}", on) for key, hop in routes.items()})
    keys = dkim_keys(facts)
    if keys:
        info["dkim_keys"] = {selector: Found(f"{domains} {key}", "/etc/opendkim.conf (key file path only, not read)", on)
                             for domains, selector, key in keys}
    if facts.survey.sockets:
        info["sockets"] = {s: Found(who, "ss -ltnp", on) for s, who in facts.survey.sockets.items()}
    return info


def derive(facts: HostFacts, roles: list[str], domains: list[str]) -> dict[str, Found]:
    """The contract's variables this host's facts say, by the roles it plays."""
    found = {**host_values(facts), **relay_values(facts), **tls_value(facts)}
    if "inbound-mx" in roles:
        found.update(inbound_values(facts))
    if "smtp-router" in roles:
        found.update(router_values(facts, domains))
    if "outbound-mx" in roles:
        found.update(outbound_values(facts))
    return found


def agree(values: Iterable[Found]) -> Found | None:
    """One Found for values every host agrees on, naming every host; None where they differ."""
    values = list(values)
    if not values or any(v.value != values[0].value for v in values):
        return None
    hosts = [host for v in values for host in v.hosts]
    return Found(values[0].value, values[0].source, list(dict.fromkeys(hosts)))


@dataclass
class Draft:
    """The inventory to write: all.vars, the hosts of each role, each host's own values."""

    estate: str
    all_vars: dict[str, Any] = field(default_factory=dict)
    roles: dict[str, list[str]] = field(default_factory=dict)  # role -> hosts
    host_vars: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # comments at the top: hosts not read, DNS not answered


def merge(draft: Draft, per_host: dict[str, dict[str, Found]], estate_wide: dict[str, Found]) -> None:
    """A variable all hosts that say it agree on goes to all.vars; one they differ on, to each host."""
    names = [v.name for v in contract.VARIABLES if any(v.name in found for found in per_host.values())]
    for name in names:
        values = [found[name] for found in per_host.values() if name in found]
        common = agree(values) if name not in HOST_LEVEL else None
        if common is not None:
            draft.all_vars[name] = common
            continue
        for host, found in per_host.items():
            if name in found:
                draft.host_vars.setdefault(host, {})[name] = found[name]
    draft.all_vars.update(estate_wide)
    for variable in contract.VARIABLES:
        if variable.connection or variable.name in draft.all_vars or variable.name in HOST_LEVEL:
            continue
        if variable.name in RUNNER_SIDE or variable.name in MAYBE or variable.required or variable.steps:
            if not any(variable.name in values for values in draft.host_vars.values()):
                draft.all_vars[variable.name] = todo(variable.name, MAYBE.get(variable.name, "not on any host"))
    draft.all_vars = {v.name: draft.all_vars[v.name] for v in contract.VARIABLES if v.name in draft.all_vars} | \
                     {k: v for k, v in draft.all_vars.items() if k not in contract.CONTRACT}


# The writer: YAML by hand, for a comment on every line (a YAML library drops or misplaces them).
PLAIN = re.compile(r"[A-Za-z0-9_./@][A-Za-z0-9_./@+-]*")


def scalar(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "null" if value is None else str(value).lower()
    if isinstance(value, (int, float)):
        return str(value)
    text = str(value)
    if PLAIN.fullmatch(text) and yaml.safe_load(text) == text:
        return text
    return yaml.safe_dump(text, default_style='"', width=10_000).strip()  # double quotes: every character kept


def flow(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(flow(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{scalar(k)}: {flow(v)}" for k, v in value.items()) + "}"
    return scalar(value)


def _lines(values: dict[str, Any], indent: int) -> list[str]:
    lines = []
    pad = " " * indent
    for key, value in values.items():
        if isinstance(value, Found):
            lines.append(f"{pad}{scalar(key)}: {flow(value.value)}  # {value.comment}")
        elif isinstance(value, dict):
            lines.append(f"{pad}{scalar(key)}:")
            lines += _lines(value, indent + 2)
        else:
            lines.append(f"{pad}{scalar(key)}: {flow(value)}")
    return lines


def write(draft: Draft, header: list[str]) -> str:
    lines = [f"# {line}" if line else "#" for line in header + draft.notes]
    lines += ["all:", "  vars:"] + _lines(draft.all_vars, 4) + ["  children:"]
    written: set[str] = set()
    for role in ROLES:
        hosts = draft.roles.get(role, [])
        if not hosts:
            continue
        lines += [f"    {role}:", "      hosts:"]
        for host in hosts:
            own = draft.host_vars.get(host, {}) if host not in written else {}
            written.add(host)
            lines.append(f"        {scalar(host)}:" + ("" if own else "  # its values are under its first role above"
                                                           if host in draft.host_vars else ""))
            lines += _lines(own, 10)
    return "\n".join(lines) + "\n"


# The same draft for reading (Markdown) and for tools (JSON): every value with where it came from.

def _entry(value: Any) -> Any:
    if isinstance(value, Found):
        return {"value": value.value, "from": value.comment}
    if isinstance(value, dict):
        return {key: _entry(item) for key, item in value.items()}
    return value


def _todos(values: dict[str, Any]) -> list[str]:
    return [name for name, value in values.items()
            if isinstance(value, Found) and str(value.value).startswith(contract.TODO)]


def as_dict(draft: Draft) -> dict:
    return {"estate": draft.estate, "notes": draft.notes, "roles": draft.roles,
            "all": _entry(draft.all_vars), "hosts": {host: _entry(own) for host, own in draft.host_vars.items()},
            "todo": {"all": _todos(draft.all_vars)} | {host: _todos(own) for host, own in draft.host_vars.items()
                                                       if _todos(own)}}


def _rows(values: dict[str, Any]) -> list[str]:
    rows = ["| variable | value | from |", "| --- | --- | --- |"]
    for name, value in values.items():
        found = value if isinstance(value, Found) else None
        shown = flow(found.value if found else _entry(value)).replace("|", "/")
        rows.append(f"| {name} | `{shown}` | {found.comment.replace('|', '/') if found else ''} |")
    return rows


def markdown(draft: Draft) -> str:
    lines = [f"# mxspec discover: estate {draft.estate}", "",
             "What the hosts do, as a draft inventory: each value with the command and host it came from. "
             "A TODO is what no host can tell; mxspec refuses to run while one is left.", ""]
    lines += [f"- {note}" for note in draft.notes]
    lines += ["", "## The whole estate (all.vars)", ""] + _rows(draft.all_vars)
    for host, own in draft.host_vars.items():
        roles = [role for role, hosts in draft.roles.items() if host in hosts]
        lines += ["", f"## Host {host} ({', '.join(roles) or 'no role'})", ""] + (_rows(own) if own else ["(nothing of its own)"])
    return "\n".join(lines) + "\n"
