"""What a host does beyond the diff's survey, read in the same one read-only command (`DISCOVER_COMMAND`):
the init system, services running and enabled at boot (systemd or SysV), who owns each listening socket, the
host's addresses and resolver, where syslog writes mail, and the DKIM signer's selectors and key *file paths*.

Nothing secret leaves a host: the DKIM signer's settings are filtered on the host to the names of selectors,
domains and key files (a key table may hold a key inline: such a value is replaced before it is printed; a
table given as a URL has its user:password blanked), no key file is opened, and of a listening process's
command line only its program is printed. The parsing is plain functions of text, tested on recorded outputs without a host.
"""

import re
from dataclasses import dataclass, field

from mxspec.diff.survey import MARK, SURVEY_COMMAND, Survey, listener, parse_survey, sections

# SysV: the services of the current runlevel whose script has a `status)` case are asked it (read-only by the
# LSB). Only that label counts: a script that merely mentions "status" may start its service from its `*)` branch.
_RUNLEVEL = "r=$(runlevel 2>/dev/null | awk '{print $2}'); case \"$r\" in [0-9S]) ;; *) r=2;; esac"
_SYSV_ENABLED = f"{_RUNLEVEL}; ls /etc/rc$r.d 2>/dev/null | sed -n 's/^S[0-9]*//p'"
HAS_STATUS = "grep -qsE '(^|[|[:space:]])status\\)'"
_SYSV_RUNNING = (f"{_RUNLEVEL}; for s in $(ls /etc/rc$r.d 2>/dev/null | sed -n 's/^S[0-9]*//p'); do "
                 f"{HAS_STATUS} /etc/init.d/$s && /etc/init.d/$s status >/dev/null 2>&1 && echo $s; done")
_SYSTEMD = "[ -d /run/systemd/system ]"
# A KeyTable row is `name domain:selector:keyfile`, where keyfile may be the private key itself: each row is
# printed with its key file only if that is a path, so no key ever leaves the host. Each row is marked
# (`ROW`): an indented line of opendkim.conf is a setting, not a row.
ROW = "KeyTableRow"
KEYTABLE_ROWS = ("sed -e 's/#.*//' | awk 'NF>=2{n=split($2,f,\":\"); k=f[3]; "
                 f"if (k !~ /^\\//) k=\"(inline key, not read)\"; print \"{ROW}\", $1, f[1] \":\" f[2] \":\" k}}'")
# A table given as a URL (`dsn:mysql://user:password@db/...`) carries its credentials: blanked on the host.
NO_CREDENTIALS = "sed 's#://[^@/]*@#://***@#'"
# The DKIM signer's settings that name things, never secrets: OpenDKIM's selector, domains, key file and tables.
_OPENDKIM = (f"grep -hsiE '^[[:space:]]*(Domain|Selector|KeyFile|KeyTable|SigningTable|Socket)[[:space:]]' "
             f"/etc/opendkim.conf | {NO_CREDENTIALS}; "
             "for t in $(awk 'tolower($1)==\"keytable\"{print $2}' /etc/opendkim.conf 2>/dev/null); "
             f"do echo \"KeyTableRows ${{t#*:}}\"; {{ {KEYTABLE_ROWS}; }} < \"${{t#*:}}\" 2>/dev/null; done | {NO_CREDENTIALS}")
DISCOVER_SECTIONS = {
    "init": f"if {_SYSTEMD}; then echo systemd; else echo sysv; fi",
    "enabled": f"if {_SYSTEMD}; then systemctl list-unit-files --type=service --state=enabled --no-legend --no-pager "
               f"| awk '{{print $1}}'; else {_SYSV_ENABLED}; fi",
    "running": f"if {_SYSTEMD}; then systemctl list-units --type=service --state=running --no-legend --no-pager --plain "
               f"| awk '{{print $1}}'; else {_SYSV_RUNNING}; fi",
    # Who holds each listening socket: its process's systemd unit (if any) and program. Of its command line only
    # argv[0] leaves the host, and argv[1] when that is a file (an interpreter's script: how a SysV service is
    # known); the arguments after may be secrets (`--requirepass ...`). netstat: hosts older than ss.
    "owners": "for p in $( (ss -ltnp || netstat -ltnp) 2>/dev/null | grep -oE 'pid=[0-9]+|[[:space:]][0-9]+/' "
              "| tr -dc '0-9\\n' | sort -u); do a0=$(tr '\\0' '\\n' </proc/$p/cmdline 2>/dev/null | sed -n 1p); "
              "a1=$(tr '\\0' '\\n' </proc/$p/cmdline 2>/dev/null | sed -n 2p); case \"$a1\" in /*) [ -f \"$a1\" ] || a1=;; "
              "*) a1=;; esac; printf '%s\\t%s\\t%s\\n' \"$p\" "
              "\"$(grep -o '[^/]*\\.service' /proc/$p/cgroup 2>/dev/null | head -n1)\" \"$a0${a1:+ $a1}\"; done",
    "addresses": "hostname -I 2>/dev/null || ip -4 -o addr show scope global | awk '{print $4}' | cut -d/ -f1",
    "resolver": "grep -s '^nameserver' /etc/resolv.conf",
    "syslog": "grep -hsE '^[^#]*mail\\.(\\*|info)' /etc/rsyslog.conf /etc/rsyslog.d/*.conf /etc/syslog.conf",
    "opendkim": _OPENDKIM,
}
DISCOVER_COMMAND = SURVEY_COMMAND + "; " + "; ".join(
    f"echo '{MARK}{name}'; {{ {command}; }} 2>/dev/null" for name, command in DISCOVER_SECTIONS.items())

# Services that are part of a mail system, known by name: the filters and signers beside Postfix. A service
# that holds a listening socket Postfix talks to (a milter) counts too, whatever its name.
MAIL_SERVICES = re.compile(r"opendkim|opendmarc|rspamd|clamav-daemon|clamav-milter|spamd|spamassassin|spamass-milter|"
                           r"amavis|amavisd-new|postgrey|policyd-.*|saslauthd|dovecot")
# Milters by what they are: the filters known by their process, each with what it filters.
KNOWN_MILTERS = {"clamav-milter": "virus", "clamd": "virus", "spamass-milter": "spam", "rspamd": "spam",
                 "spamd": "spam", "amavis": "virus and spam", "opendkim": "DKIM signing", "opendmarc": "DMARC"}
# Where a spam filter says a message is spam, in its own fixed words.
SPAM_MARKS = {"spamass-milter": "X-Spam-Flag: YES", "spamassassin": "X-Spam-Flag: YES"}


@dataclass
class Owner:
    """A process holding a listening socket: its service (systemd unit or SysV script) and command line."""

    pid: str
    unit: str
    command: str

    @property
    def program(self) -> str:
        first = self.command.split()[0] if self.command.split() else ""
        return first.rsplit("/", 1)[-1]


@dataclass
class HostFacts:
    """What one host does, as read: the survey and the rest."""

    name: str
    survey: Survey
    init: str = "?"  # systemd or sysv
    enabled: list[str] = field(default_factory=list)  # services enabled at boot
    running: list[str] = field(default_factory=list)  # services running
    owners: dict[str, Owner] = field(default_factory=dict)  # pid -> who
    socket_pids: dict[str, list[str]] = field(default_factory=dict)  # "address:port" -> pids holding it
    addresses: list[str] = field(default_factory=list)
    nameservers: list[str] = field(default_factory=list)
    syslog: list[str] = field(default_factory=list)  # syslog rules that write mail
    dkim: dict[str, list[str]] = field(default_factory=dict)  # OpenDKIM setting -> values
    dkim_rows: list[tuple[str, str, str]] = field(default_factory=list)  # KeyTable: (domain, selector, key file)
    sources: dict[str, str] = field(default_factory=dict)  # map source path -> text
    routes: dict[str, dict[str, str]] = field(default_factory=dict)  # transport parameter -> key -> next hop

    def postconf(self, name: str) -> str:
        """A parameter as Postfix uses it, `$names` expanded."""
        return self.survey.expanded.get(name, self.survey.parameters.get(name, ""))


def _service_name(unit: str) -> str:
    return unit.removesuffix(".service")


def parse_owners(text: str) -> dict[str, Owner]:
    owners = {}
    for line in text.splitlines():
        pid, _, rest = line.partition("\t")
        unit, _, command = rest.partition("\t")
        if pid.strip().isdigit():
            owners[pid.strip()] = Owner(pid.strip(), _service_name(unit.strip()), command.strip())
    return owners


def parse_socket_pids(text: str) -> dict[str, list[str]]:
    """`ss -ltnp` or `netstat -ltnp` lines (the survey's) -> "address:port" -> the pids holding the socket (IPv4
    and IPv6 alike)."""
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        socket = listener(line)
        if socket is not None:
            address, _, port = socket[0].rpartition(":")
            found.setdefault(f"{address.strip('[]').split('%')[0]}:{port}", []).extend(pid for _name, pid in socket[1])
    return found


def parse_dkim(text: str) -> tuple[dict[str, list[str]], list[tuple[str, str, str]]]:
    """OpenDKIM's naming settings, and its KeyTable rows (marked `ROW`) as (domain, selector, key file)."""
    settings: dict[str, list[str]] = {}
    rows: list[tuple[str, str, str]] = []
    for line in text.splitlines():
        name, _, value = line.strip().partition(" ")
        if name == ROW:
            words = value.split(None, 1)  # the key file may be `(inline key, not read)`
            if len(words) == 2:
                domain, _, rest = words[1].partition(":")
                selector, _, key = rest.partition(":")
                rows.append((domain, selector, key))
        elif name and value.strip():
            settings.setdefault(name.lower(), []).append(value.strip())
    return settings, rows


def parse_facts(name: str, output: str) -> HostFacts:
    part = sections(output, MARK)
    facts = HostFacts(name, parse_survey(name, output))
    facts.init = (part.get("init", "").strip() or "?")
    facts.enabled = [_service_name(word) for word in part.get("enabled", "").split()]
    facts.running = [_service_name(word) for word in part.get("running", "").split()]
    facts.owners = parse_owners(part.get("owners", ""))
    facts.socket_pids = parse_socket_pids(part.get("sockets", ""))
    facts.addresses = part.get("addresses", "").split()
    facts.nameservers = [line.split()[1] for line in part.get("resolver", "").splitlines() if len(line.split()) > 1]
    facts.syslog = [line.strip() for line in part.get("syslog", "").splitlines() if line.strip()]
    facts.dkim, facts.dkim_rows = parse_dkim(part.get("opendkim", ""))
    return facts


