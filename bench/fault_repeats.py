"""Benchmark: the lab survives being exercised — fault cases run again and again on one lab.

Runs, on the built-in lab (brought up if it is not):
  - the five DNS fault cases (each restarts unbound to inject and again to restore, back to
    back: what once hit systemd's start limit) ROUNDS times in a row;
  - the whole tests/test_behaviour_faults.py FULL times in a row;
and after every round asks the lab whether anything had to be healed (`mxspec lab heal`): a
round that left the lab changed or a service down is a failure even if its tests passed.
Prints each round's result and wall time, and each round's time as a ratio to the first round
of its kind in this run (a lab that degrades gets slower round by round).

    python3 bench/fault_repeats.py [ROUNDS [FULL]]      # as root; defaults 10 and 2
"""

import subprocess
import sys
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
DNS_CASES = ("goes_to_the_estates_inbound_mxs or who_its_address_says or spf_names "
             "or verify_the_estates_dkim or dmarc_asks")


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=PROJECT, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)


def rounds(label: str, count: int, pytest_args: list[str]) -> bool:
    first = None
    ok = True
    for n in range(1, count + 1):
        started = time.monotonic()
        result = run("-m", "pytest", "tests/test_behaviour_faults.py", "-p", "no:cacheprovider", "-q", *pytest_args)
        seconds = time.monotonic() - started
        first = first or seconds
        summary = (result.stdout.strip().splitlines() or ["(no output)"])[-1]
        heal = run("-m", "mxspec.cli", "lab", "heal")
        healed = heal.stdout.strip()
        clean = heal.returncode == 0 and healed == "every host as it was at boot, and ready"
        ok = ok and result.returncode == 0 and clean
        print(f"{label} round {n:2}/{count}: {summary}; {seconds:6.1f} s (x{seconds / first:.2f} of round 1); "
              f"lab after it: {'clean' if clean else healed + heal.stderr.strip()}", flush=True)
    return ok


def main() -> int:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    full = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    up = run("-m", "mxspec.cli", "lab", "up")
    if up.returncode != 0:
        sys.exit(f"`mxspec lab up` failed:\n{up.stdout}{up.stderr}")
    ok = rounds("DNS fault cases", count, ["-k", DNS_CASES])
    ok = rounds("every fault case", full, []) and ok
    print("all rounds passed, the lab clean after each" if ok else "SOME ROUNDS FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
