"""Whether what Postfix runs is what its files say: indexed maps compiled from their current source,
and main.cf/master.cf not changed since the master last started or reloaded.

The parsing (map references in `postconf` output, map sources, the probes' answers) is plain
functions of text, so it is tested without a host; the checks run one bounded command per question.
"""

import re
import shlex
from dataclasses import dataclass
from datetime import UTC, datetime

from mxspec.checks import facts
from mxspec.checks.mailhost import MailHost
from mxspec.checks.maillog import MailLog
from mxspec.checks.postconf import same_value

# Indexed (compiled) map types, and the file postmap makes from the source `path`.
INDEXED = {"hash": ".db", "btree": ".db", "lmdb": ".lmdb", "cdb": ".cdb"}
MAP_REFERENCE = re.compile(r"(?<![\w:])(?:proxy:)?(?P<type>hash|btree|lmdb|cdb):(?P<path>/[^\s,]+)")
# Maps Postfix writes itself (caches): no source file to compile them from.
CACHE_PARAMETER = re.compile(r"(_cache_database|_cache_map|address_verify_map)$")
ALIAS_PARAMETER = re.compile(r"(^|/)alias_(maps|database)$")
SAMPLE = 20  # source keys looked up per map: a bounded sample, first and last included
SOURCE_BYTES = 2_000_000  # the most of a map's source read to pick the sample from


@dataclass(frozen=True)
class IndexedMap:
    type: str
    path: str
    aliases: bool  # the source is in aliases(5) format (`name: value`), looked up with postalias
    parameters: tuple[str, ...]  # where the configuration uses it

    @property
    def name(self) -> str:
        return f"{self.type}:{self.path}"

    @property
    def compiled(self) -> str:
        return self.path + INDEXED[self.type]


def indexed_maps(postconf_output: str) -> list[IndexedMap]:
    """The indexed maps `name = value` lines (postconf -nx, postconf -Px) use, caches left out."""
    found: dict[tuple[str, str, bool], list[str]] = {}
    for line in postconf_output.splitlines():
        parameter, sep, value = line.partition(" = ")
        parameter = parameter.strip()
        if not sep or CACHE_PARAMETER.search(parameter):
            continue
        for match in MAP_REFERENCE.finditer(value):
            key = (match["type"], match["path"], bool(ALIAS_PARAMETER.search(parameter)))
            found.setdefault(key, []).append(parameter)
    return [IndexedMap(type_, path, aliases, tuple(parameters)) for (type_, path, aliases), parameters in found.items()]


def logical_lines(text: str) -> list[str]:
    """A table's source as Postfix reads it: comments and blank lines skipped, a line starting with
    whitespace continuing the one before (and ignored with none before)."""
    logical: list[str] = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line[0].isspace() and logical:
            logical[-1] += " " + line.strip()
        elif not line[0].isspace():
            logical.append(line.strip())
    return logical


def source_entries(text: str, aliases: bool = False) -> dict[str, str]:
    """Key -> value of a map's source as postmap (or postalias) reads it (`logical_lines`), the first of
    duplicate keys kept."""
    entries: dict[str, str] = {}
    for entry in logical_lines(text):
        if aliases:
            key, sep, value = entry.partition(":")
        else:
            parts = entry.split(None, 1)
            key, sep, value = parts[0], " " if len(parts) == 2 else "", parts[1] if len(parts) == 2 else ""
        key = key.strip().strip('"')
        if sep and key and key not in entries:
            entries[key] = value.strip()
    return entries


def sample(keys: list[str], size: int = SAMPLE) -> list[str]:
    """At most `size` keys spread over the whole list, first and last included."""
    if len(keys) <= size:
        return list(keys)
    return [keys[i * (len(keys) - 1) // (size - 1)] for i in range(size)]


def lookup_answers(output: str, aliases: bool = False) -> dict[str, str]:
    """Lower-cased key -> value, for each key found: `postmap -q -` prints `key<TAB>value`,
    `postalias -q -` prints `key:<TAB>value`."""
    answers: dict[str, str] = {}
    for line in output.splitlines():
        key, sep, value = line.partition("\t")
        if sep:
            answers.setdefault((key.removesuffix(":") if aliases else key).lower(), value)
    return answers


def when(epoch: int) -> str:
    """A time as engineers read it in a report: UTC, to the second."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _fail_if(problems: list[str], what: str) -> None:
    if problems:
        raise AssertionError(f"{what}:\n  " + "\n  ".join(problems))


def maps_in_use(mailhost: MailHost) -> list[IndexedMap]:
    return indexed_maps(facts.postfix_configuration(mailhost))


def supported_types(mailhost: MailHost) -> set[str]:
    return set(mailhost.output("postconf -m", "asking Postfix which map types it supports").split())


# Prints the source's and the compiled file's modification times (or `missing`), then up to
# SOURCE_BYTES of the source after a marker line.
MAP_FILES_COMMAND = ("for f in {source} {compiled}; do stat -c %Y \"$f\" 2>/dev/null || echo missing; done; "
                     "echo '--source--'; head -c {limit} {source} 2>/dev/null || true")


def map_problems(mailhost: MailHost, indexed: IndexedMap, supported: set[str]) -> list[str]:
    """What is wrong with one map: its type, its compiled file, its age, its answers."""
    if indexed.type not in supported:
        return [f"{indexed.name}: this Postfix cannot open {indexed.type} maps (postconf -m: {' '.join(sorted(supported))})"]
    source, compiled = shlex.quote(indexed.path), shlex.quote(indexed.compiled)
    output = mailhost.output(MAP_FILES_COMMAND.format(source=source, compiled=compiled, limit=SOURCE_BYTES),
                  f"reading {indexed.name}")
    times, _, text = output.partition("--source--\n")
    source_time, compiled_time = (times.split() + ["missing", "missing"])[:2]
    if source_time == "missing":
        return [f"{indexed.name}: no source file {indexed.path} to compile it from"]
    if compiled_time == "missing":
        return [f"{indexed.name}: not compiled: {indexed.compiled} does not exist"]
    problems = []
    if int(compiled_time) < int(source_time):
        problems.append(f"{indexed.name}: {indexed.compiled} is older than its source {indexed.path} "
                        f"(compiled {when(int(compiled_time))}, source changed {when(int(source_time))}): "
                        f"the source was edited and not compiled ({'newaliases' if indexed.aliases else 'postmap'})")
    if len(text) >= SOURCE_BYTES:  # the last line read may be cut short
        text = text[:text.rfind("\n") + 1]
    entries = source_entries(text, indexed.aliases)
    keys = sample(list(entries))
    if keys:
        tool = "postalias" if indexed.aliases else "postmap"
        command = f"printf '%s\\n' {' '.join(map(shlex.quote, keys))} | {tool} -q - {shlex.quote(indexed.name)}"
        result = mailhost.run(command)
        if result.stderr.strip():
            mailhost.evidence.append(f"-- {tool} -q on {indexed.name}: {result.stderr.strip()}")
        answers = lookup_answers(str(result.stdout), indexed.aliases)
        for key in keys:
            got = answers.get(key.lower())
            if got is None or not same_value(got, entries[key]):
                problems.append(f"{indexed.name}: {key} answers {got if got is not None else 'nothing'}; "
                                f"the source says {entries[key] or '(empty)'}")
    mailhost.evidence.append(f"-- {indexed.name} (used by {', '.join(indexed.parameters)}): source changed "
                             f"{when(int(source_time))}, compiled {when(int(compiled_time))}; "
                             f"looked up {len(keys)} of {len(entries)} keys")
    return problems


def maps_compiled_from_source(mailhost: MailHost) -> list[IndexedMap]:
    """Every indexed map in use is compiled, current and openable; returns them (none: nothing to check)."""
    found = maps_in_use(mailhost)
    if not found:
        return []
    supported = supported_types(mailhost)
    problems = [problem for indexed in found for problem in map_problems(mailhost, indexed, supported)]
    _fail_if(problems, f"host {mailhost.name}: indexed maps not as their source says")
    return found


# The running master and the configuration's files, times in seconds since 1970 by the host's clock:
# `pid <pid>`, `now <time>`, `elapsed <seconds the master has run>`, `file <changed> <path>` lines.
RUNNING_COMMAND = ("q=$(postconf -h queue_directory) && c=$(postconf -h config_directory) || exit 3; "
                   "pid=$(sed 's/ //g' \"$q/pid/master.pid\" 2>/dev/null); "
                   "[ -n \"$pid\" ] && kill -0 \"$pid\" 2>/dev/null || "
                   "{ echo 'the Postfix master is not running' >&2; exit 3; }; "
                   "echo \"pid $pid\"; echo \"now $(date +%s)\"; echo \"elapsed $(ps -o etimes= -p \"$pid\")\"; "
                   "for f in \"$c/main.cf\" \"$c/master.cf\"; do echo \"file $(stat -c %Y \"$f\") $f\"; done")


@dataclass(frozen=True)
class Running:
    pid: str
    started: int
    files: dict[str, int]  # path -> modification time


def parse_running(output: str) -> Running:
    fields: dict[str, str] = {}
    files: dict[str, int] = {}
    for line in output.splitlines():
        name, _, rest = line.strip().partition(" ")
        if name == "file":
            when, _, path = rest.strip().partition(" ")
            if when.isdigit():  # a file stat could not read is not Postfix's configuration
                files[path] = int(when)
        elif name:
            fields[name] = rest.strip()
    return Running(fields["pid"], int(fields["now"]) - int(fields["elapsed"]), files)


def last_reload(reload_times: str, since: int) -> int | None:
    """The latest of the epoch times (one a line) at or after `since`, or None."""
    times = [int(float(word)) for word in reload_times.split() if word.replace(".", "", 1).isdigit()]
    times = [when for when in times if when >= since]
    return max(times) if times else None


def configuration_is_live(mailhost: MailHost) -> None:
    """main.cf and master.cf are not newer than the master's last start or reload."""
    result = mailhost.run(RUNNING_COMMAND)
    if result.rc != 0:
        raise AssertionError(f"host {mailhost.name}: cannot tell what Postfix runs: {result.stderr.strip()}")
    running = parse_running(str(result.stdout))
    log = MailLog.of(mailhost)
    reloads = mailhost.run(log.reload_times_command(running.pid, running.started))
    if reloads.rc == 3:
        raise AssertionError(f"host {mailhost.name}: {reloads.stderr.strip()}")
    reloaded = last_reload(str(reloads.stdout), running.started)
    live_since = max(running.started, reloaded or 0)
    how = (f"last reloaded at {when(reloaded)}" if reloaded
           else f"started at {when(running.started)}, no reload since in the mail log ({log.where})")
    mailhost.evidence.append(f"-- Postfix master {running.pid}: {how}; files: "
                             + ", ".join(f"{path} changed at {when(changed)}" for path, changed in running.files.items()))
    changed = [f"{path} changed at {when(at)}, {at - live_since} s after the master last (re)loaded it"
               for path, at in running.files.items() if at > live_since]
    _fail_if(changed, f"host {mailhost.name}: the running Postfix (master {running.pid}, {how}) "
                      "does not run the configuration on disk")
