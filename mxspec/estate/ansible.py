"""Ansible inventories as ansible-core reads them: INI or YAML files, directories of them,
`group_vars/` and `host_vars/` beside them, children groups, host patterns (`mx[1:3].example.org`).

mxspec reads inventories itself, so that it needs no ansible-core for a plain inventory and can
name the file and line every value comes from. The rules are ansible-core's (2.16-2.17), and
`tests/test_ansible_inventory.py` proves the hosts, groups and values equal to what ansible-core
resolves for an inventory set that exercises every precedence level:

1. the `all` group's inventory vars, then the host's other groups' inventory vars, sorted by
   depth (parents before children), `ansible_group_priority` (higher wins), then name;
2. `group_vars/all`, then `group_vars/<group>` in the same group order;
3. the host's inventory vars (later mentions override earlier), then `host_vars/<host>`.

INI values (inline and in `[group:vars]`) are Python literals where they parse as one
(`port=25` is the number 25, `tls=True` a boolean), else strings. Templates are left as they are
here; `estate.render` renders them as Ansible does at run time.
"""

import ast
import re
import shlex
import string
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mxspec.core.errors import MxspecError
from mxspec.core.yamlfile import LineDict, load
from mxspec.estate.vault import Secret

PRIORITY = "ansible_group_priority"
YAML_EXTENSIONS = (".yml", ".yaml", ".json")
# What ansible-core skips in an inventory directory (INVENTORY_IGNORE_EXTS and the names it always skips).
IGNORED = re.compile(r"^\.|^host_vars$|^group_vars$|^vars_plugins$|"
                     r"(\.pyc|\.pyo|\.swp|\.bak|~|\.rpm|\.md|\.txt|\.rst|\.orig|\.ini|\.cfg|\.retry)$")
SECTION = re.compile(r"^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:[#;].*)?$")


@dataclass
class Value:
    """A variable's value and where it was set (`file:line`)."""

    value: Any
    where: str


@dataclass
class Group:
    name: str
    where: str
    vars: dict[str, Value] = field(default_factory=dict)
    children: list[str] = field(default_factory=list)
    parents: list[str] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)
    priority: int = 1
    depth: int = 0


@dataclass
class InventoryHost:
    name: str
    where: str  # file:line of its first mention
    vars: dict[str, Value] = field(default_factory=dict)
    groups: list[str] = field(default_factory=list)  # the groups it is listed in directly


class Inventory:
    """One Ansible inventory: every source file read, then `group_vars/` and `host_vars/`."""

    def __init__(self, path: str | Path, decrypt: Callable[[Path, str], str] | None = None):
        self.path = Path(path)
        self.decrypt = decrypt  # text of a vault-encrypted vars file -> its plain text (ansible-core)
        self.unread: list[Path] = []  # vault-encrypted vars files read without a way to decrypt them
        self.skipped: list[str] = []  # inventory sources mxspec cannot read (dynamic inventory plugins)
        self.groups: dict[str, Group] = {}
        self.hosts: dict[str, InventoryHost] = {}
        self.files: list[Path] = []
        self._loaded: dict[Path, dict[str, Value]] = {}
        self.add_group("all", str(self.path))
        self.add_group("ungrouped", str(self.path))
        self.add_child("all", "ungrouped", str(self.path))
        if not self.path.exists():
            raise MxspecError(f"inventory {self.path} does not exist")
        self._read_source(self.path)
        self._reconcile()
        base = self.path if self.path.is_dir() else self.path.parent
        self.group_files = {name: _vars_files(base / "group_vars", name) for name in self.groups}
        self.host_files = {name: _vars_files(base / "host_vars", name) for name in self.hosts}

    # -- building, as ansible-core's InventoryData does --------------------------------------

    def add_group(self, name: str, where: str) -> Group:
        if name not in self.groups:
            self.groups[name] = Group(name, where)
        return self.groups[name]

    def add_child(self, parent: str, child: str, where: str) -> None:
        if child in self.ancestors(parent) or child == parent:
            raise MxspecError(f"{where}: adding group '{child}' to '{parent}' makes a loop of groups")
        group, sub = self.groups[parent], self.groups[child]
        if child not in group.children:
            group.children.append(child)
        if parent not in sub.parents:
            sub.parents.append(parent)

    def add_host(self, name: str, group: str, where: str, port: int | None) -> InventoryHost:
        host = self.hosts.setdefault(name, InventoryHost(name, where))
        if group not in host.groups:
            host.groups.append(group)
        if name not in self.groups[group].hosts:
            self.groups[group].hosts.append(name)
        if port is not None:
            host.vars["ansible_port"] = Value(port, where)
        return host

    def set_group_var(self, group: str, name: str, value: Any, where: str) -> None:
        if name == PRIORITY:
            try:
                self.groups[group].priority = int(value)
            except (TypeError, ValueError):
                raise MxspecError(f"{where}: {PRIORITY} of group '{group}' must be a number, not {value!r}") from None
        else:
            self.groups[group].vars[str(name)] = Value(value, where)

    def ancestors(self, group: str) -> list[str]:
        seen: list[str] = []
        todo = list(self.groups[group].parents)
        while todo:
            name = todo.pop(0)
            if name not in seen:
                seen.append(name)
                todo += self.groups[name].parents
        return seen

    def _reconcile(self) -> None:
        """Every group descends from `all`; hosts in no group are `ungrouped`; depths as Ansible counts."""
        for group in list(self.groups.values()):
            if group.name != "all" and not group.parents:
                self.add_child("all", group.name, group.where)
        for host in self.hosts.values():
            if set(host.groups) <= {"all"}:
                self.add_host(host.name, "ungrouped", host.where, None)
            elif "ungrouped" in host.groups and set(host.groups) - {"all", "ungrouped"}:
                host.groups.remove("ungrouped")
                self.groups["ungrouped"].hosts.remove(host.name)

        def depth(name: str) -> int:  # the longest path from `all`
            parents = self.groups[name].parents
            return 0 if not parents else 1 + max(depth(parent) for parent in parents)

        for group in self.groups.values():
            group.depth = depth(group.name)

    # -- reading sources -----------------------------------------------------------------------

    def _read_source(self, path: Path) -> None:
        if path.is_dir():
            for entry in sorted(path.iterdir(), key=lambda p: p.name):
                if not IGNORED.search(entry.name):
                    self._read_source(entry)
            return
        self.files.append(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise MxspecError(f"{path}: cannot read the inventory: {error}") from None
        if text.startswith("$ANSIBLE_VAULT"):
            raise MxspecError(f"{path}: a vault-encrypted inventory file; encrypt single values (!vault) instead")
        if path.suffix in YAML_EXTENSIONS or (not path.suffix and _looks_like_yaml(path, text)):
            self._read_yaml(path, text)
        else:
            self._read_ini(path, text)

    def _read_yaml(self, path: Path, text: str) -> None:
        data = load(path, text)
        if isinstance(data, LineDict) and "plugin" in data:
            self.skipped.append(f"{path}: the configuration of inventory plugin '{data['plugin']}', not read "
                                "(mxspec reads static inventories; `ansible-inventory -i PATH --list -y` writes one)")
            return
        if not isinstance(data, LineDict) or not data:
            raise MxspecError(f"{path}:1: a YAML inventory is a mapping of groups (e.g. 'all:')")
        for name, node in data.items():
            self._yaml_group(path, str(name), node, data.key_lines[name])

    def _yaml_group(self, path: Path, name: str, node: object, line: int) -> str:
        where = f"{path}:{line}"
        if node is not None and not isinstance(node, dict):
            raise MxspecError(f"{where}: group '{name}' must be a mapping of hosts/vars/children")
        self.add_group(name, where)
        for key, section in (node or {}).items():
            section_where = f"{path}:{node.key_lines[key]}" if isinstance(node, LineDict) else where
            if key not in ("hosts", "vars", "children"):
                raise MxspecError(f"{section_where}: unexpected key '{key}' in group '{name}' "
                                  "(a group has children, hosts, vars)")
            if isinstance(section, str):
                section = {section: None}
            if section is None:
                continue
            if not isinstance(section, dict):
                raise MxspecError(f"{section_where}: '{key}' of group '{name}' must be a mapping")
            for item, value in section.items():
                item_where = f"{path}:{section.key_lines[item]}" if isinstance(section, LineDict) else section_where
                if key == "vars":
                    self.set_group_var(name, item, value, item_where)
                elif key == "children":
                    child = self._yaml_group(path, str(item), value, int(item_where.rsplit(":", 1)[1]))
                    self.add_child(name, child, item_where)
                else:
                    self._yaml_hosts(item, value, name, item_where)
        return name

    def _yaml_hosts(self, pattern: object, host_vars: object, group: str, where: str) -> None:
        if not isinstance(pattern, str):
            raise MxspecError(f"{where}: host pattern {pattern!r} must be a string (quote numbers)")
        if host_vars is not None and not isinstance(host_vars, dict):
            raise MxspecError(f"{where}: variables of host '{pattern}' must be a mapping")
        names, port = expand_pattern(pattern, where)
        for name in names:
            host = self.add_host(name, group, where, port)
            for key, value in (host_vars or {}).items():
                line = host_vars.key_lines[key] if isinstance(host_vars, LineDict) else 0
                host.vars[str(key)] = Value(value, f"{where.rsplit(':', 1)[0]}:{line}" if line else where)

    def _read_ini(self, path: Path, text: str) -> None:
        group, state = "ungrouped", "hosts"
        pending: dict[str, list[tuple[str, str]]] = {}  # child -> (parent, where): declared later
        vars_only: dict[str, str] = {}  # group -> where its [group:vars] is, until the group is declared
        for number, raw in enumerate(text.splitlines(), 1):
            line, where = raw.strip(), f"{path}:{number}"
            if not line or line[0] in "#;":
                continue
            section = SECTION.match(line)
            if section:
                group, state = section.group(1), section.group(2) or "hosts"
                self._ini_section(group, state, where, pending, vars_only)
            elif line.startswith("["):
                raise MxspecError(f"{where}: invalid section '{line}' (no spaces inside the brackets)")
            elif state == "hosts":
                self._ini_host(line, group, where)
            elif state == "vars":
                self._ini_var(line, group, where)
            elif line.split()[0] in self.groups:
                self.add_child(group, line.split()[0], where)
            else:
                pending.setdefault(line.split()[0], []).append((group, where))
        _unresolved(pending, vars_only)

    def _ini_section(self, group: str, state: str, where: str, pending: dict[str, list[tuple[str, str]]],
                     vars_only: dict[str, str]) -> None:
        if state not in ("hosts", "children", "vars"):
            raise MxspecError(f"{where}: section [{group}:{state}] has an unknown type '{state}' "
                              "(hosts, children or vars)")
        if state == "vars" and group not in self.groups and group not in pending:
            vars_only.setdefault(group, where)
        elif state != "vars":
            vars_only.pop(group, None)
        if state != "vars" or group not in self.groups:
            self.add_group(group, where)
        if state != "vars":
            for parent, at in pending.pop(group, []):
                self.add_child(parent, group, at)

    def _ini_var(self, line: str, group: str, where: str) -> None:
        if "=" not in line:
            raise MxspecError(f"{where}: expected key=value in [{group}:vars], got: {line}")
        key, value = (part.strip() for part in line.split("=", 1))
        self.set_group_var(group, key, _ini_value(value), where)

    def _ini_host(self, line: str, group: str, where: str) -> None:
        try:
            tokens = shlex.split(line, comments=True)
        except ValueError as error:
            raise MxspecError(f"{where}: cannot read the host line: {error}") from None
        names, port = expand_pattern(tokens[0], where)
        assignments = {}
        for token in tokens[1:]:
            if "=" not in token:
                raise MxspecError(f"{where}: expected key=value after the host name, got: {token}")
            key, value = token.split("=", 1)
            assignments[key] = _ini_value(value)
        for name in names:
            host = self.add_host(name, group, where, port)
            for key, value in assignments.items():
                host.vars[key] = Value(value, where)

    # -- resolving, as ansible-core's VariableManager does ---------------------------------------

    def host_groups(self, host: str) -> list[str]:
        """The host's groups, its own and their ancestors, except `all`, in Ansible's order."""
        names: list[str] = []
        for group in self.hosts[host].groups:
            for name in [group, *self.ancestors(group)]:
                if name != "all" and name not in names:
                    names.append(name)
        return self.sort_groups(names)

    def sort_groups(self, names: list[str]) -> list[str]:
        return sorted(names, key=lambda n: (self.groups[n].depth, self.groups[n].priority, n))

    def variables(self, host: str) -> dict[str, Value]:
        """Every variable of the host and where it was set, in ansible-core's precedence."""
        groups = self.host_groups(host)
        result = dict(self.groups["all"].vars)
        for name in groups:
            result.update(self.groups[name].vars)
        for name in ["all", *groups]:
            result.update(self._file_vars(self.group_files.get(name, [])))
        result.update(self.hosts[host].vars)
        result.update(self._file_vars(self.host_files.get(host, [])))
        return result

    def group_variables(self, group: str) -> dict[str, Value]:
        """What a host would see from this group and its ancestors alone (an estate's own values)."""
        groups = self.sort_groups([name for name in [group, *self.ancestors(group)] if name != "all"])
        result = dict(self.groups["all"].vars)
        for name in groups:
            result.update(self.groups[name].vars)
        for name in ["all", *groups]:
            result.update(self._file_vars(self.group_files.get(name, [])))
        return result

    def group_hosts(self, group: str) -> list[str]:
        """The hosts of a group and of its descendants, in the order the inventory lists them."""
        wanted, todo = {group}, [group]
        while todo:
            for child in self.groups[todo.pop()].children:
                if child not in wanted:
                    wanted.add(child)
                    todo.append(child)
        return [name for name, host in self.hosts.items() if group == "all" or wanted & set(host.groups)]

    def _file_vars(self, paths: list[Path]) -> dict[str, Value]:
        result: dict[str, Value] = {}
        for path in paths:
            if path not in self._loaded:  # each vars file is read once, however many hosts it serves
                self._loaded[path] = self._read_vars_file(path)
            result.update(self._loaded[path])
        return result

    def _read_vars_file(self, path: Path) -> dict[str, Value]:
        text = path.read_text(encoding="utf-8")
        secret = text.startswith("$ANSIBLE_VAULT")
        if secret and self.decrypt is None:
            self.unread.append(path)
            return {}
        data = load(path, self.decrypt(path, text) if secret and self.decrypt else text)
        if data is None:
            return {}
        if not isinstance(data, LineDict):
            raise MxspecError(f"{path}:1: a vars file is a mapping of variable names to values")
        return {str(key): Value(Secret(value) if secret and isinstance(value, str) else value,
                                f"{path}:{data.key_lines[key]}") for key, value in data.items()}


def _unresolved(pending: dict[str, list[tuple[str, str]]], vars_only: dict[str, str]) -> None:
    """As ansible-core: a group named in [parent:children] or given [group:vars] must be declared."""
    for child, parents in pending.items():
        raise MxspecError(f"{parents[0][1]}: section [{parents[0][0]}:children] names group '{child}', "
                          "declared nowhere")
    for name, where in vars_only.items():
        raise MxspecError(f"{where}: section [{name}:vars] is for group '{name}', declared nowhere "
                          f"(no [{name}] nor [{name}:children] section)")


def _vars_files(directory: Path, name: str) -> list[Path]:
    """`group_vars/NAME`, `NAME.yml`, `NAME.yaml`, `NAME.json` (the first that exists) or `NAME/`."""
    for suffix in ("", *YAML_EXTENSIONS):
        path = directory / f"{name}{suffix}"
        if path.is_dir():
            return list(_dir_files(path))
        if path.is_file():
            return [path]
    return []


def _dir_files(directory: Path) -> Iterator[Path]:
    for path in sorted(directory.iterdir(), key=lambda p: p.name):
        if path.name.startswith(".") or path.name.endswith("~"):
            continue
        if path.is_dir() and not path.suffix:
            yield from _dir_files(path)
        elif path.is_file() and (not path.suffix or path.suffix in YAML_EXTENSIONS):
            yield path


def _looks_like_yaml(path: Path, text: str) -> bool:
    """A file without extension: ansible-core tries YAML first, then INI."""
    try:
        return isinstance(load(path, text), dict)
    except MxspecError:
        return False


def _ini_value(text: str) -> Any:
    """As ansible-core's INI plugin: a Python literal where it parses as one, else the text."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text


def expand_pattern(pattern: str, where: str) -> tuple[list[str], int | None]:
    """`mx[1:3].example.org:2525` -> the three host names and the port, as ansible-core expands them."""
    port = None
    match = re.fullmatch(r"(.+):(\d+)", pattern)
    if match and re.fullmatch(r"\[[0-9a-fA-F]*::?[0-9a-fA-F:]*\]", match.group(1)) and match.group(1).count(":") > 1:
        pattern, port = match.group(1)[1:-1], int(match.group(2))  # [IPv6]:port
    elif match and ":" not in re.sub(r"\[[^\]]*\]", "", match.group(1)):  # host:port, mx[1:3]:port
        pattern, port = match.group(1), int(match.group(2))
    if pattern.endswith(":"):
        raise MxspecError(f"{where}: host pattern '{pattern}' ends in ':' (reserved for a port)")
    return _expand(pattern, where), port


def _expand(pattern: str, where: str) -> list[str]:
    found = re.search(r"\[([^\]]*:[^\]]*)\]", pattern)
    if not found:
        return [pattern]
    head, tail, bounds = pattern[:found.start()], pattern[found.end():], found.group(1).split(":")
    if len(bounds) not in (2, 3) or not bounds[1]:
        raise MxspecError(f"{where}: host range '[{found.group(1)}]' must be [begin:end] or [begin:end:step]")
    begin, end = bounds[0] or "0", bounds[1]
    step = int(bounds[2]) if len(bounds) == 3 and bounds[2] else 1
    if begin in string.ascii_letters and end in string.ascii_letters:
        letters = string.ascii_letters
        items = list(letters[letters.index(begin):letters.index(end) + 1:step])
    else:
        try:
            width = len(begin) if begin.startswith("0") and len(begin) > 1 else 0
            if width and width != len(end):
                raise MxspecError(f"{where}: host range '[{found.group(1)}]': begin and end must have equal widths")
            items = [str(n).zfill(width) for n in range(int(begin), int(end) + 1, step)]
        except ValueError:
            raise MxspecError(f"{where}: host range '[{found.group(1)}]' is neither numbers nor letters") from None
    return [name for item in items for name in _expand(f"{head}{item}{tail}", where)]
