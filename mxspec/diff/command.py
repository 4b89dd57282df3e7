"""`mxspec diff OLD NEW`: read every host of both estates, then compare role by role.

Each host is read once (`survey.read_survey`), whatever roles it has; an old host's map sources
once; each map parameter's keys are looked up once on each host. A host that cannot be read is
said in one line and left out; the others are still compared (exit 1). Exit 0 when everything
was compared, differences or not: they are information, not verdicts.
"""

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mxspec.core.errors import CommandTimeout, HostUnreachable, MxspecError
from mxspec.diff import render
from mxspec.diff.compare import Difference, Pair, compare, map_differences, rule_differences
from mxspec.diff.survey import (
    LookupFailed,
    MapUse,
    Survey,
    SurveyFailed,
    look_up,
    map_uses,
    maps_for,
    read_sources,
    read_survey,
    rules,
    source_keys,
)
from mxspec.estate import contract, roles
from mxspec.estate.inventory import Estate, Host, load_estates
from mxspec.estate.render import RenderError
from mxspec.transport.connection import ConnectionPool


@dataclass
class Differential:
    """The whole comparison: what `render` writes."""

    old: str
    new: str
    pairs: list[Pair] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)  # roles of one estate only
    unreachable: dict[str, str] = field(default_factory=dict)  # host -> why it could not be read
    hosts: dict[str, dict] = field(default_factory=dict)  # host -> estate, roles, Postfix, commands run

    def as_dict(self) -> dict:
        return {"old": self.old, "new": self.new, "hosts": self.hosts, "unreachable": self.unreachable,
                "unmatched_roles": self.unmatched, "pairs": [pair.as_dict() for pair in self.pairs]}


class Unread(Exception):
    """A host stopped answering part-way: said once in `Reader.unreachable`, the pair compared without it."""


class Reader:
    """Reads hosts over the pool, each thing once, and remembers which hosts could not be read."""

    def __init__(self, pool: ConnectionPool, progress: Callable[[str], None]):
        self.pool = pool
        self.progress = progress
        self.surveys: dict[str, Survey] = {}
        self.unreachable: dict[str, str] = {}
        self.sources: dict[str, dict[str, str]] = {}  # host -> source path -> text
        self.answers: dict[tuple[str, str, tuple[str, ...], tuple[str, ...]], dict[str, str]] = {}

    def _failed(self, host: Host, what: str, error: Exception) -> Unread:
        """One line naming the host and why; a timeout without the command (long, and in no one's words)."""
        why = f"host {host.name}: {what} gave no answer within {self.pool.command_timeout:g} s" \
            if isinstance(error, CommandTimeout) else str(error)
        self.unreachable.setdefault(host.name, why)
        self.progress(f"[mxspec] {why}")
        return Unread(why)

    def survey(self, host: Host) -> Survey | None:
        if host.name not in self.surveys and host.name not in self.unreachable:
            try:
                self.surveys[host.name] = read_survey(self.pool.get(host))
                survey = self.surveys[host.name]
                self.progress(f"[mxspec] read {host.name}: Postfix {survey.version}, {len(survey.parameters)} parameters, "
                              f"{len(survey.services)} services, {len(survey.packages)} packages")
            except (HostUnreachable, CommandTimeout, SurveyFailed) as error:
                self._failed(host, "reading its configuration", error)
        return self.surveys.get(host.name)

    def texts(self, host: Host, paths: list[str], every: bool = True) -> dict[str, str]:
        """Map sources, each read once: an old host's all at once, on its first use (`every`), else only these."""
        known = self.sources.setdefault(host.name, {})
        if every and not known and host.name in self.surveys:
            paths = paths + [path for use in map_uses(self.surveys[host.name]) for _type, path in use.keyed + use.ruled]
        missing = sorted(set(paths) - set(known))
        if missing:
            known.update(dict.fromkeys(missing, ""))
            try:
                known.update(read_sources(self.pool.get(host), missing))
            except (HostUnreachable, CommandTimeout) as error:
                raise self._failed(host, "reading map sources", error) from None
        return known

    def look_up(self, host: Host, maps: tuple[str, ...], keys: list[str], use: MapUse) -> dict[str, str]:
        """The answers of the tables to the keys (raises LookupFailed when postmap cannot open them)."""
        cached = (host.name, use.parameter, maps, tuple(keys))  # another old host of the role may list other keys
        if cached not in self.answers:
            try:
                self.answers[cached] = look_up(self.pool.get(host), maps, keys, use.aliases)
            except (HostUnreachable, CommandTimeout) as error:
                raise self._failed(host, f"looking {use.parameter} keys up", error) from None
        return self.answers[cached]


def diff(inventories: str, old_name: str, new_name: str, vault_password_file: str | None = None,
         progress: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
         connect_timeout: float = 10, command_timeout: float = 60) -> Differential:
    if old_name == new_name:
        raise MxspecError(f"the old and the new estate are both '{old_name}': give two estates to compare")
    old, new = load_estates(inventories, [old_name, new_name], vault_password_file)
    result = Differential(old.name, new.name)
    pool = ConnectionPool(connect_timeout, command_timeout)
    reader = Reader(pool, progress)
    try:
        for role in roles.ROLES:
            _compare_role(role, old, new, reader, result)
    finally:
        pool.close()
    result.unreachable = reader.unreachable
    for estate in (old, new):
        for host in estate.hosts.values():
            survey = reader.surveys.get(host.name)
            connection = pool.connections.get(host.name)
            result.hosts[host.name] = {"estate": estate.name, "roles": host.roles,
                                       "postfix": survey.version if survey else None,
                                       "compatibility_level": survey.compatibility_level if survey else None,
                                       "commands": connection.testinfra.commands if connection else 0}
    return result


def _compare_role(role: str, old: Estate, new: Estate, reader: Reader, result: Differential) -> None:
    old_hosts = [host for host in old.hosts.values() if role in host.roles]
    new_hosts = [host for host in new.hosts.values() if role in host.roles]
    if not old_hosts or not new_hosts:
        if old_hosts or new_hosts:
            has, lacks = (old, new) if old_hosts else (new, old)
            result.unmatched.append(f"role {role}: no host in {lacks.name} (in {has.name}: "
                                    f"{', '.join(h.name for h in old_hosts or new_hosts)})")
        return
    # `packages` (declared in the contract) read as written: a value that is no list only narrows what is compared
    packages = {str(p) for host in old_hosts + new_hosts for p in (host.vars.get("packages") or []) if isinstance(p, str)}
    for old_host in old_hosts:
        for new_host in new_hosts:
            before, after = reader.survey(old_host), reader.survey(new_host)
            if before is None or after is None:
                continue
            pair = Pair(role, old_host.name, new_host.name, before.version, after.version)
            pair.differences = compare(before, after, _expected(old_host), _expected(new_host), packages)
            for use in map_uses(before):
                pair.differences += _map_differences(reader, old_host, new_host, use)
            result.pairs.append(pair)


def _map_differences(reader: Reader, old_host: Host, new_host: Host, use: MapUse) -> list[Difference]:
    """Old keys looked up on both hosts through the parameter's tables; old regexp/pcre rules against the new ones."""
    after = reader.surveys[new_host.name]
    new_maps = maps_for(after, use.parameter)
    found: list[Difference] = []
    try:
        keys = source_keys(use, reader.texts(old_host, [path for _type, path in use.keyed]))
        if keys:
            found += _key_differences(reader, old_host, new_host, use, keys, new_maps)
        if use.ruled:
            rules_old = rules(use.maps, reader.texts(old_host, [path for _type, path in use.ruled]))
            new_use = MapUse(use.parameter, new_maps)
            rules_new = rules(new_maps, reader.texts(new_host, [path for _type, path in new_use.ruled]))
            found += rule_differences(use, rules_old, rules_new, after, new_maps)
    except Unread:
        pass  # said once, in reader.unreachable
    return found


def _key_differences(reader: Reader, old_host: Host, new_host: Host, use: MapUse, keys: list[str],
                     new_maps: tuple[str, ...]) -> list[Difference]:
    answers: list[dict[str, str]] = []
    for host, maps in ((old_host, use.maps), (new_host, new_maps)):
        try:
            answers.append(reader.look_up(host, maps, keys, use))
        except LookupFailed as error:  # every key unanswered would say less than why
            return [Difference("map", use.parameter, " ".join(use.maps), " ".join(new_maps),
                               f"{host.name} cannot look the {len(keys)} keys up: {error}")]
    return map_differences(use, keys, answers[0], answers[1], reader.surveys[new_host.name], new_maps)


def _expected(host: Host) -> dict[str, str]:
    """The host's HOST_PARAMETERS as its inventory says; none where the inventory cannot render them."""
    try:
        return contract.host_parameters(host.vars, host.name)
    except (RenderError, MxspecError):
        return {}


def check_writable(*paths: str | None) -> None:
    """Each file a command will write can be written there: said before any host is read, not after."""
    for path in paths:
        if path and not Path(path).resolve().parent.is_dir():
            raise MxspecError(f"cannot write {path}: no folder {Path(path).parent}")


def write_file(path: str, content: str) -> None:
    try:
        Path(path).write_text(content)
    except OSError as error:
        raise MxspecError(f"cannot write {path}: {error.strerror}") from None


def run(old: str, new: str, inventories: str, markdown: str | None, json_file: str | None,
        vault_password_file: str | None = None, connect_timeout: float = 10, command_timeout: float = 60) -> int:
    check_writable(markdown, json_file)
    result = diff(inventories, old, new, vault_password_file, connect_timeout=connect_timeout,
                  command_timeout=command_timeout)
    print(render.text(result.as_dict()))
    if markdown:
        write_file(markdown, render.markdown(result.as_dict()))
    if json_file:
        write_file(json_file, json.dumps(result.as_dict(), indent=2) + "\n")
    for host, why in result.unreachable.items():
        print(f"mxspec: {why}" if host in why else f"mxspec: host {host}: {why}", file=sys.stderr)
    return 1 if result.unreachable else 0
