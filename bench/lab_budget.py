"""Benchmark: the lab's budgets — from nothing to every host answering, disk, memory — in one run.

Builds the built-in lab from nothing in a fresh state directory (its own image cache; the real
one is left alone), then measures:
  - cold `up`: images built with mmdebstrap, every host booted and answering;
  - disk: images plus the hosts' writable layers;
  - memory: what the running lab's processes take (proportional set size, so pages shared
    between containers count once);
  - a second `up` (nothing to do), `down`, and a cached `up` (images kept, hosts made anew),
    each also as a ratio to the cold `up` of this same run.
Each measure is printed with its budget and the ratio to it (below 1.00 is within budget).

    python3 bench/lab_budget.py          # as root, with the built-in lab down (both use its bridge)
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
BUDGET_SECONDS = 6 * 60     # from nothing to every host answering, on 2 cores
BUDGET_DISK = 3 * 10**9
BUDGET_MEMORY = 2.5 * 10**9


def mxspec(state: Path, *args: str) -> float:
    """Runs `mxspec lab ARGS` with the bench's state directory; returns its wall time."""
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "mxspec.cli", "lab", *args], cwd=PROJECT,
                            env={**os.environ, "MXSPEC_LAB_DIR": str(state)}, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"`mxspec lab {' '.join(args)}` failed:\n{result.stdout}{result.stderr}")
    return time.monotonic() - started


def disk_bytes(path: Path) -> int:
    """Bytes on this filesystem only: the hosts' merged overlay mounts are not counted twice."""
    return int(subprocess.run(["du", "-sxb", str(path)], capture_output=True, text=True, check=True)
               .stdout.split()[0])


def lab_processes() -> list[int]:
    """Every systemd-nspawn of a lab host and all processes below it."""
    children: dict[int, list[int]] = {}
    roots = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
        if b"systemd-nspawn" in cmdline[0] and any(arg.startswith(b"--network-bridge=") for arg in cmdline):
            roots.append(int(entry.name))
    found, todo = [], list(roots)
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def memory_bytes() -> int:
    total = 0
    for pid in lab_processes():
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            pass  # the process ended meanwhile
    return total


def main() -> int:
    if os.geteuid() != 0:
        sys.exit("bench/lab_budget.py: run as root (the lab boots containers)")
    if subprocess.run([sys.executable, "-m", "mxspec.cli", "lab", "status"], cwd=PROJECT,
                      capture_output=True).returncode == 0:
        sys.exit("bench/lab_budget.py: the built-in lab is up; take it down first (mxspec lab down)")
    state = Path(tempfile.mkdtemp(prefix="mxspec-lab-bench-", dir="/var/tmp"))
    try:
        cold = mxspec(state, "up")
        time.sleep(10)  # let the services settle (ClamAV, rspamd) before reading memory
        memory = memory_bytes()
        processes = len(lab_processes())
        disk = disk_bytes(state)
        images = disk_bytes(state / "images")
        again = mxspec(state, "up")
        down = mxspec(state, "down")
        cached = mxspec(state, "up")
        mxspec(state, "down")
    finally:
        if subprocess.run([sys.executable, "-m", "mxspec.cli", "lab", "status"], cwd=PROJECT, capture_output=True,
                          env={**os.environ, "MXSPEC_LAB_DIR": str(state)}).returncode == 0:
            mxspec(state, "down")
        shutil.rmtree(state, ignore_errors=True)
    print(f"\nthe built-in lab on {os.cpu_count()} cores ({processes} lab processes at the memory reading)\n")
    print(f"{'measure':44} {'value':>10} {'budget':>10} {'ratio':>6}")
    rows = [("from nothing to every host answering (s)", cold, BUDGET_SECONDS),
            ("disk: images + host layers (GB)", disk / 1e9, BUDGET_DISK / 1e9),
            ("memory of the running lab, PSS (GB)", memory / 1e9, BUDGET_MEMORY / 1e9)]
    for name, value, budget in rows:
        print(f"{name:44} {value:10.2f} {budget:10.2f} {value / budget:6.2f}")
    print(f"\n  of the disk: images {images / 1e9:.2f} GB, host layers {(disk - images) / 1e9:.2f} GB")
    print(f"\n{'against the cold up of this run':44} {'seconds':>10} {'ratio':>17}")
    for name, seconds in (("up again (nothing to do)", again), ("down", down),
                          ("cached up (images kept, hosts made anew)", cached)):
        print(f"{name:44} {seconds:10.1f} {seconds / cold:17.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
