"""What a host's mail system is, read with a bounded number of read-only commands.

One command reads everything but the maps (`SURVEY_COMMAND`: the effective Postfix configuration
raw and expanded, what main.cf sets, Postfix's defaults, master.cf services and their overrides,
installed packages, listening TCP sockets); one more reads the old host's map sources, and one
`postmap -q -` per map parameter (and host) answers all of its keys. Nothing is written on the
host: keys go to postmap on its standard input, from `printf` in the command line.

The parsing is plain functions of text, tested on recorded outputs without a host.
"""

import re
import shlex
from dataclasses import dataclass, field

from mxspec.checks.liveconfig import (
    ALIAS_PARAMETER,
    CACHE_PARAMETER,
    SOURCE_BYTES,
    logical_lines,
    lookup_answers,
    source_entries,
)
from mxspec.checks.postconf import SECTION_MARK, parse_parameters, parse_services, sections
from mxspec.transport.connection import Connection

MARK = SECTION_MARK  # the checks' mark: one spelling for every sectioned read
# Each section: its name, then the command whose output it holds (stderr left out: postconf's
# warnings are not configuration, and a host without dpkg-query says so by an empty section).
SECTIONS = {
    "main": "postconf",
    "main-expanded": "postconf -x",
    "main-explicit": "postconf -n",
    "main-defaults": "postconf -d",
    "master": "postconf -M",
    "master-overrides": "postconf -P",
    "packages": ("if command -v dpkg-query >/dev/null; then dpkg-query -W -f '${db:Status-Abbrev}\\t${Package}\\t${Version}\\n'; "
                 "elif command -v rpm >/dev/null; then rpm -qa --qf 'ii \\t%{NAME}\\t%{VERSION}-%{RELEASE}\\n'; fi"),
    "sockets": "ss -ltnp || netstat -ltnp",  # netstat: hosts older than iproute2's ss
}
SURVEY_COMMAND = "; ".join(f"echo '{MARK}{name}'; {{ {command}; }} 2>/dev/null" for name, command in SECTIONS.items())

# Map types whose keys can be listed from the source file (the indexed ones and texthash, which
# Postfix reads from the source itself); regexp and pcre tables have patterns, not keys: their rules
# are compared instead; the database types (ldap, mysql...) have no source to read.
KEYED_TYPES = ("hash", "btree", "lmdb", "cdb", "texthash")
RULED_TYPES = ("regexp", "pcre")
MAP_SPEC = re.compile(r"(?<![\w:])(?:proxy:)?(?P<type>[a-z0-9]+):(?P<path>/[^\s,{}]+)")
SOURCES_MARK = "@@mxspec-file "
# Keys in one postmap -q command: a large map is looked up in a few commands. The channel hands a
# command to `/bin/sh -c` as one argument, which Linux bounds at 128 KiB: half that leaves room.
COMMAND_BYTES = 64_000


@dataclass
class Survey:
    """What one host's mail system is, as read."""

    name: str
    parameters: dict[str, str] = field(default_factory=dict)  # postconf: effective, as written
    expanded: dict[str, str] = field(default_factory=dict)  # postconf -x: $names expanded
    explicit: dict[str, str] = field(default_factory=dict)  # postconf -n: what main.cf sets
    defaults: dict[str, str] = field(default_factory=dict)  # postconf -d: this Postfix's defaults
    services: dict[str, str] = field(default_factory=dict)  # master.cf "name/type" -> its fields and command, -o left out
    overrides: dict[str, str] = field(default_factory=dict)  # postconf -P: "name/type/parameter" -> value
    packages: dict[str, str] = field(default_factory=dict)  # installed package -> version
    sockets: dict[str, str] = field(default_factory=dict)  # "scope:port" -> the processes listening

    @property
    def version(self) -> str:
        return self.parameters.get("mail_version", "?")

    @property
    def compatibility_level(self) -> str:
        return self.expanded.get("compatibility_level", "?")


def parse_packages(text: str) -> dict[str, str]:
    """Installed packages (dpkg's `ii` status) -> version."""
    packages: dict[str, str] = {}
    for line in text.splitlines():
        status, _, rest = line.partition("\t")
        name, _, version = rest.partition("\t")
        if status.strip() == "ii" and name:
            packages[name.split(":")[0]] = version.strip()
    return packages


def socket_scope(address: str) -> str:
    """Where a socket listens, in terms that mean the same on two hosts: every address, the
    loopback, or one of the host's own addresses (which differ by nature)."""
    address = address.strip("[]").split("%")[0]
    if address in ("*", "0.0.0.0", "::"):
        return "all addresses"
    if address.startswith("127.") or address == "::1":
        return "loopback"
    return "a host address"


def listener(line: str) -> tuple[str, list[tuple[str, str]]] | None:
    """One listening socket of `ss -ltnp` or `netstat -ltnp` (hosts older than ss): its local "address:port"
    and the (process name, pid) holding it; None for any other line."""
    words = line.split()
    if len(words) >= 4 and words[0] == "LISTEN":  # ss
        return words[3], re.findall(r'\("([^"]+)",pid=(\d+)', line)
    if len(words) >= 6 and words[0] in ("tcp", "tcp6") and words[5] == "LISTEN":  # netstat: `1072/python3`
        pid, _, name = words[6].partition("/") if len(words) > 6 else ("", "", "")
        return words[3], [(name, pid)] if pid.isdigit() else []
    return None


def parse_sockets(text: str) -> dict[str, str]:
    """`ss -ltnp` (or `netstat -ltnp`) lines -> "scope:port" -> the processes listening (IPv4 and IPv6 alike)."""
    sockets: dict[str, str] = {}
    for line in text.splitlines():
        found = listener(line)
        if found is None:
            continue
        local, holders = found
        names = {name for name, _pid in holders if name}
        address, _, port = local.rpartition(":")
        socket = f"{socket_scope(address)}:{port}"
        names |= set(filter(None, sockets.get(socket, "").split(", ")))
        sockets[socket] = ", ".join(sorted(names))  # every process holding it, in one order however ss lists them
    return sockets


def parse_survey(name: str, output: str) -> Survey:
    part = sections(output, MARK)
    return Survey(name, parse_parameters(part.get("main", "")), parse_parameters(part.get("main-expanded", "")),
                  parse_parameters(part.get("main-explicit", "")), parse_parameters(part.get("main-defaults", "")),
                  parse_services(part.get("master", "")), parse_parameters(part.get("master-overrides", "")),
                  parse_packages(part.get("packages", "")), parse_sockets(part.get("sockets", "")))


def read_survey(connection: Connection) -> Survey:
    result = connection.run(SURVEY_COMMAND)
    survey = parse_survey(connection.name, str(result.stdout))
    if not survey.parameters:
        raise SurveyFailed(f"host {connection.name}: postconf printed nothing: is Postfix installed? "
                           f"({(result.stderr or '').strip() or f'exit {result.rc}'})")
    return survey


class SurveyFailed(Exception):
    """A host answered, but not as a Postfix host does: one line naming it."""


class LookupFailed(Exception):
    """postmap could not open a table (a type this Postfix lacks, a table not compiled): its message."""


@dataclass(frozen=True)
class MapUse:
    """A parameter (of main.cf, or a master.cf service's `-o`) and the lookup tables it names."""

    parameter: str  # `transport_maps`, or `submission/inet/smtpd_sender_login_maps`
    maps: tuple[str, ...]  # as written, `$names` expanded: `hash:/etc/postfix/transport`

    @property
    def aliases(self) -> bool:
        """aliases(5) tables: `name: value` sources, looked up with postalias."""
        return bool(ALIAS_PARAMETER.search(self.parameter))

    @property
    def keyed(self) -> list[tuple[str, str]]:
        """(type, source path) of the tables whose keys the source lists."""
        return _tables(self.maps, KEYED_TYPES)

    @property
    def ruled(self) -> list[tuple[str, str]]:
        """(type, source path) of the regexp and pcre tables: rules, first match wins."""
        return _tables(self.maps, RULED_TYPES)


def _tables(maps: tuple[str, ...], types: tuple[str, ...]) -> list[tuple[str, str]]:
    found = []
    for spec in maps:
        match = MAP_SPEC.fullmatch(spec)
        if match and match["type"] in types:
            found.append((match["type"], match["path"]))
    return found


def map_uses(survey: Survey) -> list[MapUse]:
    """Every parameter main.cf or a master.cf override sets to lookup tables with a source to read (caches
    left out, and alias_database, which only says what newaliases compiles)."""
    uses = []
    settings = {**{name: survey.expanded.get(name, value) for name, value in survey.explicit.items()}, **survey.overrides}
    for parameter, value in settings.items():
        if CACHE_PARAMETER.search(parameter) or parameter.endswith("alias_database"):
            continue
        use = MapUse(parameter, tuple(match[0] for match in MAP_SPEC.finditer(value)))
        if use.keyed or use.ruled:
            uses.append(use)
    return uses


def maps_for(survey: Survey, parameter: str) -> tuple[str, ...]:
    """The tables this host looks keys of `parameter` up in: a service's override, else main.cf's value."""
    value = survey.overrides.get(parameter)
    if value is None:
        value = survey.expanded.get(parameter.rpartition("/")[2], "")
    return tuple(match[0] for match in MAP_SPEC.finditer(value))


SOURCES_COMMAND = "for f in {paths}; do echo '{mark}'\"$f\"; head -c {limit} \"$f\" 2>/dev/null; echo; done"


def read_sources(connection: Connection, paths: list[str]) -> dict[str, str]:
    """The map source files, each up to SOURCE_BYTES (one command for all)."""
    if not paths:
        return {}
    command = SOURCES_COMMAND.format(paths=" ".join(map(shlex.quote, paths)), mark=SOURCES_MARK, limit=SOURCE_BYTES)
    return sections(str(connection.run(command).stdout), SOURCES_MARK)


def source_keys(use: MapUse, texts: dict[str, str]) -> list[str]:
    """The keys a parameter's keyed tables list, in source order, each once."""
    keys: dict[str, None] = {}
    for _type, path in use.keyed:
        text = texts.get(path, "")
        if len(text) >= SOURCE_BYTES:  # the last line read may be cut short
            text = text[:text.rfind("\n") + 1]
        keys.update(dict.fromkeys(source_entries(text, use.aliases)))
    return list(keys)


def rules(maps: tuple[str, ...], texts: dict[str, str]) -> dict[str, str]:
    """The regexp and pcre rules of these tables, in order: `/pattern/flags` (or `if /pattern/`,
    `endif`) -> its result. Comments and blank lines skipped, indented lines continue the rule before."""
    found: dict[str, str] = {}
    for _type, path in _tables(maps, RULED_TYPES):
        for line in logical_lines(texts.get(path, "")):
            pattern, result = _split_rule(line)
            found.setdefault(pattern, result)
    return found


def _split_rule(line: str) -> tuple[str, str]:
    """`/pattern/flags result` at the end of the pattern: its closing delimiter (not escaped), then flags."""
    prefix = "if " if line.startswith("if ") else ""
    rest = line[len(prefix):].lstrip()
    if not rest:
        return line, ""
    delimiter, end = rest[0], 1
    while end < len(rest) and rest[end] != delimiter:
        end += 2 if rest[end] == "\\" else 1
    while end + 1 < len(rest) and not rest[end + 1].isspace():
        end += 1  # the flags after the delimiter
    return prefix + rest[:end + 1], rest[end + 1:].strip()


# A table postmap cannot open makes it log a fatal error to the host's mail log, as well as say it:
# a line that a later run's "no fatal error since Postfix started" would find. So each table's type
# and file are checked first, and a table that cannot be opened is said in postmap's words without
# postmap being asked. The files of the file-based types: the source, or what postmap compiled.
TABLE_FILES = {"hash": ".db", "btree": ".db", "lmdb": ".lmdb", "cdb": ".cdb", "dbm": ".pag", "sdbm": ".pag",
               "texthash": "", "regexp": "", "pcre": "", "cidr": ""}


def _openable_first(maps: tuple[str, ...]) -> str:
    """Shell that stops with postmap's own fatal message if a file-based table cannot be opened."""
    checks = []
    for spec in maps:
        kind, _, path = spec.partition(":")
        if kind in TABLE_FILES:
            file = shlex.quote(path + TABLE_FILES[kind])
            checks.append(f'printf "%s\\n" "$types" | grep -qx {kind} || {{ echo "postmap: fatal: unsupported '
                          f'dictionary type: {kind}" >&2; exit 3; }}; [ -e {file} ] || {{ echo "postmap: fatal: open '
                          f'database {file}: No such file or directory" >&2; exit 3; }}; ')
    return "types=$(postconf -m); " + "".join(checks) if checks else ""


def lookup_commands(maps: tuple[str, ...], keys: list[str], aliases: bool) -> list[str]:
    """`postmap -q -` (postalias for aliases) over the tables, keys on its stdin from printf: nothing written."""
    tail = f" | {'postalias' if aliases else 'postmap'} -q - {' '.join(map(shlex.quote, maps))}"
    guard = _openable_first(maps)
    commands: list[str] = []
    batch: list[str] = []
    size = 0
    for key in map(shlex.quote, keys):
        if batch and size + len(key) + 1 > COMMAND_BYTES:
            commands.append(guard + "printf '%s\\n' " + " ".join(batch) + tail)
            batch, size = [], 0
        batch.append(key)
        size += len(key) + 1
    if batch:
        commands.append(guard + "printf '%s\\n' " + " ".join(batch) + tail)
    return commands


def look_up(connection: Connection, maps: tuple[str, ...], keys: list[str], aliases: bool) -> dict[str, str]:
    """Lower-cased key -> the first answer of the tables, for each key one of them answers."""
    if not maps or not keys:
        return {}
    answers: dict[str, str] = {}
    for command in lookup_commands(maps, keys, aliases):
        result = connection.run(command)  # exit 1 also when a key is not found: a fatal error is told by its message
        fatal = [line.strip() for line in str(result.stderr).splitlines() if "fatal:" in line]
        if fatal:
            raise LookupFailed(fatal[-1])
        answers.update(lookup_answers(str(result.stdout), aliases))
    return answers
