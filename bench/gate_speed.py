"""Benchmark: the gate (old-mx against new-mx on the lab) in parallel, against its serial run and its floor.

Runs the gate's pytest command (`--hosts=old-mx,new-mx --mx-report=DIR`, as `bin/gate` does)
ROUNDS times serially (`--mx-parallel=1`) and ROUNDS times as mxspec runs it by default (hosts in
parallel), alternating. For each run: wall time, the client's CPU seconds (pytest, its workers,
the ssh processes: this script is their subreaper, so the daemonised ssh masters count too), the
lab hosts' CPU seconds (the containers' cgroup), and the machine floor = (client + hosts CPU) /
cores. On 2 cores the limit is CPU, not waiting: the floor is the least wall time the run's work
could take here. Prints each run, then the medians and the ratios the targets are stated in:
parallel wall within 1.3x of its floor, and at most 0.6x of the serial wall.

    bin/python bench/gate_speed.py [--rounds 3]

Needs the lab up (`mxspec lab up`); never starts or stops it; reads only (no --mx-change).
"""

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scale import (  # noqa: E402 - the same measures as the scale benchmark
    PROJECT,
    become_subreaper,
    bounded,
    children_cpu,
    host_cpu_seconds,
    lab_is_up,
    reap_adopted,
)


def gate(directory: Path, parallel: bool) -> tuple[float, float, float, int | None]:
    """One gate run: (wall, client CPU, hosts CPU, exit status)."""
    argv = [sys.executable, "-m", "pytest", "--hosts=old-mx,new-mx", f"--mx-report={directory}",
            "-p", "no:cacheprovider", "-q", *([] if parallel else ["--mx-parallel=1"])]
    client, hosts = children_cpu(), host_cpu_seconds()
    code, wall = bounded(argv, 600, directory / "run.log")
    reap_adopted(5)  # the ssh masters the run left to close themselves: their CPU is the run's too
    return wall, children_cpu() - client, host_cpu_seconds() - hosts, code


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="runs of each kind (default 3)")
    args = parser.parse_args()
    if not lab_is_up():
        print("bench/gate_speed.py: the lab is not up (`mxspec lab status`)", file=sys.stderr)
        return 2
    become_subreaper()
    cores = len(os.sched_getaffinity(0))
    runs: dict[str, list[tuple[float, float, float]]] = {"serial": [], "parallel": []}
    with tempfile.TemporaryDirectory(prefix="mxspec-gate-") as top:
        for n in range(args.rounds):
            for kind in ("serial", "parallel"):
                directory = Path(top) / f"{kind}-{n}"
                directory.mkdir()
                wall, client, hosts, code = gate(directory, kind == "parallel")
                floor = (client + hosts) / cores
                print(f"{kind:8} run {n + 1}: wall {wall:6.2f} s, client CPU {client:6.2f} s, hosts CPU {hosts:6.2f} s, "
                      f"floor {floor:6.2f} s, wall/floor {wall / floor:4.2f}, exit {code}", flush=True)
                if code not in (0, 1):
                    print(f"  the gate did not run: see {directory / 'run.log'}:\n"
                          + (directory / "run.log").read_text(errors="replace")[-2000:])
                    return 1
                runs[kind].append((wall, client, hosts))
    median = {kind: [statistics.median(values) for values in zip(*rows, strict=True)] for kind, rows in runs.items()}
    (serial_wall, serial_client, serial_hosts), (wall, client, hosts) = median["serial"], median["parallel"]
    floor = (client + hosts) / cores
    print(f"\n{cores} cores; medians of {args.rounds} runs each (cwd {PROJECT})")
    print(f"serial:   wall {serial_wall:6.2f} s, CPU client {serial_client:5.2f} + hosts {serial_hosts:5.2f} s")
    print(f"parallel: wall {wall:6.2f} s, CPU client {client:5.2f} + hosts {hosts:5.2f} s, floor {floor:5.2f} s")
    print(f"parallel wall / its floor: {wall / floor:.2f}   [target <= 1.3]")
    print(f"parallel wall / serial wall: {wall / serial_wall:.2f}   [target <= 0.6]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
