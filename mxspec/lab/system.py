"""The machine the lab runs on: root, tools, commands."""

import os
import shutil
import subprocess
from typing import Any

from mxspec.core.errors import MxspecError

# Debian package that provides each tool the lab needs.
TOOLS = {"mmdebstrap": "mmdebstrap", "systemd-nspawn": "systemd-container", "ip": "iproute2",
         "openssl": "openssl", "ssh": "openssh-client", "ssh-keygen": "openssh-client"}


def require_root() -> None:
    if os.geteuid() != 0:
        raise MxspecError("the lab needs root (it builds root filesystems, mounts overlays, "
                          "creates a bridge and boots containers): run it with sudo or as root")


def ensure_tools(install: bool = True) -> None:
    missing = sorted({pkg for tool, pkg in TOOLS.items() if shutil.which(tool) is None})
    if not missing:
        return
    if install and shutil.which("apt-get"):
        print(f"installing {', '.join(missing)} with apt-get ...", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for args in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *missing]):
            result = subprocess.run(args, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
            if result.returncode != 0:
                raise MxspecError(f"`{' '.join(args)}` failed:\n{result.stderr.strip()[-2000:]}")
        return
    raise MxspecError(f"the lab needs these Debian packages: {', '.join(missing)} "
                      "(install them with apt-get; this machine has no apt-get)")


def run(args: list[str], what: str, timeout: float = 600, **kwargs: Any) -> subprocess.CompletedProcess:
    """Run a command; on failure raise an error that says what was being done and why it failed."""
    try:
        result = subprocess.run(args, capture_output=True, timeout=timeout,
                                stdin=subprocess.DEVNULL, **{"text": True, **kwargs})
    except subprocess.TimeoutExpired:
        raise MxspecError(f"{what}: `{args[0]}` took longer than {timeout:g} s") from None
    except FileNotFoundError:
        raise MxspecError(f"{what}: `{args[0]}` is not installed") from None
    if result.returncode != 0:
        detail = result.stderr or result.stdout
        if isinstance(detail, bytes):
            detail = detail.decode(errors="replace")
        detail = detail.strip()[-3000:]
        raise MxspecError(f"{what}: `{' '.join(args[:4])}...` exited {result.returncode}:\n{detail}")
    return result
