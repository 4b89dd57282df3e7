"""Estates: Ansible-shaped YAML inventories naming hosts, their roles and their variables.

`inventories/<estate>.yml` holds `all:` with `vars`, `hosts` and `children`; every group under
`children` is a role (nested groups give a host several roles). Variables are layered as
Ansible does: `all` vars, then group vars from the outermost group in, then host vars.
"""

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from mxspec.core.errors import MxspecError
from mxspec.core.yamlfile import LineDict, load
from mxspec.estate import roles

# Connection variables, named as in Ansible so that existing inventories work unchanged.
TARGET, USER, PORT, IDENTITY = "ansible_host", "ansible_user", "ansible_port", "ansible_ssh_private_key_file"
SSH_CONFIG = "mxspec_ssh_config"
TRANSPORT = "mxspec_transport"  # ssh (default: shared OpenSSH connection) or paramiko
SPEC = "mxspec_spec"  # set on hosts given as a raw testinfra spec on the command line
Directory = str | os.PathLike[str]
GROUP_KEYS = {"hosts", "vars", "children"}


@dataclass
class Host:
    name: str
    estate: str
    where: str  # file:line of the host's first mention
    roles: list[str] = field(default_factory=list)
    vars: dict = field(default_factory=dict)  # what steps see: group vars, then the host's own
    group_vars: dict = field(default_factory=dict, repr=False)
    own_vars: dict = field(default_factory=dict, repr=False)

    @property
    def target(self) -> str:
        return str(self.vars[TARGET])

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


def estate_names(directory: Directory) -> list[str]:
    return sorted(path.stem for path in Path(directory).glob("*.yml"))


def load_estate(directory: Directory, name: str) -> Estate:
    path = Path(directory) / f"{name}.yml"
    if not Path(directory).is_dir():
        raise MxspecError(f"inventory directory {directory} does not exist")
    if not path.exists():
        known = ", ".join(estate_names(directory)) or "none"
        raise MxspecError(f"unknown estate '{name}': no {path} (estates in {directory}: {known})")
    return _parse(path, name, load(path))


def _parse(path: Path, name: str, data: object) -> Estate:
    if not isinstance(data, LineDict) or "all" not in data:
        raise MxspecError(f"{path}:1: an inventory starts with 'all:' (Ansible YAML inventory shape)")
    top = _group(path, "all", data["all"], data.key_lines["all"])
    hosts: dict[str, Host] = {}
    _walk(path, name, top, [], dict(top.get("vars") or {}), hosts, data.key_lines["all"])
    if not hosts:
        raise MxspecError(f"{path}: estate '{name}' has no hosts")
    for host in hosts.values():
        if TARGET not in host.vars:
            raise MxspecError(
                f"{host.where}: host '{host.name}' has no connection target "
                f"(set {TARGET}: an ssh alias or address)"
            )
        if not host.roles:
            raise MxspecError(f"{host.where}: host '{host.name}' belongs to no role group")
    return Estate(name, str(path), dict(top.get("vars") or {}), hosts)


def _group(path: Path, group_name: str, node: object, line: int) -> LineDict:
    if node is None:
        node = LineDict()
        node.line, node.key_lines = line, {}
    if not isinstance(node, LineDict):
        raise MxspecError(f"{path}:{line}: group '{group_name}' must be a mapping of hosts/vars/children")
    for key in node:
        if key not in GROUP_KEYS:
            raise MxspecError(
                f"{path}:{node.key_lines[key]}: unexpected key '{key}' in group '{group_name}' "
                f"(a group has {', '.join(sorted(GROUP_KEYS))})"
            )
    for key in ("hosts", "vars", "children"):
        value = node.get(key)
        if value is not None and not isinstance(value, dict):
            raise MxspecError(f"{path}:{node.key_lines[key]}: '{key}' of group '{group_name}' must be a mapping")
    return node


def _walk(path: Path, estate: str, group: LineDict, group_roles: list[str], inherited_vars: dict,
          hosts: dict[str, Host], line: int) -> None:
    for host_name, host_vars in (group.get("hosts") or {}).items():
        where = f"{path}:{group['hosts'].key_lines[host_name]}"
        if host_vars is not None and not isinstance(host_vars, dict):
            raise MxspecError(f"{where}: variables of host '{host_name}' must be a mapping")
        host = hosts.setdefault(host_name, Host(str(host_name), estate, where))
        # Group variables never override the host's own, whichever group mentions it last.
        host.group_vars = {**host.group_vars, **inherited_vars}
        host.own_vars = {**host.own_vars, **(host_vars or {})}
        host.vars = {**host.group_vars, **host.own_vars}
        host.roles += [role for role in group_roles if role not in host.roles]
    for child_name, child in (group.get("children") or {}).items():
        child_line = group["children"].key_lines[child_name]
        roles.check_role(str(child_name), f"{path}:{child_line}")
        child = _group(path, child_name, child, child_line)
        _walk(path, estate, child, group_roles + [child_name],
              {**inherited_vars, **(child.get("vars") or {})}, hosts, child_line)


def load_estates(directory: Directory, names: list[str]) -> list[Estate]:
    """Load the named estates; a host name may belong to one estate only."""
    estates = [load_estate(directory, name) for name in names]
    seen: dict[str, Host] = {}
    for estate in estates:
        for host in estate.hosts.values():
            if host.name in seen:
                raise MxspecError(
                    f"{host.where}: duplicate host '{host.name}', already in {seen[host.name].where}"
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
        hosts[name] = Host(name, "command-line", f"--hosts={spec}", list(host_roles), {SPEC: spec, **connection})
    return Estate("command-line", "--hosts", {}, hosts)


def named_host(spec: object, variable: str, owner: str, estate: str, where: str) -> Host:
    """A host an inventory variable names (e.g. the mailstore): a mapping with its connection target."""
    if not isinstance(spec, dict) or TARGET not in spec:
        raise MxspecError(f"inventory variable '{variable}' of {owner} must be a mapping with {TARGET}")
    return Host(str(spec[TARGET]), estate, where, [], dict(spec))
