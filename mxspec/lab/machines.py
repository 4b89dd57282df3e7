"""Lab hosts as containers: an overlay over the image, the host's role files, systemd-nspawn --boot.

Each host's changes live in its own overlay upper layer, so hosts share one cached image and a
host is rebuilt from its role files in a second. Hosts are cattle: `up` makes them anew from the
repo's role configuration, `down` throws them away.
"""

import os
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

from mxspec.core.errors import MxspecError
from mxspec.core.waiting import poll
from mxspec.lab.spec import Lab, LabHost, render
from mxspec.lab.system import run

TEMPLATE_SUFFIX = ".tmpl"
UNMOUNT_SECONDS = 10  # bound on unmounting a host's root filesystem (tried again every 0.2 s)


def host_dir(lab: Lab, host: LabHost) -> Path:
    return lab.state_dir / "hosts" / host.name


def root_of(lab: Lab, host: LabHost) -> Path:
    return host_dir(lab, host) / "root"


def is_mounted(path: Path) -> bool:
    return os.path.ismount(path)


def prepare(lab: Lab, host: LabHost, image_root: Path, extra_files: dict[str, tuple[bytes, int]]) -> None:
    """Make the host's root filesystem: overlay on the image, network, role files, role setup."""
    discard(lab, host)
    base = host_dir(lab, host)
    for part in ("upper", "work", "root"):
        (base / part).mkdir(parents=True)
    root = base / "root"
    run(["mount", "-t", "overlay", "overlay", "-o",
         f"lowerdir={image_root},upperdir={base / 'upper'},workdir={base / 'work'}", str(root)],
        f"mounting the root filesystem of {host.name} (overlayfs)")
    (root / "etc/machine-id").write_text(uuid.uuid4().hex + "\n")
    _write_network(host, root)
    for role in host.built_from:
        _copy_role_files(lab, host, role, root)
    for relpath, (content, mode) in extra_files.items():
        target = root / relpath.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        target.chmod(mode)
    for role in host.built_from:
        script = lab.role_dir(role) / "setup.sh"
        if script.exists():
            text = render(lab, script.read_text(), host.vars, str(script.relative_to(lab.root)))
            run(["chroot", str(root), "/bin/sh", "-eu", "-c", text, "setup", host.image.init],
                f"setting up role {role} on {host.name} ({script.relative_to(lab.root)})",
                env={"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C"})


def _write_network(host: LabHost, root: Path) -> None:
    # A static address and no default route: the host reaches the lab bridge and nothing else.
    prefix = host.vars["prefixlen"]
    if host.image.init == "systemd":
        path = root / "etc/systemd/network/10-host0.network"
        path.parent.mkdir(parents=True, exist_ok=True)
        addresses = "".join(f"Address={a}/{prefix}\n" for a in host.vars["addresses"])
        path.write_text(f"[Match]\nName=host0\n\n[Network]\n{addresses}LinkLocalAddressing=no\nIPv6AcceptRA=no\n"
                        + _ipv6_address_section(host))
        wants = root / "etc/systemd/system/multi-user.target.wants"
        wants.mkdir(parents=True, exist_ok=True)
        link = wants / "systemd-networkd.service"
        if not link.exists():
            link.symlink_to("/lib/systemd/system/systemd-networkd.service")
    else:
        extra = "".join(f"    up ip addr add {a}/{prefix} dev host0\n" for a in host.extra_addresses)
        if host.ipv6_address:
            extra += f"    up ip -6 addr add {host.ipv6_address}/{host.vars['ipv6_prefixlen']} dev host0 nodad\n"
        (root / "etc/network/interfaces").write_text(
            "auto lo\niface lo inet loopback\n\n"
            f"auto host0\niface host0 inet static\n    address {host.address}/{prefix}\n{extra}")


def _ipv6_address_section(host: LabHost) -> str:
    """The host's IPv6 address, where lab.yml gives it one: static, on the bridge only (no router
    advertisements are taken, no link-local address is made, no route leads off the bridge), and
    usable at once: the lab's addresses are unique by construction, so no duplicate detection."""
    if not host.ipv6_address:
        return ""
    return (f"\n[Address]\nAddress={host.ipv6_address}/{host.vars['ipv6_prefixlen']}\n"
            "DuplicateAddressDetection=none\n")


def _copy_role_files(lab: Lab, host: LabHost, role: str, root: Path) -> None:
    files = lab.role_dir(role) / "files"
    if not files.is_dir():
        return
    for source in sorted(files.rglob("*")):
        if source.is_dir():
            continue
        relative = source.relative_to(files)
        target = root / relative
        if source.name.endswith(TEMPLATE_SUFFIX):
            target = target.with_name(source.name[: -len(TEMPLATE_SUFFIX)])
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_symlink() or target.exists():
            target.unlink()
        if source.name.endswith(TEMPLATE_SUFFIX):
            target.write_text(render(lab, source.read_text(), host.vars, str(source.relative_to(lab.root))))
        else:
            shutil.copyfile(source, target)
        target.chmod(source.stat().st_mode & 0o777)


def boot(lab: Lab, host: LabHost, console: Path) -> int:
    args = ["systemd-nspawn", "-D", str(root_of(lab, host)), "--boot", "--register=no", "--keep-unit",
            f"--machine={host.name}", f"--network-bridge={lab.bridge}", "--resolv-conf=off",
            "--timezone=off", "--console=pipe"]
    if host.image.init == "sysv":
        args.append("--kill-signal=SIGINT")  # nspawn's SIGTERM becomes ctrl-alt-del: a clean halt
    console.parent.mkdir(parents=True, exist_ok=True)
    with open(console, "wb") as out:
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    time.sleep(0.3)
    if proc.poll() is not None:
        tail = console.read_text(errors="replace").strip().splitlines()[-10:]
        raise MxspecError(f"host {host.name} did not boot (systemd-nspawn exit {proc.returncode}):\n"
                          + "\n".join(tail))
    return proc.pid


def is_running(pid: int | None, name: str) -> bool:
    if not pid:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"systemd-nspawn" in cmdline[0] and f"--machine={name}".encode() in cmdline


def request_stop(name: str, pid: int | None) -> None:
    """Ask the container to halt (nspawn turns SIGTERM into a clean shutdown of its init)."""
    if pid and is_running(pid, name):
        os.kill(pid, signal.SIGTERM)


def stop(name: str, pid: int | None, timeout: float = 30, requested: bool = False) -> None:
    """Halt the container cleanly; after the timeout, kill it.

    A second SIGTERM makes nspawn kill the container at once, so it is sent only once.
    """
    if not pid or not is_running(pid, name):
        return
    if not requested:
        request_stop(name, pid)
    if poll(timeout, lambda: True if not is_running(pid, name) else None, interval=0.2):
        return
    os.killpg(pid, signal.SIGKILL)
    time.sleep(0.5)


def discard(lab: Lab, host: LabHost) -> None:
    """Unmount and delete the host's root filesystem layers (the image is kept)."""
    base = host_dir(lab, host)
    root = base / "root"

    def unmounted() -> bool | None:
        if is_mounted(root):
            subprocess.run(["umount", str(root)], capture_output=True)
        return None if is_mounted(root) else True

    if not poll(UNMOUNT_SECONDS, unmounted, interval=0.2):
        raise MxspecError(f"cannot unmount {root}: something still uses it")
    shutil.rmtree(base, ignore_errors=True)
