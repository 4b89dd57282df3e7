"""The estate contract: every inventory variable mxspec reads, declared once.

Each `Variable` says its name, type, meaning, default (if it has one), an example, and who reads
it: the features (`{{ name }}`, found by scanning them), the step functions named in `steps`
(`module.function` under `mxspec.steps`; their scenarios need it), or the connection. Steps read
values only through `Subject.setting(name)`, which applies the default and the type here.
Preflight (`mxspec.bdd.preflight`) checks the selected estates against the contract before any
host is contacted; `mxspec vars` prints it; the README's inventory table is checked against it.

`HOST_PARAMETERS` are the Postfix parameters whose values differ host by host by nature (names,
addresses), each with its expected value rendered from the host's variables
(`host_parameters()`): a feature or report that compares hosts or estates leaves these out, or
compares each with that value. `HOST_SPECIFIC`, `DERIVED_FROM_NAME` and `NOT_CONFIGURATION` extend
them to every parameter that differs host by host by nature, and `host_specific_parameters` lets an
estate name more.
"""

import difflib
import ipaddress
import re
from collections.abc import Callable, Container, Mapping
from dataclasses import dataclass, field
from typing import Any


class _Required:
    def __repr__(self) -> str:
        return "required"


REQUIRED: Any = _Required()
# What `mxspec discover` writes for a value no host can tell (a test mailbox, how long to wait): preflight
# refuses a value that starts with it, naming the file, line and variable, until someone fills it in.
TODO = "TODO: "


def is_todo(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(TODO)


@dataclass(frozen=True)
class Type:
    name: str
    problem: Callable[[Any], str | None]  # what is wrong with a value, or None
    convert: Callable[[Any], Any] = lambda value: value

    def check(self, value: Any) -> str | None:
        return self.problem(value)


def _text(value: Any) -> str | None:
    return None if isinstance(value, (str, int, float)) and not isinstance(value, bool) else "is not text"


def _number(kind: type, low: float, high: float | None = None) -> Callable[[Any], str | None]:
    def problem(value: Any) -> str | None:
        if isinstance(value, bool):
            return "is a boolean, not a number"
        try:
            number = kind(value)
        except (TypeError, ValueError):
            return "is not a number"
        if isinstance(value, float) and kind is int and value != int(value):
            return "is not a whole number"
        if number < low or (high is not None and number > high):
            return f"is out of range ({low:g}..{high:g})" if high is not None else f"is below {low:g}"
        return None
    return problem


def _pattern(regex: str, what: str) -> Callable[[Any], str | None]:
    compiled = re.compile(regex)

    def problem(value: Any) -> str | None:
        if _text(value) or not compiled.fullmatch(str(value)):
            return f"is not {what}"
        return None
    return problem


def _ip(value: Any) -> str | None:
    try:
        ipaddress.ip_address(str(value))
    except ValueError:
        return "is not an IP address"
    return None


def _ipv6(value: Any) -> str | None:
    try:
        ipaddress.IPv6Address(str(value))
    except ValueError:
        return "is not an IPv6 address"
    return None


def _list_of(item: Type) -> Type:
    def problem(value: Any) -> str | None:
        if not isinstance(value, list):
            return "is not a list (write [a, b] in YAML)"
        for index, element in enumerate(value):
            wrong = item.check(element)
            if wrong:
                return f"item {index + 1} ({element!r}) {wrong}"
        return None
    return Type(f"list of {item.name}", problem, lambda value: [item.convert(v) for v in value])


def _host_mapping(value: Any) -> str | None:
    if not isinstance(value, dict):
        return "is not a mapping (ansible_host, ansible_user, maildir_root, ...)"
    missing = [key for key in ("ansible_host", "maildir_root") if key not in value]
    if missing:
        return f"has no {' and no '.join(missing)} (the host's address or ssh alias; where its Maildirs are)"
    return None


def _bool(value: Any) -> str | None:
    if isinstance(value, bool) or str(value).lower() in ("yes", "no", "true", "false", "on", "off", "1", "0"):
        return None
    return "is not a boolean (true or false)"


def _roles(value: Any) -> str | None:
    from mxspec.estate.roles import ROLES

    names = value.split(",") if isinstance(value, str) else value
    if not isinstance(names, list):
        return "is not a list of roles"
    unknown = [str(n).strip() for n in names if str(n).strip().replace("_", "-") not in ROLES]
    return f"names unknown roles {', '.join(unknown)} (known: {', '.join(ROLES)})" if unknown else None


TEXT = Type("text", _text, str)
DOMAIN = Type("domain", _pattern(r"(?=.{1,253}$)([A-Za-z0-9_]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*"
                                 r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?", "a domain name"), str)
ADDRESS = Type("mail address", _pattern(r"[^@\s]+@[^@\s]+", "a mail address (local@domain)"), str)
IP = Type("IP address", _ip, str)
IPV6 = Type("IPv6 address", _ipv6, str)
SECONDS = Type("seconds", _number(float, 0.001), float)
COUNT = Type("count", _number(int, 0), int)
PORT = Type("port", _number(int, 1, 65535), int)
PATH = Type("absolute path", _pattern(r"/\S*", "an absolute path"), str)
SERVICE = Type("service name", _pattern(r"[\w@.:-]+", "a service name"), str)
MAP = Type("Postfix map", _pattern(r"[a-z0-9_]+:\S+", "a Postfix map (type:name, e.g. hash:/etc/postfix/transport)"), str)
NEXTHOP = Type("Postfix next hop", _pattern(r"[a-z0-9_-]+:\S*", "a Postfix next hop (transport:destination)"), str)
REPLY = Type("SMTP reply", _pattern(r"[245](\d\d)?( \d\.\d{1,3}\.\d{1,3})?", 'an SMTP reply (e.g. "554 5.7.1")'), str)
HEADER = Type("header line", _pattern(r"[\x21-\x39\x3b-\x7e]+: ?.*", 'a header line ("Name: value")'), str)
SOCKET = Type("socket", _pattern(r"(tcp|tcp6|udp|udp6|unix)://\S+", "a socket (tcp://ADDRESS:PORT)"), str)
MILTER_SOCKET = Type("milter socket", _pattern(r"(inet:\S+:\d+|unix:/\S+|/\S+)", "a milter socket (inet:HOST:PORT)"), str)
MX_RECORD = Type("MX record", _pattern(r"\d+ \S+", 'an MX record ("10 mx.example.org")'), str)
MAIL_LOG = Type("journal or path", _pattern(r"journal|/\S*", "journal or an absolute path"), str)
TLS_VERSION = Type("TLS version", _pattern(r"TLSv1(\.[0-3])?", "a TLS version (TLSv1.2, TLSv1.3)"), str)
HOST = Type("host mapping", _host_mapping)
STS_MODE = Type("MTA-STS mode", _pattern(r"enforce|testing", "an MTA-STS mode (enforce or testing)"), str)
BOOLEAN = Type("boolean", _bool, lambda value: value if isinstance(value, bool) else str(value).lower() in
               ("yes", "true", "on", "1"))
MAPPING = Type("mapping", lambda value: None if isinstance(value, dict) else "is not a mapping")
ROLE_LIST = Type("list of roles", _roles,
                 lambda value: [r.strip() for r in (value.split(",") if isinstance(value, str) else value) if r.strip()])
TEXTS, DOMAINS, ADDRESSES, IPS = _list_of(TEXT), _list_of(DOMAIN), _list_of(ADDRESS), _list_of(IP)
HEADERS, SOCKETS, MX_RECORDS, SERVICES = _list_of(HEADER), _list_of(SOCKET), _list_of(MX_RECORD), _list_of(SERVICE)


@dataclass(frozen=True)
class Variable:
    name: str
    type: Type
    meaning: str
    example: str
    default: Any = REQUIRED
    steps: tuple[str, ...] = ()  # step functions (module.function) that cannot work without it
    connection: bool = False  # read by the transport for every host, not by scenarios
    only_with: str | None = None  # needed only where this other variable is set (submission_user: submission_port)
    group: str = "behaviour"

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    @property
    def fills_in(self) -> bool:
        """Whether a default stands in where the inventory sets nothing (None stands for nothing)."""
        return self.default is not REQUIRED and self.default is not None


def _v(name: str, type_: Type, meaning: str, example: str, **kw: Any) -> Variable:
    return Variable(name, type_, meaning, example, **kw)


# Postfix parameters that differ host by host: name -> default, rendered from the host's variables.
HOST_PARAMETERS = {
    "myhostname": "{{ smtp_name | default(inventory_hostname) }}",
    "inet_interfaces": "all",
    "proxy_interfaces": "",
    "smtp_bind_address": "",
    "smtp_bind_address6": "",
    "smtp_helo_name": "$myhostname",
}

def host_parameters(variables: dict[str, Any], inventory_hostname: str) -> dict[str, str]:
    """HOST_PARAMETERS with the values expected on this host (`myhostname`: its `smtp_name`)."""
    from mxspec.estate.render import Renderer

    raw = {**variables, **{f"postfix.{k}": v for k, v in HOST_PARAMETERS.items()}}
    renderer = Renderer(raw, {"inventory_hostname": inventory_hostname}, lambda name: "contract.HOST_PARAMETERS")
    return {name: str(renderer.final(f"postfix.{name}")) for name in HOST_PARAMETERS}


# Every parameter whose value differs host by host by nature — names, addresses, each host's own
# certificate — so that a difference in it is expected, not a change of behaviour. HOST_PARAMETERS
# first (their values the inventory determines); then the certificate and key paths, since each
# host may keep its own where it likes (what is served is checked by the STARTTLS scenarios, not by
# a path). Whatever compares hosts (`mxspec diff`, the hosts of a role compared) reads it here.
HOST_SPECIFIC = frozenset(HOST_PARAMETERS) | frozenset(
    f"{client}_tls_{kind}_file" for client in ("smtpd", "smtp", "lmtp")
    for kind in ("cert", "key", "dcert", "dkey", "eccert", "eckey")) | frozenset(
    {"smtpd_tls_chain_files", "smtp_tls_chain_files", "lmtp_tls_chain_files"})
# Derived from the host's name unless main.cf sets them otherwise: host-specific when so derived.
DERIVED_FROM_NAME = frozenset({"mydomain", "myorigin"})
# What postconf prints of the running program, not of the configuration: the version (compared as
# packages where it matters), the process's own id and name.
NOT_CONFIGURATION = frozenset({"mail_version", "mail_release_date", "process_id", "process_name"})


def derived_from_name(name: str, expanded: Mapping[str, str], explicit: Container[str]) -> bool:
    """Whether a DERIVED_FROM_NAME parameter is, on this host: main.cf leaves it to its default, or
    sets it to the host's own name or domain. `expanded`: the host's parameters, $names expanded
    (postconf -x); `explicit`: the names main.cf sets (postconf -n)."""
    value = expanded.get(name, "")
    return name in DERIVED_FROM_NAME and (
        name not in explicit or value in (expanded.get("myhostname"), expanded.get("mydomain")))


_SEND = ("smtp.announced_size_refused", "smtp.message_sent", "smtp.relayed_as_logged")
_TLS = ("smtp.starttls_certificate", "submission.auth_only_after_starttls", "submission.wrong_password_refused")
_DNS = ("dns.mx_records_are", "dns.mx_fcrdns", "dns.one_spf_record", "dns.spf_lookup_limit", "dns.spf_allows",
        "dns.dkim_key_published", "dns.dmarc_policy")
# MTA-STS and TLS-RPT, where the estate declares them: the steps that ask the estate's DNS, and those
# that check TLS against the estate's CA.
_MTA_STS = ("dns.mta_sts_record", "dns.mta_sts_policy_served", "dns.mta_sts_policy_covers_mx",
            "dns.mx_starttls_names", "dns.tls_rpt_record")
_MTA_STS_TLS = ("dns.mta_sts_policy_served", "dns.mta_sts_policy_covers_mx", "dns.mx_starttls_names")
_IPV6_DNS = ("dns.ipv6_aaaa_records", "dns.ipv6_fcrdns")

VARIABLES: tuple[Variable, ...] = (
    # How mxspec reaches a host (Ansible's names, so existing inventories work unchanged).
    _v("ansible_host", TEXT, "the host's address or ssh alias (legacy estate files must set it)", "mx1.example.org",
       default="the inventory host name", connection=True, group="connection"),
    _v("ansible_user", TEXT, "the user mxspec logs in as", "root", default=None, connection=True, group="connection"),
    _v("ansible_port", PORT, "the ssh port", "22", default=None, connection=True, group="connection"),
    _v("ansible_ssh_private_key_file", PATH, "the ssh key to log in with", "/home/ops/.ssh/id_ed25519", default=None,
       connection=True, group="connection"),
    _v("ansible_connection", TEXT, "`local`: the machine mxspec runs on; otherwise ssh", "local", default="ssh",
       connection=True, group="connection"),
    _v("ansible_ssh_common_args", TEXT, "extra ssh options, e.g. a bastion (ProxyJump)", "-o ProxyJump=ops@bastion",
       default=None, connection=True, group="connection"),
    _v("ansible_ssh_extra_args", TEXT, "extra ssh options for ssh only", "-o StrictHostKeyChecking=yes", default=None,
       connection=True, group="connection"),
    _v("ansible_become", BOOLEAN, "run privileged commands through sudo", "true", default=False, connection=True,
       group="connection"),
    _v("ansible_become_user", TEXT, "the user sudo runs commands as", "root", default="root", connection=True,
       group="connection"),
    _v("ansible_become_method", TEXT, "how to become that user (sudo)", "sudo", default="sudo", connection=True,
       group="connection"),
    _v("mxspec_ssh_config", PATH, "an ssh_config file for every ssh mxspec runs", "/var/lib/mxspec-lab/run/ssh_config",
       default=None, connection=True, group="connection"),
    _v("mxspec_transport", TEXT, "ssh (one persistent channel per host over a shared OpenSSH connection), "
       "ssh-command (one ssh session per command) or paramiko", "ssh", default="ssh", connection=True,
       group="connection"),
    _v("mxspec_roles", ROLE_LIST, "the host's roles, where no role group (inbound-mx, ...) lists it",
       "[inbound-mx, outbound-mx]", default=None, connection=True, group="connection"),
    # What the host is and announces.
    _v("smtp_name", DOMAIN, "the name the host announces in its SMTP greeting and certificate", "mx1.example.org",
       steps=(*_TLS, "smtp.old_tls_refused", "smtp.greeting_in_time", "smtp.certificates_valid_and_matching",
              "smtp.greeted_over_ipv6")),
    _v("smtp_address", TEXT, "where mxspec's SMTP probes connect (name or address), if not the connection target's",
       "192.0.2.25", default=None),
    _v("ipv6_address", IPV6, "the host's IPv6 address, where it has one; the IPv6 scenarios skip without",
       "2001:db8::25", default=None),
    _v("host_specific_parameters", TEXTS, "Postfix parameters each host of a role may set its own way, besides "
       "those that differ by nature (myhostname, ...): left out where the hosts of a role are compared", "[relayhost]",
       default=[]),
    _v("mail_log", MAIL_LOG, "where the host logs mail: `journal` or a file", "/var/log/mail.log", default="journal"),
    _v("packages", TEXTS, "packages the host's role needs installed", "[postfix, opendkim]"),
    _v("services", SERVICES, "services the host's role runs", "[postfix, opendkim]"),
    _v("listening", SOCKETS, "sockets the host's role listens on", "[tcp://0.0.0.0:25]"),
    _v("virus_scanner_service", SERVICE, "the virus scanner's milter service", "clamav-milter"),
    _v("queue_limit", COUNT, "most messages the mail queue may hold", "20"),
    _v("deferred_max_age_minutes", COUNT, "longest a message may wait in the deferred queue, in minutes, "
       "before it counts as stuck", "60", default=60),
    _v("greeting_seconds", SECONDS, "longest wait for the SMTP greeting", "5"),
    _v("tls_minimum", TLS_VERSION, "the oldest TLS version the estate accepts; scenarios needing TLS 1.2 skip without",
       "TLSv1.2", default=None),
    _v("certificate_margin_days", COUNT, "the fewest days a certificate the hosts serve may have left", "21",
       default=21),
    _v("tls_ca", PATH, "CA file (on mxspec's machine) that signs the hosts' certificates", "/etc/ssl/certs/ca.pem",
       steps=(*_TLS, *_MTA_STS_TLS)),
    # The estate's mail.
    _v("local_domains", DOMAINS, "the domains the estate receives mail for", "[example.org, example.net]",
       steps=(*_DNS, *_MTA_STS)),
    _v("test_sender", ADDRESS, "sender of test messages, outside the estate", "probe@partner.example", steps=_SEND),
    _v("test_recipient", ADDRESS, "a test mailbox of a local domain", "probe@example.org"),
    _v("test_recipients", ADDRESSES, "one test mailbox per local domain", "[probe@example.org, probe@example.net]"),
    _v("internal_sender", ADDRESS, "a sender in a local domain, for outbound mail", "probe@example.org"),
    _v("remote_recipient", ADDRESS, "a mailbox outside the estate, at the remote peer", "probe@partner.example"),
    _v("relay_refused_with", REPLY, "the reply to a relay attempt", "554 5.7.1"),
    _v("oversize_bytes", COUNT, "a message size above the estate's limit", "20000000"),
    _v("delivery_seconds", SECONDS, "longest wait for a delivery to show", "60",
       steps=("smtp.relayed_as_logged",)),
    _v("spam_mark", HEADER, "the header the spam filter adds to spam", "X-Spam-Flag: YES",
       steps=("smtp.refused_or_marked_spam",)),
    _v("delivery_headers", HEADERS, "headers every delivered message carries", "[\"X-Virus-Status: Clean\"]"),
    _v("outside_client", IP, "mxspec's source address as a client outside the estate (default: its own)",
       "198.51.100.7", default=None),
    _v("trusted_client", IP, "mxspec's source address inside the authorised networks", "10.0.0.250",
       steps=("smtp.an_smtp_client",)),
    _v("submission_port", PORT, "the submission port; scenarios on submission skip without it", "587", default=None),
    _v("submission_user", ADDRESS, "a submission login (its password is never needed: only refusals are tested)",
       "probe@example.org", steps=("submission.wrong_password_refused",), only_with="submission_port"),
    _v("mailstore", HOST, "the host the mailboxes live on, with `maildir_root`", "{ansible_host: store1, "
       "maildir_root: /var/mail/vhosts}", default=None, steps=("smtp.arrives_with_headers", "smtp.refused_or_marked_spam")),
    _v("remote_mailstore", HOST, "the remote peer's mail host, with `maildir_root`", "{ansible_host: peer1, "
       "maildir_root: /var/mail}", steps=("submission.arrives_signed",)),
    # DNS.
    _v("dns_server", IP, "the DNS server to ask about the estate", "192.0.2.53",
       steps=(*_DNS, *_MTA_STS, *_IPV6_DNS, "submission.arrives_signed")),
    _v("dns_port", PORT, "its port", "53", default=53),
    _v("mx_records", MX_RECORDS, "the local domains' MX records", "[10 mx1.example.org]"),
    _v("outbound_addresses", IPS, "addresses outbound mail leaves from", "[192.0.2.41]"),
    _v("dkim_selector", TEXT, "the DKIM selector outbound mail is signed with", "mail2026"),
    # MTA-STS and TLS-RPT: set only by an estate that publishes them.
    _v("mta_sts_mode", STS_MODE, "the mode of the estate's MTA-STS policy; the MTA-STS scenario skips without",
       "enforce", default=None),
    _v("tls_rpt_address", ADDRESS, "where TLS-RPT reports go (the rua mailto:); the TLS-RPT scenario skips without",
       "tls-reports@example.org", default=None),
    # The router and its milter.
    _v("milter_service", SERVICE, "the in-house milter's service", "mail-router-milter"),
    _v("milter_socket", MILTER_SOCKET, "where Postfix reaches the milter", "inet:127.0.0.1:9900"),
    _v("milter_header", TEXT, "the header the milter stamps", "X-Routed-By"),
    _v("milter_default_action", TEXT, "Postfix's milter_default_action", "tempfail"),
    _v("transport_map", MAP, "the transport map", "hash:/etc/postfix/transport"),
    _v("mailstore_route", NEXTHOP, "the next hop the transport map gives local domains", "smtp:[store.example.org]"),
    _v("mailstore_relay", TEXT, "that next hop as the mail log names it", "store.example.org"),
    # Change scenarios (--mx-change).
    _v("pickup_seconds", SECONDS, "longest wait for the host to pick a change up", "90", group="change"),
    _v("postfix_main_cf", PATH, "Postfix's main.cf", "/etc/postfix/main.cf", group="change"),
    _v("config_apply_command", TEXT, "run after a restore, as the estate's own pick-up would", "/usr/local/sbin/apply",
       default=None, group="change"),
    _v("transport_file", PATH, "the transport map's source file", "/etc/postfix/transport", group="change"),
    _v("change_domain", DOMAIN, "a domain no route exists for; the mailstore accepts it", "changes.example.org",
       group="change"),
    _v("change_recipient", ADDRESS, "a test mailbox of change_domain", "probe@changes.example.org", group="change"),
    _v("change_banner", TEXT, "text put in the SMTP banner", "mxspec-change-probe", group="change"),
    _v("change_stamp", TEXT, "value put in the milter's settings", "mxspec-change-probe", group="change"),
    _v("milter_config", PATH, "the milter's settings file", "/etc/mail-router-milter.conf", group="change"),
    _v("milter_stamp_setting", TEXT, "the milter setting holding its stamp", "value", group="change"),
    _v("config_refused_log", TEXT, "what the pick-up logs when it refuses settings", "refused /etc/milter.conf",
       group="change"),
)

CONTRACT: dict[str, Variable] = {variable.name: variable for variable in VARIABLES}
STEP_NEEDS: dict[str, list[str]] = {}
for _variable in VARIABLES:
    for _step in _variable.steps:
        STEP_NEEDS.setdefault(_step, []).append(_variable.name)


@dataclass
class Problem:
    where: str
    message: str
    warning: bool = False

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass
class Declared:
    """Where a near miss of a declared name is set, and which name it misses."""

    given: str
    declared: str
    where: str = field(default="")


def typed(name: str, value: Any) -> Any:
    """The value converted to its declared type (checked before: preflight refused wrong types)."""
    variable = CONTRACT[name]
    if value is None:
        return None
    return variable.type.convert(value)


def problem(name: str, value: Any) -> str | None:
    """What is wrong with this value of a declared variable, or None."""
    variable = CONTRACT.get(name)
    if variable is None or value is None and not variable.required:
        return None
    wrong = variable.type.check(value)
    return f"inventory variable '{name}' {wrong}; expected {variable.type.name}, e.g. {variable.example}" if wrong else None


def near_miss(name: str) -> str | None:
    """The declared name an undeclared one nearly spells (`local_domain` -> `local_domains`), or None."""
    if name in CONTRACT:
        return None
    close = difflib.get_close_matches(name, list(CONTRACT), n=1, cutoff=0.85)
    return close[0] if close else None
