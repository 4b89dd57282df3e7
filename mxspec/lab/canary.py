"""The canary's split in the lab, made as the method makes it (`mxspec lab canary start|stop|status`).

On the old inbound MX, a share P of new port-25 connections is DNATed to a new inbound MX (the
nat hook sees a connection's first packet only, so the split is per connection); no SNAT, so the
new MX sees the client's own address. On the new MX, connections arriving from the old MX's
link address are marked, and replies carrying the mark are routed back through the old MX by a
routing table of their own; there the connection tracking undoes the DNAT on the way out, so the
client only ever talks to the old MX's address.

Everything is nftables in a table of mxspec's own, one `ip rule` and one routing table, and the
sysctls forwarding needs (in the hosts' network namespaces, never on this machine). Before
starting, each host's network and firewall state is read and kept; stopping removes what was
added, puts back every sysctl that moved, and reads the state again: it must be byte-identical
to the one kept, or stopping says what differs.
"""

import json
import shlex
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mxspec.core.errors import MxspecError
from mxspec.lab import access, machines, traffic
from mxspec.lab.commands import read_state, run_dir, running_lab, ssh_config_path
from mxspec.lab.spec import Lab
from mxspec.lab.system import require_root

OLD_MX, NEW_MX = "old-mx-1", "new-mx-in-1"  # the lab's old inbound MX and the new one it sends a share to
TABLE = "mxspec_canary"  # the nftables table (family ip) holding every rule the canary adds
MARK = 0x25              # the connection mark, and the packet mark of the replies it routes back
ROUTE_TABLE = 125        # the routing table those replies use: default via the old MX
RULE_PRIORITY = 1025

# A host's network and firewall state, as the canary compares it before and after: everything the
# canary may touch (the ruleset without its counters, `-s`, which traffic moves). The sysctl lines
# (path:value: forwarding and every interface's IPv4 settings) come last; they are also what is put back.
SNAPSHOT = ("echo '## nft'; nft -s list ruleset; echo '## rules'; ip -4 rule show; ip -6 rule show; "
            "echo '## routes'; ip -4 route show table all; ip -6 route show table all; "
            "echo '## sysctl'; grep -r . /proc/sys/net/ipv4/ip_forward /proc/sys/net/ipv4/conf/ 2>/dev/null | sort")
SYSCTL_MARK = "## sysctl"


@dataclass(frozen=True)
class Split:
    share: float
    old: str
    new: str
    old_address: str
    new_address: str

    def describe(self) -> str:
        return f"{self.share:.0%} of port-25 connections to {self.old} ({self.old_address}) go to {self.new} ({self.new_address})"


def _state_file(lab: Lab) -> Path:
    return run_dir(lab) / "canary.json"


def _run(lab: Lab, name: str, command: str, what: str) -> str:
    result = access.on_host(ssh_config_path(lab), name, command, timeout=60)
    if result.returncode != 0:
        raise MxspecError(f"lab host {name}: {what} failed (exit {result.returncode}): "
                          f"{result.stderr.decode(errors='replace').strip()[-400:]}")
    return result.stdout.decode(errors="replace")


def _old_side(split: Split, interface: str) -> str:
    per_mille = round(split.share * 1000)
    rule = (f'iifname "{interface}" ip daddr {split.old_address} tcp dport 25 numgen random mod 1000 < {per_mille} '
            f"counter dnat to {split.new_address}:25")
    ruleset = f"""table ip {TABLE} {{
  chain split {{
    type nat hook prerouting priority dstnat; policy accept;
    {rule}
  }}
  chain forward {{
    type filter hook forward priority filter; policy accept;
    ct status dnat counter accept
    counter drop
  }}
}}
"""
    # Forwarding only for the DNATed connections (the forward chain drops the rest); no ICMP
    # redirects: the replies come in and go out on the same link, and a redirect would send the
    # new MX's replies straight to the client, from an address the client never called.
    return (f"printf %s {shlex.quote(ruleset)} | nft -f - && "
            f"echo 1 > /proc/sys/net/ipv4/ip_forward && "
            f"echo 0 > /proc/sys/net/ipv4/conf/all/send_redirects && "
            f"echo 0 > /proc/sys/net/ipv4/conf/{interface}/send_redirects")


def _new_side(split: Split, interface: str, old_mac: str) -> str:
    ruleset = f"""table ip {TABLE} {{
  chain mark_canary {{
    type filter hook prerouting priority mangle; policy accept;
    iifname "{interface}" ether saddr {old_mac} tcp dport 25 ct state new counter ct mark set {MARK:#x}
  }}
  chain route_replies {{
    type route hook output priority mangle; policy accept;
    ct mark {MARK:#x} meta mark set {MARK:#x}
  }}
}}
"""
    return (f"printf %s {shlex.quote(ruleset)} | nft -f - && "
            f"ip rule add fwmark {MARK:#x} lookup {ROUTE_TABLE} priority {RULE_PRIORITY} && "
            f"ip route add default via {split.old_address} dev {interface} table {ROUTE_TABLE}")


def _undo_new() -> str:
    return (f"nft delete table ip {TABLE} 2>/dev/null; "
            f"ip rule del fwmark {MARK:#x} lookup {ROUTE_TABLE} priority {RULE_PRIORITY} 2>/dev/null; "
            f"ip route flush table {ROUTE_TABLE} 2>/dev/null; true")


def _undo_old() -> str:
    return f"nft delete table ip {TABLE} 2>/dev/null; true"


def _put_back_sysctls(kept: str) -> str:
    """Each sysctl written back to its kept value (ip_forward first: writing it resets others)."""
    lines = kept.split(SYSCTL_MARK, 1)[1].strip().splitlines()
    values = dict(line.split(":", 1) for line in lines if ":" in line)
    order = sorted(values, key=lambda path: (not path.endswith("ip_forward"), "/all/" not in path, path))
    return "; ".join(f"[ \"$(cat {p})\" = {shlex.quote(values[p])} ] || echo {shlex.quote(values[p])} > {p} 2>/dev/null"
                     for p in order) + "; true"


# What start needs free on both hosts: its table, its rule's priority, its routing table (a host may use
# them for something else; the canary would then change, and stop remove, what is not its own).
FREE = (f"if nft list table ip {TABLE} >/dev/null 2>&1; then echo 'nftables table ip {TABLE} exists'; fi; "
        f"[ -z \"$(ip rule show priority {RULE_PRIORITY})\" ] || echo 'an ip rule at priority {RULE_PRIORITY} exists'; "
        f"[ -z \"$(ip route show table {ROUTE_TABLE} 2>/dev/null)\" ] || echo 'routing table {ROUTE_TABLE} is not empty'")


def _interface_towards(lab: Lab, name: str, address: str) -> tuple[str, str]:
    """The interface a host reaches `address` on, and that interface's link (MAC) address."""
    out = _run(lab, name, f"dev=$(ip -o -4 route get {address} | sed -n 's/.* dev \\([^ ]*\\).*/\\1/p'); "
                          "echo \"$dev $(cat /sys/class/net/$dev/address)\"", "finding its interface")
    words = out.split()
    if len(words) != 2:
        raise MxspecError(f"lab host {name}: no interface found towards {address} (`ip route get` said {out.strip()!r})")
    return words[0], words[1]


def _require_running(lab: Lab, names: list[str]) -> None:
    state = read_state(lab)
    for name in names:
        if name not in lab.hosts:
            raise MxspecError(f"unknown lab host '{name}'; hosts: {', '.join(lab.hosts)}")
        if not machines.is_running(state.get("hosts", {}).get(name, {}).get("pid"), name):
            raise MxspecError(f"lab host {name} is not running: `mxspec lab up` first")


def running(root: Path) -> dict | None:
    """The canary running in the lab (its split and the state kept at start), or None."""
    lab = running_lab(root)
    path = _state_file(lab)
    return _saved(path) if path.exists() else None


def _saved(path: Path) -> dict:
    try:
        saved = json.loads(path.read_text())
        Split(**saved["split"]), dict(saved["kept"])
        return saved
    except (ValueError, KeyError, TypeError):
        raise MxspecError(f"{path}: not the state a canary's start kept; remove it after putting the hosts' nftables "
                          f"table {TABLE}, rule priority {RULE_PRIORITY} and routing table {ROUTE_TABLE} back by hand") from None


def start(root: Path, share: float, old: str = OLD_MX, new: str = NEW_MX) -> Split:
    require_root()
    if not 0 < share < 1:
        raise MxspecError(f"--share must be between 0 and 1 (exclusive), not {share:g}")
    lab = running_lab(root)
    _require_running(lab, [old, new])
    if _state_file(lab).exists():
        raise MxspecError(f"a canary already runs in the lab ({_state_file(lab)}): `mxspec lab canary stop` first")
    split = Split(share, old, new, lab.hosts[old].address, lab.hosts[new].address)
    for name in (old, new):
        taken = _run(lab, name, FREE, "checking that the canary's table, rule and routes are free").strip()
        if taken:
            raise MxspecError(f"lab host {name}: {'; '.join(taken.splitlines())}: not the canary's to use "
                              "(nothing was changed)")
    kept = {name: _run(lab, name, SNAPSHOT, "reading its network state") for name in (old, new)}
    old_interface, old_mac = _interface_towards(lab, old, split.new_address)
    new_interface, _ = _interface_towards(lab, new, split.old_address)
    _state_file(lab).write_text(json.dumps({"split": split.__dict__, "kept": kept}))
    try:
        _run(lab, new, _new_side(split, new_interface, old_mac), "marking the canary's connections")
        _run(lab, old, _old_side(split, old_interface), "splitting port 25")
    except MxspecError as failed:
        try:
            stop(root)
        except MxspecError as undoing:
            raise MxspecError(f"{failed}\nand undoing the start: {undoing}") from None
        raise
    return split


def stop(root: Path) -> list[str]:
    """Remove the split; return, per host, that its state is as before. Raises naming what is not."""
    require_root()
    lab = running_lab(root)
    path = _state_file(lab)
    if not path.exists():
        raise MxspecError("no canary runs in the lab")
    saved = _saved(path)
    split, kept = Split(**saved["split"]), saved["kept"]
    problems, done = [], []
    for name, undo in ((split.old, _undo_old()), (split.new, _undo_new())):
        _run(lab, name, undo + "; " + _put_back_sysctls(kept[name]), "removing the canary")
        now = _run(lab, name, SNAPSHOT, "reading its network state")
        if now == kept[name]:
            done.append(f"{name}: network and firewall state as before the canary")
        else:
            before, after = set(kept[name].splitlines()), set(now.splitlines())
            problems.append(f"{name}: not as before the canary: "
                            + "; ".join([f"gone: {line}" for line in sorted(before - after)][:5]
                                        + [f"new: {line}" for line in sorted(after - before)][:5]))
    if problems:
        kept_at = path.with_name("canary.failed.json")
        path.rename(kept_at)  # the state kept at start, to look at and put back by hand
        raise MxspecError("the canary stopped, but:\n" + "\n".join(f"  {p}" for p in problems)
                          + f"\n  the state kept at start: {kept_at}")
    path.unlink()
    return done


def status(root: Path) -> str:
    saved = running(root)
    if saved is None:
        return "no canary runs in the lab"
    split = Split(**saved["split"])
    lab = running_lab(root)
    counters = _run(lab, split.old, f"nft list chain ip {TABLE} split | grep -o 'packets [0-9]*' | head -n 1",
                    "reading the split's counter").strip()
    return f"canary: {split.describe()}; sent to the new MX so far: {counters.removeprefix('packets ') or 0} connections"


TRAFFIC_FROM = "lab-remote"  # the lab's outside host: the Internet's stand-in
OTHER_SENDER_DOMAINS = ["partner.test", "shop.test"]  # senders besides the remote domain: several, as real traffic has


def send_traffic(root: Path, count: int, seconds: float, clients: int = 8, seed: int = 1,
                 to: str = OLD_MX, timeout: float = 30) -> dict:
    """The traffic generator (lab/traffic.py) run on the lab's outside host against `to`'s port 25;
    what each connection saw, and the totals. Bounded by count and time, lab addresses only."""
    require_root()
    lab = running_lab(root)
    _require_running(lab, [TRAFFIC_FROM, to])
    script = Path(__file__).with_name("traffic.py").read_bytes()
    words = lab.hosts[TRAFFIC_FROM].vars  # the lab's vars, as every host's templates see them
    missing = [name for name in ("local_domains", "users", "remote_domain") if not words.get(name)]
    if missing:
        raise MxspecError(f"{lab.root / 'lab.yml'}: the traffic generator needs the lab's vars {', '.join(missing)}")
    bound = traffic.hard_stop(seconds, timeout)
    # `timeout` too: should the generator itself ever hang, the host ends it, not only this side's ssh.
    args = ["timeout", "-k", "5", f"{bound + 10:.0f}", "python3", "-",
            "--target", lab.hosts[to].address, "--lab-network", str(lab.network),
            "--count", str(count), "--seconds", str(seconds), "--clients", str(clients), "--seed", str(seed),
            "--timeout", str(timeout), "--domains", *words["local_domains"], "--users", *words["users"],
            "--sender-domains", words["remote_domain"], *OTHER_SENDER_DOMAINS]
    with tempfile.TemporaryFile() as stdin:
        stdin.write(script)
        stdin.seek(0)
        result = access.on_host(ssh_config_path(lab), TRAFFIC_FROM, shlex.join(args), stdin=stdin, timeout=bound + 30)
    if result.returncode != 0:
        raise MxspecError(f"the traffic generator on {TRAFFIC_FROM} failed (exit {result.returncode}): "
                          f"{result.stderr.decode(errors='replace').strip()[-400:]}")
    try:
        return json.loads(result.stdout)
    except ValueError:
        raise MxspecError(f"the traffic generator on {TRAFFIC_FROM} printed no report: "
                          f"{result.stdout.decode(errors='replace').strip()[:200]!r}") from None


def answered_by(sent: dict) -> dict[str, int]:
    """How many connections each MX answered, by the name in its banner (the client only ever saw the old MX's address)."""
    counts: dict[str, int] = {}
    for connection in sent["connections"]:
        name = connection["banner"].split()[0] if connection["banner"] else "(no answer)"
        counts[name] = counts.get(name, 0) + 1
    return counts
