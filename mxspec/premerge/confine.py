"""The converge and the behaviours reach the lab's hosts only: what the operator's inventory says of
each host is checked against the lab before anything runs.

Ansible connects where `ansible_host` says (else the inventory name, looked up by ssh), with the ssh
arguments the inventory gives. A lab host is reached by its lab address, or by its name through the
lab's ssh_config (`-F`, which names the address); a jump host must itself be a lab host (the lab's
bastion); a ProxyCommand cannot be checked and is refused. An inventory written for production
hosts (their addresses, their bastion) is therefore refused, naming host, setting and file:line.
"""

import shlex

from mxspec.core.errors import MxspecError
from mxspec.estate.inventory import Estate, Host

SSH_CONNECTIONS = (None, "ssh", "smart", "paramiko")


def refuse_outside(estate: Estate, addresses: dict[str, str], ssh_config: str) -> None:
    """Every host of the estate reached inside the lab (`addresses`: lab host -> address), or an error."""
    problems = [problem for host in estate.hosts.values() for problem in _problems(host, addresses, ssh_config)]
    if problems:
        raise MxspecError("premerge converges lab hosts only, reached inside the lab; the inventory says otherwise:\n"
                          + "\n".join(f"  {problem}" for problem in problems))


def _where(host: Host, variable: str) -> str:
    return f" ({host.origins[variable]})" if variable in host.origins else ""


def _problems(host: Host, addresses: dict[str, str], ssh_config: str) -> list[str]:
    lab_names = {*addresses, *addresses.values()}
    address = addresses[host.name]
    found = []
    connection = host.vars.get("ansible_connection")
    if connection not in SSH_CONNECTIONS:
        found.append(f"{host.name}: ansible_connection is {connection}{_where(host, 'ansible_connection')}; "
                     "lab hosts are reached over ssh")
    target = str(host.vars.get("ansible_host") or host.name)
    args = " ".join(str(host.vars.get(name) or "") for name in ("ansible_ssh_common_args", "ansible_ssh_extra_args"))
    words = shlex.split(args)
    configs = [words[i + 1] for i, word in enumerate(words[:-1]) if word == "-F"]
    if target not in (host.name, address):
        found.append(f"{host.name}: ansible_host is {target}{_where(host, 'ansible_host')}, not the lab host's "
                     f"name or address ({address})")
    elif target == host.name and ssh_config not in configs:
        found.append(f"{host.name}: reached by name, which only the lab's ssh_config turns into its address: set "
                     f"ansible_ssh_common_args: -F {ssh_config}, or ansible_host: {address}")
    for jump in _jumps(words):
        if jump == "proxycommand":
            found.append(f"{host.name}: a ProxyCommand in its ssh arguments{_where(host, 'ansible_ssh_common_args')} "
                         "cannot be checked to stay inside the lab")
        elif jump not in lab_names:
            found.append(f"{host.name}: jumps through {jump}{_where(host, 'ansible_ssh_common_args')}, not a lab host")
    mxspec_config = host.vars.get("mxspec_ssh_config")
    if mxspec_config and str(mxspec_config) != ssh_config:
        found.append(f"{host.name}: mxspec_ssh_config is {mxspec_config}{_where(host, 'mxspec_ssh_config')}, "
                     f"not the lab's ({ssh_config})")
    return found


def _jumps(words: list[str]) -> list[str]:
    """The hosts ssh's arguments jump through (ProxyJump, -J), by name; 'proxycommand' for a ProxyCommand."""
    found = []
    for index, word in enumerate(words):
        value = ""
        if word == "-J" and index + 1 < len(words):
            value = words[index + 1]
        elif word.startswith("-J") and len(word) > 2:
            value = word[2:]
        option = word[2:] if word.startswith("-o") and len(word) > 2 else (
            words[index + 1] if word == "-o" and index + 1 < len(words) else "")
        lowered = option.lower().replace(" ", "=", 1)
        if lowered.startswith("proxycommand"):
            found.append("proxycommand")
        elif lowered.startswith("proxyjump"):
            value = option.split("=", 1)[1] if "=" in option else option.split(None, 1)[-1]
        for hop in filter(None, value.split(",")):
            found.append(hop.rsplit("@", 1)[-1].split(":", 1)[0])
    return found
