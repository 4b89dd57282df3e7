"""Benchmark: the canary's judge on the lab, again and again — how often a healthy canary is called
anything but GO (false alarms), and how often a fault no static behaviour sees is caught.

Runs, on the built-in lab (brought up if it is not):
  - HEALTHY canaries: the split at P = 0.3, COUNT connections from the traffic generator (a new
    seed each run), then `mxspec canary` with the lab's policy (canary-policy.yml);
  - FAULTY canaries: the same, with the new inbound MX refusing mail from one sender domain
    (shop.test), put back after each run.
After each canary the split is stopped (its own check: both hosts' network state as before) and
the lab is asked whether anything needed healing. Prints each run's verdict, what drove it, the
observed share and the wall time (and as a ratio of the first run of its kind), then the totals:
false alarms among the healthy runs, detections among the faulty ones.

    python3 bench/canary_repeats.py [HEALTHY [FAULTY [COUNT]]]     # as root; defaults 10, 3, 600
"""

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
FAULT = "postconf -e 'smtpd_sender_restrictions = check_sender_access inline:{ shop.test=REJECT }' && postfix reload"


def mxspec(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mxspec.cli", *args], cwd=PROJECT, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)


def must(result: subprocess.CompletedProcess, what: str) -> subprocess.CompletedProcess:
    if result.returncode != 0:
        sys.exit(f"{what} failed:\n{result.stdout}{result.stderr}")
    return result


def one_canary(seed: int, count: int, out: Path) -> dict:
    time.sleep(1.5)  # the window starts after anything earlier (the logs' stamps are to the second)
    since = int(time.time())
    must(mxspec("lab", "canary", "start", "--share", "0.3"), "starting the canary")
    try:
        must(mxspec("lab", "traffic", "--count", str(count), "--seed", str(seed)), "the traffic generator")
    finally:
        must(mxspec("lab", "canary", "stop"), "stopping the canary")
    result = mxspec("canary", "--old", "old-mx", "--new", "new-mx", "--since", f"@{since}", "--share", "0.3",
                    "--policy", str(PROJECT / "canary-policy.yml"), "--out", str(out))
    if result.returncode not in (0, 1, 3):
        sys.exit(f"mxspec canary could not judge:\n{result.stdout}{result.stderr}")
    return json.loads((out / "canary.json").read_text())


def runs(label: str, how_many: int, count: int, seed_base: int, fault: bool, work: Path) -> list[str]:
    decisions, first = [], None
    for n in range(1, how_many + 1):
        started = time.monotonic()
        if fault:
            must(mxspec("lab", "ssh", "new-mx-in-1", FAULT), "injecting the fault")
        try:
            verdict = one_canary(seed_base + n, count, work / f"{label}-{n}")
        finally:
            if fault:
                must(mxspec("lab", "heal", "new-mx-in-1"), "putting new-mx-in-1 back")
        seconds = time.monotonic() - started
        first = first or seconds
        heal = mxspec("lab", "heal")
        clean = heal.returncode == 0 and heal.stdout.strip() == "every host as it was at boot, and ready"
        split = verdict.get("split") or {}
        drivers = "; ".join(r["subject"] for r in verdict["reasons"]) or "-"
        print(f"{label} {n:2}/{how_many}: {verdict['decision']:8} driven by: {drivers:40} share seen "
              f"{(split.get('observed') or 0):.3f} of {split.get('connections')}; {seconds:5.1f} s "
              f"(x{seconds / first:.2f} of run 1); lab after it: {'clean' if clean else heal.stdout + heal.stderr}",
              flush=True)
        decisions.append(verdict["decision"])
    return decisions


def main() -> int:
    healthy = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    faulty = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    count = int(sys.argv[3]) if len(sys.argv) > 3 else 600
    must(mxspec("lab", "up"), "`mxspec lab up`")
    with tempfile.TemporaryDirectory() as work:
        good = runs("healthy", healthy, count, 1000, False, Path(work))
        bad = runs("faulty ", faulty, count, 2000, True, Path(work))
    false_alarms = sum(decision != "GO" for decision in good)
    caught = sum(decision == "ROLLBACK" for decision in bad)
    print(f"healthy canaries: {healthy}, false alarms (not GO): {false_alarms} ({false_alarms / max(healthy, 1):.1%})")
    print(f"faulty canaries: {faulty}, caught (ROLLBACK): {caught}")
    return 0 if caught == faulty else 1


if __name__ == "__main__":
    sys.exit(main())
