"""Benchmark: a run of the new estate with its DNS dead, failing fast against the behaviour before it.

Two faults on the lab's DNS host, each injected, measured, and healed (`mxspec lab heal lab-dns`
puts its configuration back from the copy kept at boot and starts unbound again):
  - silent: unbound drops every query to the new estate's DNS address (10.213.0.3) without a word,
    so every probe of it waits its whole bound;
  - stopped: unbound stopped, so the hosts' own mail is deferred (their resolver gets no answer).
For each, the new estate (`pytest --hosts=new-mx --mx-timeout=BOUND`) is run by this checkout and
by the checkout before failing fast (BASE, from git, run from a temporary worktree): wall time,
failures, and whether both fail the same scenarios. The target: within about two bounds of the
slowest probe, instead of one bound per probe.

    bin/python bench/dead_dependency.py [--base COMMIT] [--bound 10]

Needs the lab up; never starts or stops it. Changes lab-dns for the duration of each run only.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
SSH_CONFIG = "/var/lib/mxspec-lab/run/ssh_config"
DNS_CONF = "/etc/unbound/unbound.conf.d/lab.conf"
FAULTS = {
    "silent": f"sed -i 's/interface-action: 10.213.0.3 allow/interface-action: 10.213.0.3 deny/' {DNS_CONF} "
              "&& systemctl restart unbound",
    "stopped": "systemctl stop unbound",
}
NEW_HOSTS = ("new-mx-in-1", "new-mx-in-2", "new-router-1", "new-router-2", "new-out-1")
# The commit before failing fast: DNS and SMTP probes wait out every bound, deliveries their whole wait.
BASE = "4b8aa40~1"


def on_dns_host(command: str) -> None:
    subprocess.run(["ssh", "-F", SSH_CONFIG, "lab-dns", command], check=True, timeout=60, capture_output=True)


def heal() -> None:
    """lab-dns as at boot; the probes the hosts deferred meanwhile sent on now, not at Postfix's next retry."""
    done = subprocess.run([sys.executable, "-m", "mxspec.cli", "lab", "heal", "lab-dns"], cwd=PROJECT,
                          capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        sys.exit(f"`mxspec lab heal lab-dns` failed: {done.stdout}{done.stderr}")
    for host in NEW_HOSTS:
        subprocess.run(["ssh", "-F", SSH_CONFIG, host, "postqueue -f"], timeout=60, capture_output=True)


def run(checkout: Path, bound: int) -> tuple[float, set[str], int]:
    """The new estate from `checkout`: (wall, the scenarios that failed, exit status)."""
    with tempfile.TemporaryDirectory() as directory:
        results = Path(directory) / "results.json"
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "pytest", "--hosts=new-mx", f"--mx-timeout={bound}",
                               f"--mx-results={results}", "-p", "no:cacheprovider", "-q"], cwd=checkout,
                              env={**os.environ, "PYTHONPATH": str(checkout)}, capture_output=True, text=True,
                              timeout=3600, stdin=subprocess.DEVNULL)
        wall = time.monotonic() - started
        if not results.exists():
            sys.exit(f"no results from {checkout}: {done.stdout[-2000:]}{done.stderr[-2000:]}")
        failed = {f"{r['scenario']} [{r['target']}]" for r in json.loads(results.read_text())["results"]
                  if r["outcome"] == "failed"}
    return wall, failed, done.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", default=BASE, help=f"the commit to compare with (default {BASE})")
    parser.add_argument("--bound", type=int, default=10, help="--mx-timeout for both runs (default 10)")
    args = parser.parse_args()
    if subprocess.run([sys.executable, "-m", "mxspec.cli", "lab", "status"], cwd=PROJECT,
                      capture_output=True).returncode != 0:
        sys.exit("bench/dead_dependency.py: the lab is not up (`mxspec lab status`)")
    with tempfile.TemporaryDirectory(prefix="mxspec-base-") as base:
        subprocess.run(["git", "worktree", "add", "--detach", base, args.base], cwd=PROJECT, check=True,
                       capture_output=True)
        try:
            for fault, inject in FAULTS.items():
                rows = {}
                for label, checkout in (("failing fast", PROJECT), (f"before ({args.base})", Path(base))):
                    on_dns_host(inject)
                    try:
                        rows[label] = run(checkout, args.bound)
                    finally:
                        heal()
                print(f"\nDNS {fault}, new estate, --mx-timeout={args.bound}:")
                for label, (wall, failed, code) in rows.items():
                    print(f"  {label:24} wall {wall:7.1f} s = {wall / args.bound:5.1f} bounds, "
                          f"{len(failed)} scenarios failed, exit {code}")
                (fast, fast_failed, _), (slow, slow_failed, _) = rows.values()
                print(f"  ratio before / failing fast: {slow / fast:.1f}x; the same scenarios failed: "
                      f"{'yes' if fast_failed == slow_failed else 'no'}")
                for name in sorted(fast_failed ^ slow_failed):
                    print(f"    only {'failing fast' if name in fast_failed else 'before'}: {name}")
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", base], cwd=PROJECT, capture_output=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
