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
    ipv6_address: str | None = None  # only hosts lab.yml gives `ipv6: yes` have one
    # Booted with the base role only (sshd, python3, the ops account; the image's packages, all
    # disabled): its configuration is the operator's playbook's to make (`mxspec premerge`). Its
    # roles still say what it is to the rest of the lab (DNS records, the other hosts' settings).
    bare: bool = False

    @property
    def built_from(self) -> list[str]:
        """The role folders the lab applies to the host: base always, its roles unless it is bare."""
        return ["base"] if self.bare else ["base", *self.roles]

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

    @property
    def ipv6_network(self) -> ipaddress.IPv6Network:
        return ipv6_network(self.network)

    @property
    def ipv6_gateway(self) -> str:
        """The machine's IPv6 address on the bridge (::1, as its IPv4 address is .1)."""
        return ipv6_host(self.network, 1)

    def role_dir(self, role: str) -> Path:
        return self.root / "roles" / role

    def host_config_hash(self, host: LabHost) -> str:
        """Changes when anything the host is built from changes: its image, vars, role files, or what
        of it is kept as known-good at boot."""
        digest = hashlib.sha256(json.dumps([host.image.recipe_hash(self.suite), host.address,
                                            host.roles, host.bare, host.vars, self.baseline], sort_keys=True,
                                           default=str).encode())
        for role in host.built_from:
            for path in sorted(self.role_dir(role).rglob("*")):
                if path.is_file():
                    digest.update(str(path.relative_to(self.root)).encode() + path.read_bytes())
        return digest.hexdigest()[:12]


def ipv6_network(network: ipaddress.IPv4Network) -> ipaddress.IPv6Network:
    """The lab's IPv6 prefix, derived from its IPv4 subnet so that there is one setting: a unique
    local /64 spelling the subnet's first three numbers (10.213.0.0/24 -> fd00:10:213::/64)."""
    first, second, third, _ = network.network_address.packed
    return ipaddress.IPv6Network(f"fd00:{first}:{second}:{third}::/64")


def ipv6_host(network: ipaddress.IPv4Network, number: int) -> str:
    """Host `number` of the lab (its lab.yml address) in the IPv6 prefix, spelt as in IPv4: 21 -> ...::21."""
    return str(ipv6_network(network).network_address + int(str(number), 16))


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
        numbers = [int(n) for n in _as_list(spec["address"])]
        address, *extra = [str(network.network_address + n) for n in numbers]
        own = dict(spec.get("vars") or {})
        hosts[name] = LabHost(name, images[spec["image"]], address, list(spec.get("roles") or []),
                              own, extra, {**base_vars, **own},
                              ipv6_host(network, numbers[0]) if spec.get("ipv6") else None)
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
                               "ipv6_address": other.ipv6_address,
                               "roles": other.roles, **other.spec_vars} for other in lab.hosts.values()},
        # IPv6, on the hosts lab.yml gives it only (None elsewhere): the bridge's prefix, no route out.
        "ipv6_address": host.ipv6_address,
        "ipv6_prefixlen": lab.ipv6_network.prefixlen,
        # The reverse zone of the prefix: its /64's 16 nibbles, as the PTR names end.
        "ipv6_reverse_zone": lab.ipv6_network.network_address.reverse_pointer.split(".", 16)[16] + ".",
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
