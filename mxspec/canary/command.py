"""`mxspec canary --old OLD --new NEW --since WHEN [--window DURATION]`: judge a canary from both estates' logs.

Reads every host's mail log (read-only), turns it into attempts (per connection, per message),
judges the new estate against the old (judge.py), prints the table and writes canary.json,
canary.html and canary.txt. Exit 0 for GO, 1 for ROLLBACK, 3 for HOLD, 2 when it cannot judge.
"""

import ipaddress
import math
import re
import sys
import time
from datetime import datetime
from pathlib import Path

from mxspec.canary import collect, judge, render
from mxspec.canary.attempts import NEW, OLD, Attempt, Window
from mxspec.core import yamlfile
from mxspec.core.errors import MxspecError
from mxspec.estate.inventory import Estate, load_estates
from mxspec.transport.connection import ConnectionPool
from mxspec.transport.openssh import resolve

EXIT = {judge.GO: 0, judge.ROLLBACK: 1, judge.HOLD: 3}
DURATION = re.compile(r"^(?P<number>\d+(?:\.\d+)?)(?P<unit>[smhd]?)$")
UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def seconds(text: str, option: str) -> float:
    """`600`, `600s`, `10m`, `2h`, `1d` as seconds."""
    match = DURATION.match(text.strip())
    if not match or float(match["number"]) <= 0:
        raise MxspecError(f"{option} {text!r}: give a duration such as 600, 600s, 10m, 2h or 1d")
    return float(match["number"]) * UNIT_SECONDS[match["unit"]]


def moment(text: str, now: float) -> float:
    """`--since`: `@EPOCH`, an ISO 8601 time (without a zone: this machine's local time), or a duration ago
    (`30m`, `2h`; `-30m` too, given as `--since=-30m`)."""
    text = text.strip()
    if DURATION.match(text.removeprefix("-")):
        return now - seconds(text.removeprefix("-"), "--since")
    try:
        when = float(text[1:]) if text.startswith("@") else datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
        if math.isfinite(when):
            return when
    except ValueError:
        pass
    raise MxspecError(f"--since {text!r}: give a time such as 2026-12-05T14:00, 2026-12-05T14:00:00+00:00, "
                      "@1764943200, or how long ago: 30m, 2h")


def _line(mapping: dict, key: str) -> int:
    """The line of a key in the policy file (yamlfile's mappings know it)."""
    return getattr(mapping, "key_lines", {}).get(key, 0)


def _tolerance(path: str, line: int, name: str, value: object) -> judge.ShareTolerance | judge.DelayTolerance:
    """`{points: 0.05}` (a share: five percentage points) or `{ratio: 1.5, seconds: 2}` (a delay)."""
    try:
        if isinstance(value, dict) and set(value) == {"points"} and 0 < float(value["points"]) <= 1:
            return judge.ShareTolerance(float(value["points"]))
        if (isinstance(value, dict) and set(value) == {"ratio", "seconds"} and float(value["ratio"]) >= 1
                and 0 <= float(value["seconds"]) < math.inf):
            return judge.DelayTolerance(float(value["ratio"]), float(value["seconds"]))
    except (TypeError, ValueError):
        pass  # said below, with the forms a tolerance takes
    raise MxspecError(f"{path}:{line}: the tolerance of {name!r} is {{points: P}} for a share (0 < P <= 1; 0.05: five "
                      "percentage points) or {ratio: R, seconds: S} for a delay (R >= 1, S >= 0)")


def load_policy(path: str | None) -> judge.Policy:
    """The operator's canary policy (YAML): tolerances, min_events, alpha, and the differences accepted."""
    try:
        data = yamlfile.load(path) if path else None
    except OSError as error:  # a folder, a file not readable
        raise MxspecError(f"{path}: cannot read it ({error.strerror})") from None
    if data is None:
        return judge.Policy()
    if not isinstance(data, dict):
        raise MxspecError(f"{path}: a canary policy is a mapping (tolerances, accepted, min_events, alpha)")
    known = {"tolerances", "accepted", "min_events", "alpha"}
    for key in data:
        if key not in known:
            raise MxspecError(f"{path}:{_line(data, key)}: unknown key '{key}'; a canary policy has "
                              + ", ".join(sorted(known)))
    tolerances = data.get("tolerances") or {}
    accepted = data.get("accepted") or {}
    for key, value in (("tolerances", tolerances), ("accepted", accepted)):
        if not isinstance(value, dict):
            raise MxspecError(f"{path}:{_line(data, key)}: '{key}' is a mapping of metric names")
    try:
        return judge.Policy(
            tolerances={str(name): _tolerance(str(path), _line(tolerances, name), str(name), value)
                        for name, value in tolerances.items()},
            accepted={str(name): str(why) for name, why in accepted.items()},
            min_events=int(data.get("min_events", judge.Policy.min_events)),
            alpha=float(data.get("alpha", judge.Policy.alpha)))
    except (TypeError, ValueError) as error:
        raise MxspecError(f"{path}: {error}") from None
    except MxspecError as error:
        raise MxspecError(f"{path}: {error}") from None


def door_addresses(estate: Estate) -> set[str]:
    """The addresses the estate's inbound MXs are reached at: a connection on the new side from one of
    the old's would mean the split rewrote the client's address (SNAT)."""
    doors = collect.doors(estate)
    return ({resolve(host.target, host.vars.get("mxspec_ssh_config")) for host in doors}
            | {str(host.vars[name]) for host in doors for name in ("ipv6_address", "smtp_address") if host.vars.get(name)})


def path_facts(attempts: list[Attempt], old_doors: set[str]) -> dict:
    """What shows that the replies reached the clients through the old MX: the new side saw the clients'
    own addresses, and its connections got past the greeting (without a way back they stall at connect)."""
    new = [attempt for attempt in attempts if attempt.side == NEW]
    old = [attempt for attempt in attempts if attempt.side == OLD]
    return {"new_connections": len(new),
            "new_from_old_mx_address": sum(attempt.client in old_doors for attempt in new),
            "new_past_greeting": sum(attempt.completed for attempt in new),
            "old_connections": len(old),
            "old_past_greeting": sum(attempt.completed for attempt in old)}


def networks(texts: list[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    try:
        return [ipaddress.ip_network(text, strict=False) for text in texts]
    except ValueError as error:
        raise MxspecError(f"--exclude-client: {error} (give an address or a network: 192.0.2.7, 192.0.2.0/24)") from None


def _excluded(client: str, networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    try:
        address = ipaddress.ip_address(client)
    except ValueError:
        return False  # `unknown[unknown]`: Postfix could not tell; no network holds it
    return any(address in network for network in networks)


def canary(inventories: str, old_name: str, new_name: str, window: Window, share: float | None,
           policy: judge.Policy, vault_password_file: str | None = None, connect_timeout: float = 10,
           command_timeout: float = 60, excluded: list[str] | None = None,
           split_host: str | None = None) -> tuple[judge.Verdict, dict]:
    old, new = load_estates(inventories, [old_name, new_name], vault_password_file)
    old_doors = [host.name for host in collect.doors(old)]
    if split_host and split_host not in old_doors:
        raise MxspecError(f"--split-host {split_host}: not an inbound MX of {old.name} (its inbound MXs: "
                          f"{', '.join(old_doors) or 'none'})")
    pool = ConnectionPool(connect_timeout, command_timeout)
    progress = lambda line: print(line, file=sys.stderr)  # noqa: E731 - one line, where it is used
    try:
        attempts = (collect.estate_attempts(pool, old, OLD, window, progress)
                    + collect.estate_attempts(pool, new, NEW, window, progress))
    finally:
        pool.close()
    # Clients that are not the canary's traffic (monitoring, probes): left out on both sides.
    left_out = networks(excluded or [])
    attempts = [attempt for attempt in attempts if not _excluded(attempt.client, left_out)]
    verdict = judge.judge(attempts, share, policy, split_host)
    return verdict, {"old": old.name, "new": new.name, "window": {"since": window.since, "until": window.until},
                     "excluded_clients": [str(network) for network in left_out],
                     "path": path_facts(attempts, door_addresses(old))}


def run(old: str, new: str, inventories: str, since: str, window_text: str | None, share: float | None,
        policy_file: str | None, out: str, vault_password_file: str | None = None,
        connect_timeout: float = 10, command_timeout: float = 60, excluded: list[str] | None = None,
        split_host: str | None = None) -> int:
    if old == new:
        raise MxspecError(f"the old and the new estate are both '{old}': give two estates")
    now = time.time()
    start = moment(since, now)
    end = start + seconds(window_text, "--window") if window_text else now
    if start >= now:
        raise MxspecError(f"--since {since!r} is not in the past")
    if share is not None and not 0 < share < 1:
        raise MxspecError(f"--share must be between 0 and 1 (exclusive), not {share:g}")
    policy = load_policy(policy_file)
    networks(excluded or [])  # said before any host is read
    window = Window(start, min(end, now))
    print(f"[mxspec] canary {old} -> {new}: connections from {window.describe()}", file=sys.stderr)
    verdict, context = canary(inventories, old, new, window, share, policy, vault_password_file,
                              connect_timeout, command_timeout, excluded, split_host)
    try:
        written = render.write_all(verdict, Path(out), context)
    except OSError as error:
        raise MxspecError(f"cannot write the canary's report to {out}: {error.strerror}") from None
    print(render.table(verdict))
    print(f"  canary report: {written['html']} (.json, .txt)")
    return EXIT[verdict.decision]
