"""The lab bridge: one Linux bridge, the machine's address on it, and the checks before making it.

Containers get no default route and forwarding stays as it is (off), so nothing they send can
leave the machine; they reach each other and the machine over the bridge only.
"""

import ipaddress
import json
import subprocess
from pathlib import Path

from mxspec.core.errors import MxspecError
from mxspec.lab.spec import Lab
from mxspec.lab.system import run


def _ip_json(*args: str) -> list:
    result = run(["ip", "-j", *args], "reading the machine's network")
    return json.loads(result.stdout or "[]")


def bridge_exists(name: str) -> bool:
    return subprocess.run(["ip", "link", "show", name], capture_output=True).returncode == 0


def _lab_prefix(lab: Lab, version: int) -> str:
    """The lab's network of that IP version, as an error names it (the IPv6 prefix comes from the subnet)."""
    if version == 4:
        return f"lab subnet {lab.network}"
    return f"lab IPv6 prefix {lab.ipv6_network} (derived from subnet {lab.network})"


def check_subnet_free(lab: Lab) -> None:
    """Refuse a subnet (or the IPv6 prefix derived from it) that any address or route of the machine,
    other than our bridge, overlaps."""
    for link in _ip_json("addr"):
        if link.get("ifname") == lab.bridge:
            continue
        for info in link.get("addr_info", []):
            if info.get("family") not in ("inet", "inet6"):
                continue
            net = ipaddress.ip_network(f"{info['local']}/{info['prefixlen']}", strict=False)
            if net.overlaps(lab.network if net.version == 4 else lab.ipv6_network):
                raise MxspecError(f"{_lab_prefix(lab, net.version)} is already in use on this machine "
                                  f"({info['local']}/{info['prefixlen']} on {link['ifname']}); "
                                  "choose another with --subnet or MXSPEC_LAB_SUBNET")
    for route in _ip_json("-4", "route") + _ip_json("-6", "route"):
        dst = route.get("dst")
        if dst in (None, "default") or route.get("dev") == lab.bridge:
            continue
        net = ipaddress.ip_network(dst, strict=False)  # a bare address is a /32 (/128)
        if net.overlaps(lab.network if net.version == 4 else lab.ipv6_network):
            raise MxspecError(f"{_lab_prefix(lab, net.version)} overlaps route {dst} via {route.get('dev')}; "
                              "choose another with --subnet or MXSPEC_LAB_SUBNET")


def check_bridge_traffic() -> None:
    """Docker-style hosts filter bridged traffic through iptables' FORWARD chain (br_netfilter)."""
    flag = Path("/proc/sys/net/bridge/bridge-nf-call-iptables")
    if flag.exists() and flag.read_text().strip() == "1":
        try:
            policy = subprocess.run(["iptables", "-S", "FORWARD"], capture_output=True, text=True).stdout
        except FileNotFoundError:
            return  # no iptables tool here, hence no iptables rules set by one
        if "-P FORWARD DROP" in policy:
            raise MxspecError("bridged traffic on this machine passes iptables' FORWARD chain "
                              "(br_netfilter) whose policy is DROP, so lab hosts could not reach each "
                              "other; allow the lab bridge (iptables -I FORWARD -i BRIDGE -o BRIDGE -j "
                              "ACCEPT) or set net.bridge.bridge-nf-call-iptables=0")


def create_bridge(lab: Lab) -> None:
    """Make the bridge (or complete it: `ip addr replace` adds only what is missing)."""
    what = f"creating lab bridge {lab.bridge}"
    if not bridge_exists(lab.bridge):
        try:
            run(["ip", "link", "add", lab.bridge, "type", "bridge"], what)
        except MxspecError as error:
            raise MxspecError(f"{error}\nthis machine cannot make Linux bridges (kernel without bridge "
                              "support, or no CAP_NET_ADMIN); the lab needs one") from None
    for address in (lab.gateway, lab.trusted_client):
        run(["ip", "addr", "replace", f"{address}/{lab.network.prefixlen}", "dev", lab.bridge], what)
    # The lab's IPv6 prefix, for the hosts that have IPv6: usable at once (no duplicate detection:
    # the prefix is the lab's own, checked free above), routed on the bridge only.
    run(["ip", "-6", "addr", "replace", f"{lab.ipv6_gateway}/{lab.ipv6_network.prefixlen}", "dev", lab.bridge,
         "nodad"], what)
    run(["ip", "link", "set", lab.bridge, "up"], what)


def delete_bridge(lab: Lab) -> None:
    if bridge_exists(lab.bridge):
        run(["ip", "link", "del", lab.bridge], f"removing lab bridge {lab.bridge}")


def remove_stale_veth(host_name: str) -> None:
    """A container killed hard can leave its host-side veth behind; nspawn then cannot boot it."""
    name = f"vb-{host_name}"[:15]
    if subprocess.run(["ip", "link", "show", name], capture_output=True).returncode == 0:
        run(["ip", "link", "del", name], f"removing stale interface {name}")
