"""Waiting until lab hosts really answer: each role's services report running, not a fixed sleep."""

import subprocess
import time
from pathlib import Path

from mxspec.core.errors import MxspecError
from mxspec.lab.spec import Lab, LabHost


def services_of(lab: Lab, host: LabHost) -> list[str]:
    ready = lab.ready
    names = []
    for role in ["base", *host.roles]:
        for service in (ready.get(role) or {}).get("services", []):
            if service not in names:
                names.append(service)
    return names


def _check_command(lab: Lab, host: LabHost) -> str:
    checks = [f"lab-service status {name} >/dev/null 2>&1 || {{ echo {name}; fail=1; }}"
              for name in services_of(lab, host)]
    for role in ["base", *host.roles]:
        for command in (lab.ready.get(role) or {}).get("commands", []):
            checks.append(f"({command}) >/dev/null 2>&1 || {{ echo '{command}'; fail=1; }}")
    return "fail=0; " + "; ".join(checks) + "; exit $fail"


def wait(lab: Lab, ssh_config: Path, names: list[str], timeout: float) -> dict[str, float]:
    """Poll every host until all its checks pass; return seconds to ready per host."""
    started = time.monotonic()
    pending = {name: "not reachable over SSH yet" for name in lab.hosts}
    ready: dict[str, float] = {}
    while pending:
        for name in list(pending):
            host = lab.hosts[name]
            try:
                result = subprocess.run(["ssh", "-F", str(ssh_config), "-o", "ConnectTimeout=3",
                                         "-o", "BatchMode=yes", name, _check_command(lab, host)],
                                        capture_output=True, text=True, timeout=15, stdin=subprocess.DEVNULL)
            except subprocess.TimeoutExpired:
                pending[name] = "SSH did not answer within 15 s"
                continue
            if result.returncode == 0:
                ready[name] = time.monotonic() - started
                del pending[name]
            elif result.returncode == 255:
                pending[name] = "not reachable over SSH yet"
            else:
                pending[name] = "waiting for: " + ", ".join(result.stdout.split())
        if pending and time.monotonic() - started > timeout:
            detail = "\n".join(f"  {name}: {why}" for name, why in pending.items())
            raise MxspecError(f"lab hosts not ready after {timeout:g} s:\n{detail}\n"
                              f"(consoles: {ssh_config.parent / 'console'}/HOST.log; "
                              "`mxspec lab ssh HOST` to look inside)")
        if pending:
            time.sleep(1)
    return {name: seconds for name, seconds in ready.items() if name in names}
