"""Benchmark: what `mxspec discover` costs each host, in commands (round trips) and their time.

Discovery reads a host in a bounded number of read-only commands, whatever the size of its
configuration: the connection's first check, one command for its facts (the diff's survey and the
rest: services, socket owners, resolver, syslog, the DKIM signer), one for its map sources, and one
`postmap -q -` per transport parameter for its routes. This prints, per host, the commands each
took, their time on the host's connection, the routes read, and the draft's size and TODO values:
printed, not asserted (`tests/test_discover.py` bounds the counts).

    python3 bench/discover_cost.py [--estates old-mx,new-mx] [--inventories inventories]

Needs the lab (`mxspec lab up`). Reads the hosts only; writes nothing on them and nothing here.
"""

import argparse
import sys
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from mxspec.diff import draft  # noqa: E402
from mxspec.diff.discover import discover  # noqa: E402
from mxspec.estate import contract  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--estates", default="old-mx,new-mx")
    parser.add_argument("--inventories", default=str(PROJECT / "inventories"))
    args = parser.parse_args()
    print(f"{'estate':<8} {'host':<14} {'commands':>8} {'seconds':>8} {'routes':>6}")
    for estate in args.estates.split(","):
        started = time.monotonic()
        found = discover(args.inventories, [estate], progress=lambda line: None)
        wall = time.monotonic() - started
        for host, commands in found.commands.items():
            routes = found.draft.host_vars.get(host, {}).get("discovered", {}).get("routes", {})
            print(f"{estate:<8} {host:<14} {commands:>8} {found.seconds[host]:>8.2f} {len(routes):>6}")
        text = draft.write(found.draft, [])
        todos = sum(1 for line in text.splitlines() if f'"{contract.TODO}' in line)
        print(f"{estate}: {sum(found.commands.values())} commands for {len(found.commands)} hosts, {wall:.1f} s "
              f"wall (DNS included); draft of {len(text.splitlines())} lines, {todos} TODO values"
              + (f"; not read: {found.unreachable}" if found.unreachable else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
