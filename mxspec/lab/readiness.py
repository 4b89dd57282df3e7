"""Waiting until lab hosts really answer: each role's services report running, not a fixed sleep."""

import subprocess
import time
from pathlib import Path

from mxspec.core.errors import MxspecError
from mxspec.core.waiting import poll
from mxspec.lab.spec import Lab, LabHost
from mxspec.transport import openssh


def services_of(lab: Lab, host: LabHost) -> list[str]:
    ready = lab.ready
    names = []
    for role in host.built_from:
        for service in (ready.get(role) or {}).get("services", []):
            if service not in names:
                names.append(service)
    return names


def _check_command(lab: Lab, host: LabHost) -> str:
    checks = [f"lab-service status {name} >/dev/null 2>&1 || {{ echo {name}; fail=1; }}"
              for name in services_of(lab, host)]
    for role in host.built_from:
        for command in (lab.ready.get(role) or {}).get("commands", []):
            checks.append(f"({command}) >/dev/null 2>&1 || {{ echo '{command}'; fail=1; }}")
    return "fail=0; " + "; ".join(checks) + "; exit $fail"


UNREACHABLE = "not reachable over SSH"


def not_ready(lab: Lab, ssh_config: Path, name: str) -> str:
    """Why the host is not ready yet ('' when it is): what it still waits for, or that SSH fails."""
    try:
        result = subprocess.run(openssh.command(ssh_config, name, _check_command(lab, lab.hosts[name])),
                                capture_output=True, text=True, timeout=15, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return "SSH did not answer within 15 s"
    if result.returncode == 0:
        return ""
    if result.returncode == 255:
        return UNREACHABLE
    return "waiting for: " + ", ".join(result.stdout.split("\n")).strip(", ")


def wait(lab: Lab, ssh_config: Path, hosts: list[str], timeout: float) -> dict[str, float]:
    """Poll the hosts until all their checks pass; seconds to ready per host."""
    started = time.monotonic()
    pending = {name: UNREACHABLE for name in hosts}
    ready: dict[str, float] = {}

    def all_ready() -> bool | None:
        for name in list(pending):
            why = not_ready(lab, ssh_config, name)
            if why:
                pending[name] = why
            else:
                ready[name] = time.monotonic() - started
                del pending[name]
        return None if pending else True

    if not poll(timeout, all_ready):
        detail = "\n".join(f"  {name}: {why}" for name, why in pending.items())
        raise MxspecError(f"lab hosts not ready after {timeout:g} s:\n{detail}\n"
                          f"(consoles: {ssh_config.parent / 'console'}/HOST.log; "
                          "`mxspec lab ssh HOST` to look inside)")
    return ready
