"""Estates: the hosts under test, their roles and their values, from Ansible inventories.

`--inventories` names a directory or an inventory file; `--hosts=NAME` selects an estate in it:

- **an estate file**: `<dir>/NAME.yml` (or `.yaml`), the form of the lab's `inventories/`: every
  host of the file is in the estate, every group in it is a role (`inbound-mx`, ...), and each
  host sets `ansible_host`;
- **an inventory group**: otherwise the directory (or file) is read as one Ansible inventory
  (INI or YAML files, `group_vars/`, `host_vars/`; see `estate.ansible`) and the estate is the
  group NAME: its hosts and those of its children. A host's roles are the role groups it is in
  (`inbound-mx` or `inbound_mx`, at any depth), else its `mxspec_roles` variable. Several estates
  may share one inventory and its role groups.

Values are resolved as ansible-core resolves them, then rendered (`estate.render`); vault-encrypted
values are decrypted with ansible-core when a vault password file is given (`estate.vault`).
`Host.origins` says where each value was set, for every message that names one.
"""

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mxspec.core.errors import MxspecError
from mxspec.core.yamlfile import LineDict, Vaulted, load
from mxspec.estate import roles, values, vault
from mxspec.estate.ansible import Inventory, Value
from mxspec.estate.render import MAGIC, Renderer, RenderError, Unrenderable

# Connection variables, named as in Ansible so that existing inventories work unchanged.
TARGET, USER, PORT, IDENTITY = "ansible_host", "ansible_user", "ansible_port", "ansible_ssh_private_key_file"
SSH_CONFIG = "mxspec_ssh_config"
TRANSPORT = "mxspec_transport"  # ssh (default: shared OpenSSH connection) or paramiko
SPEC = "mxspec_spec"  # set on hosts given as a raw testinfra spec on the command line
ROLES = "mxspec_roles"  # a host's roles, where no role group lists it
# Other names Ansible's ssh connection honours for the connection variables, and whether the other
# name wins where both are set (its plugin reads the names in turn and keeps the last one found).
ALIASES = {"ansible_ssh_host": (TARGET, True), "ansible_ssh_user": (USER, True), "ansible_ssh_port": (PORT, True),
           "ansible_private_key_file": (IDENTITY, False)}
Directory = str | os.PathLike[str]
ESTATE_FILE_SUFFIXES = (".yml", ".yaml")


@dataclass
class Host:
    name: str
    estate: str
    where: str  # file:line of the host's first mention
    roles: list[str] = field(default_factory=list)
    vars: dict = field(default_factory=dict)  # what steps see: rendered, in Ansible's precedence
    origins: dict[str, str] = field(default_factory=dict, repr=False)  # variable -> file:line

    @property
    def target(self) -> str:
        """Where to connect: `ansible_host`, else the inventory name (as Ansible); refused if unusable."""
        return str(values.usable(TARGET, self.vars.get(TARGET) or self.name))

    @property
    def ssh_config(self) -> str | None:
        return self.vars.get(SSH_CONFIG)

    def has_any_role(self, wanted: Iterable[str]) -> bool:
        return any(role in self.roles for role in wanted)


@dataclass
class Estate:
    name: str
    path: str
    vars: dict
    hosts: dict[str, Host]
    origins: dict[str, str] = field(default_factory=dict, repr=False)
    notes: list[str] = field(default_factory=list)  # warnings about the inventory as a whole


def estate_names(directory: Directory) -> list[str]:
    """The estate files of a directory (`<estate>.yml`)."""
    return sorted({path.stem for suffix in ESTATE_FILE_SUFFIXES for path in Path(directory).glob(f"*{suffix}")})


def _estate_file(directory: Path, name: str) -> Path | None:
    if not directory.is_dir():
        return None
    for suffix in ESTATE_FILE_SUFFIXES:
        if (directory / f"{name}{suffix}").is_file():
            return directory / f"{name}{suffix}"
    return None


class Loader:
    """Reads each inventory once and builds the estates named on the command line."""

    def __init__(self, path: Directory, vault_password_file: str | None = None):
        self.path = Path(path)
        self.vault_password_file = vault_password_file
        self._inventory: Inventory | None = None
        self._groups: dict[int, dict[str, list[str]]] = {}
        if not self.path.exists():
            kind = "file" if self.path.suffix else "directory"
            raise MxspecError(f"inventory {kind} {self.path} does not exist")

    def inventory(self, path: Path | None = None) -> Inventory:
        if path is not None:
            return Inventory(path, self._file_decrypter())
        if self._inventory is None:
            self._inventory = Inventory(self.path, self._file_decrypter())
        return self._inventory

    def _file_decrypter(self) -> Callable[[Path, str], str] | None:
        password_file = self.vault_password_file
        if password_file is None:
            return None
        return lambda path, text: vault.decrypt_file(path, text, password_file)

    def estate(self, name: str) -> Estate:
        estate_file = _estate_file(self.path, name)
        if estate_file is not None:
            return self._estate_file(estate_file, name)
        inventory = self.inventory()
        if name not in inventory.groups or name == "ungrouped":
            files = estate_names(self.path) if self.path.is_dir() else []
            groups = sorted(g for g in inventory.groups if g not in ("all", "ungrouped") and g not in files)
            known = ", ".join(files + groups) or "none"
            where = f"no {self.path / (name + '.yml')} and no group '{name}' in the inventory" if self.path.is_dir() \
                else f"no group '{name}' in {self.path}"
            skipped = "".join(f"; {note}" for note in inventory.skipped)
            raise MxspecError(f"unknown estate '{name}': {where} (estates and groups in {self.path}: {known}){skipped}")
        return self._group_estate(inventory, name)

    def _estate_file(self, path: Path, name: str) -> Estate:
        data = load(path)
        if not isinstance(data, LineDict) or "all" not in data:
            raise MxspecError(f"{path}:1: an inventory starts with 'all:' (Ansible YAML inventory shape)")
        inventory = self.inventory(path)
        for group in inventory.groups.values():
            if group.name not in ("all", "ungrouped"):
                roles.check_role(group.name, group.where)
        hosts = {host: self._host(inventory, host, name) for host in inventory.hosts}
        if not hosts:
            raise MxspecError(f"{path}: estate '{name}' has no hosts")
        for host in hosts.values():
            if TARGET not in host.vars:
                raise MxspecError(f"{host.where}: host '{host.name}' has no connection target "
                                  f"(set {TARGET}: an ssh alias or address)")
        return self._finish(inventory, name, "all", str(path), hosts)

    def _group_estate(self, inventory: Inventory, name: str) -> Estate:
        hosts = {host: self._host(inventory, host, name) for host in inventory.group_hosts(name)}
        if not hosts:
            raise MxspecError(f"{inventory.groups[name].where}: estate '{name}' (an inventory group) has no hosts")
        return self._finish(inventory, name, name, str(self.path), hosts)

    def _finish(self, inventory: Inventory, name: str, group: str, path: str, hosts: dict[str, Host]) -> Estate:
        for host in hosts.values():
            if not host.roles:
                raise MxspecError(f"{host.where}: host '{host.name}' belongs to no role group "
                                  f"({', '.join(roles.ROLES)}) and sets no {ROLES}")
        raw = inventory.group_variables(group)
        groups = [group, *inventory.ancestors(group)]
        magic = {"group_names": sorted(g for g in groups if g != "all"), "groups": self.groups(inventory)}
        values, origins = self._render(raw, magic)
        notes = [f"{path}: vault-encrypted, not read (give --mx-vault-password-file to read it)"
                 for path in inventory.unread] + inventory.skipped
        for group_name in {g for host in hosts.values() for g in inventory.host_groups(host.name)}:
            close = roles.near_role(group_name)
            if close:
                notes.append(f"{inventory.groups[group_name].where}: group '{group_name}' is not a role group: "
                             f"did you mean '{close}'?")
        return Estate(name, path, values, hosts, origins, notes)

    def _host(self, inventory: Inventory, name: str, estate: str) -> Host:
        raw = inventory.variables(name)
        groups = inventory.host_groups(name)
        magic = {"inventory_hostname": name, "inventory_hostname_short": name.split(".")[0],
                 "group_names": sorted(groups), "groups": self.groups(inventory)}
        values, origins = self._render(raw, magic)
        for alias, (canonical, wins) in ALIASES.items():
            if alias in values and (wins or canonical not in values):
                values[canonical], origins[canonical] = values[alias], origins[alias]
        host = Host(name, estate, inventory.hosts[name].where, [], values, origins)
        host.roles = _roles(groups, values.get(ROLES), origins.get(ROLES, host.where))
        return host

    def groups(self, inventory: Inventory) -> dict[str, list[str]]:
        """Ansible's `groups`: every group's hosts, computed once per inventory."""
        if id(inventory) not in self._groups:
            self._groups[id(inventory)] = {name: inventory.group_hosts(name) for name in inventory.groups}
        return self._groups[id(inventory)]

    def _render(self, raw: dict[str, Value], magic: dict[str, Any]) -> tuple[dict, dict[str, str]]:
        origins = {key: value.where for key, value in raw.items()}
        plain = {key: self._decrypt(key, value) for key, value in raw.items()}
        renderer = Renderer(plain, magic, lambda key: origins.get(key, "?"))
        values: dict[str, Any] = {}
        for key in plain:
            try:
                values[key] = renderer.final(key)
            except RenderError as error:
                values[key] = Unrenderable(str(error))
        return values, origins

    def _decrypt(self, name: str, value: Value) -> Any:
        if isinstance(value.value, Vaulted) and self.vault_password_file:
            return vault.decrypt(value.value, name, self.vault_password_file)
        return value.value


def _roles(groups: list[str], declared: object, where: str) -> list[str]:
    """The role groups a host is in, else its `mxspec_roles`, in the order of `roles.ROLES`."""
    found = {group.replace("_", "-") for group in groups} & set(roles.ROLES)
    if not found and declared is not None:
        names = declared.split(",") if isinstance(declared, str) else declared
        if not isinstance(names, list):
            raise MxspecError(f"{where}: {ROLES} must be a list of roles, e.g. [inbound-mx, outbound-mx]")
        for role in names:
            roles.check_role(str(role).strip().replace("_", "-"), where)
        found = {str(role).strip().replace("_", "-") for role in names}
    return [role for role in roles.ROLES if role in found]


def load_estate(directory: Directory, name: str, vault_password_file: str | None = None) -> Estate:
    return Loader(directory, vault_password_file).estate(name)


def load_estates(directory: Directory, names: list[str], vault_password_file: str | None = None) -> list[Estate]:
    """Load the named estates; a host name may belong to one estate only."""
    loader = Loader(directory, vault_password_file) if names else None
    estates = [loader.estate(name) for name in names] if loader else []
    seen: dict[str, Host] = {}
    for estate in estates:
        for host in estate.hosts.values():
            if host.name in seen:
                raise MxspecError(
                    f"{host.where}: duplicate host '{host.name}', already in {seen[host.name].where}"
                    f" (estate {seen[host.name].estate})"
                )
            seen[host.name] = host
    return estates


def raw_estate(specs: list[str], role_option: str | None, connection_variables: Callable[[str], dict]) -> Estate:
    """Hosts given on the command line as raw testinfra specs (ssh://..., local://), with --roles.

    `connection_variables` reads an ssh:// spec as the connection variables an inventory would set.
    """
    if not role_option:
        raise MxspecError(f"--hosts={specs[0]} is a raw host spec: say its roles with --roles=ROLE,...")
    host_roles = [role.strip() for role in role_option.split(",") if role.strip()]
    for role in host_roles:
        roles.check_role(role, "--roles")
    hosts = {}
    for spec in specs:
        name = spec.split("://", 1)[1].split("?")[0] or spec.split("://")[0]
        connection = connection_variables(spec) if spec.startswith("ssh://") else {TARGET: name}
        hosts[name] = Host(name, "command-line", f"--hosts={spec}", list(host_roles), {SPEC: spec, **connection},
                           {key: f"--hosts={spec}" for key in (SPEC, *connection)})
    return Estate("command-line", "--hosts", {}, hosts)


def named_host(spec: object, variable: str, owner: str, estate: str, where: str) -> Host:
    """A host an inventory variable names (e.g. the mailstore): a mapping with its connection target."""
    if not isinstance(spec, dict) or TARGET not in spec:
        raise MxspecError(f"{where}: inventory variable '{variable}' of {owner} must be a mapping with {TARGET}")
    return Host(str(spec[TARGET]), estate, where, [], dict(spec), {key: where for key in spec})


__all__ = ["MAGIC", "Estate", "Host", "Loader", "Unrenderable", "estate_names", "load_estate", "load_estates",
           "named_host", "raw_estate"]
