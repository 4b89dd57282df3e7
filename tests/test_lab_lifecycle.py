"""`mxspec lab down` leaves nothing behind, and `up` brings the same lab back."""

import subprocess
from pathlib import Path

from conftest import output, run_mxspec

STATE = Path("/var/lib/mxspec-lab")


def lab_leftovers() -> list[str]:
    left = []
    # Live containers only: an exited nspawn may linger a moment as a zombie without a command line.
    nspawn = subprocess.run(["pgrep", "-f", "systemd-nspawn .*--machine="], capture_output=True, text=True).stdout.split()
    if nspawn:
        left.append(f"systemd-nspawn processes {nspawn}")
    if subprocess.run(["ip", "link", "show", "mxlab0"], capture_output=True).returncode == 0:
        left.append("bridge mxlab0")
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    left += [f"interface {word}" for word in links.split() if word.startswith("vb-")]
    mounts = [line for line in Path("/proc/mounts").read_text().splitlines() if str(STATE) in line]
    left += [f"mount {line.split()[1]}" for line in mounts]
    for path in (STATE / "run", STATE / "hosts"):
        if path.exists():
            left.append(str(path))
    masters = subprocess.run(["pgrep", "-f", "ssh.*mxspec-lab/run/control"], capture_output=True, text=True).stdout
    if masters.split():
        left.append(f"ssh control masters {masters.split()}")
    return left


def test_down_leaves_nothing_and_up_brings_the_lab_back(lab):
    down = run_mxspec("lab", "down")
    assert down.returncode == 0, output(down)
    assert lab_leftovers() == []
    status = run_mxspec("lab", "status")
    assert status.returncode == 3 and " stopped " in status.stdout
    up = run_mxspec("lab", "up")
    assert up.returncode == 0, output(up)
    assert run_mxspec("lab", "status").returncode == 0
