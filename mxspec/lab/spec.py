"""The lab's description (`lab/lab.yml`): images, hosts, roles, and the values role files use."""

import hashlib
import ipaddress
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import jinja2

from mxspec.core.errors import MxspecError
from mxspec.core.yamlfile import load

DEFAULT_STATE_DIR = "/var/lib/mxspec-lab"


@dataclass
class Image:
    name: str
    init: str  # "systemd" or "sysv"
    packages: list[str]

    def recipe_hash(self, suite: str) -> str:
        recipe = json.dumps([suite, self.init, sorted(self.packages)])
        return hashlib.sha256(recipe.encode()).hexdigest()[:12]


@dataclass
class LabHost:
    name: str
    image: Image
    address: str
    roles: list[str]
    spec_vars: dict = field(default_factory=dict)  # the host's own vars in lab.yml
    extra_addresses: list[str] = field(default_factory=list)
    vars: dict = field(default_factory=dict)  # everything its templates see

    @property
    def fqdn(self) -> str:
        return f"{self.name}.{self.vars['lab_domain']}"


@dataclass
class Lab:
    root: Path  # the folder holding lab.yml and roles/
    suite: str
    network: ipaddress.IPv4Network
    bridge: str
    images: dict[str, Image]
    hosts: dict[str, LabHost]
    state_dir: Path
    ready: dict = field(default_factory=dict)  # role -> {services: [...], commands: [...]}
    baseline: list[str] = field(default_factory=list)  # paths whose known-good state is kept at boot

    @property
    def gateway(self) -> str:
        """The machine's own address on the lab bridge: an outside client to the estates."""
        return str(self.network.network_address + 1)

    @property
    def trusted_client(self) -> str:
        """A second address of the machine on the bridge, inside the estates' authorised networks."""
        return str(self.network.network_address + 250)

    def role_dir(self, role: str) -> Path:
        return self.root / "roles" / role

    def host_config_hash(self, host: LabHost) -> str:
        """Changes when anything the host is built from changes: its image, vars, role files, or what
        of it is kept as known-good at boot."""
        digest = hashlib.sha256(json.dumps([host.image.recipe_hash(self.suite), host.address,
                                            host.roles, host.vars, self.baseline], sort_keys=True,
                                           default=str).encode())
        for role in ["base", *host.roles]:
            for path in sorted(self.role_dir(role).rglob("*")):
                if path.is_file():
                    digest.update(str(path.relative_to(self.root)).encode() + path.read_bytes())
        return digest.hexdigest()[:12]


def load_lab(root: Path, subnet: str | None = None, state_dir: str | None = None) -> Lab:
    path = root / "lab.yml"
    data = load(path)
    subnet = subnet or os.environ.get("MXSPEC_LAB_SUBNET") or data.get("subnet")
    try:
        network = ipaddress.IPv4Network(subnet)
    except ValueError as error:
        raise MxspecError(f"lab subnet '{subnet}' is not an IPv4 network: {error}") from None
    if network.num_addresses < 256:
        raise MxspecError(f"lab subnet {network} is too small: the lab needs a /24 or larger")
    images = {name: Image(name, spec["init"], list(spec["packages"])) for name, spec in data["images"].items()}
    base_vars = dict(data.get("vars") or {})
    hosts: dict[str, LabHost] = {}
    for name, spec in data["hosts"].items():
        where = f"{path}:{data['hosts'].key_lines[name]}"
        if spec.get("image") not in images:
            raise MxspecError(f"{where}: host '{name}' names unknown image '{spec.get('image')}'")
        address, *extra = [str(network.network_address + int(n)) for n in _as_list(spec["address"])]
        own = dict(spec.get("vars") or {})
        hosts[name] = LabHost(name, images[spec["image"]], address, list(spec.get("roles") or []),
                              own, extra, {**base_vars, **own})
        for role in ["base", *hosts[name].roles]:
            if not (root / "roles" / role).is_dir():
                raise MxspecError(f"{where}: host '{name}' has role '{role}' but {root}/roles/{role}/ does not exist")
    lab = Lab(root, data.get("suite", "bookworm"), network, data.get("bridge", "mxlab0"), images, hosts,
              Path(state_dir or os.environ.get("MXSPEC_LAB_DIR") or DEFAULT_STATE_DIR),
              dict(data.get("ready") or {}), [str(p) for p in _as_list(data.get("baseline"))])
    for host in hosts.values():
        host.vars.update(template_vars(lab, host))
    return lab


def _as_list(value: object) -> list:
    return value if isinstance(value, list) else [value]


def template_vars(lab: Lab, host: LabHost) -> dict:
    """Values every role file may use as `{{ name }}`, besides lab.yml's `vars`."""
    domain = host.vars["lab_domain"]
    return {
        "hostname": host.name,
        "fqdn": f"{host.name}.{domain}",
        "address": host.address,
        "addresses": [host.address, *host.extra_addresses],
        "subnet": str(lab.network),
        "prefixlen": lab.network.prefixlen,
        "gateway": lab.gateway,
        "outside_client": lab.gateway,
        "trusted_client": lab.trusted_client,
        "addr": {other.name: other.address for other in lab.hosts.values()},
        "hosts": {other.name: {"address": other.address, "fqdn": f"{other.name}.{domain}",
                               "addresses": [other.address, *other.extra_addresses],
                               "roles": other.roles, **other.spec_vars} for other in lab.hosts.values()},
    }


def render(lab: Lab, text: str, variables: dict, where: str) -> str:
    """Fill a role template (Jinja2, as in Ansible roles); an unknown value is an error, not ''.

    Templates may `{% include %}` snippets from lab/templates/ shared by several roles.
    """
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(lab.root / "templates"),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    try:
        return env.from_string(text).render(variables)
    except jinja2.TemplateError as error:
        line = getattr(error, "lineno", None)
        raise MxspecError(f"{where}{f':{line}' if line else ''}: {error.message or error}") from None
