"""Root filesystem images built with mmdebstrap, cached by recipe: rebuilt only when it changes.

A build goes to a temporary folder and is renamed into place when complete, so an interrupted
build never leaves a half image that a later `up` would boot.
"""

import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from mxspec.core.errors import MxspecError
from mxspec.lab.spec import Image, Lab

# What every image needs besides its role packages: reachable over SSH, inspectable by testinfra.
BASE_PACKAGES = ["openssh-server", "iproute2", "procps", "ca-certificates", "python3"]
INIT_PACKAGES = {"systemd": ["systemd", "systemd-sysv", "dbus"], "sysv": ["sysvinit-core", "ifupdown"]}

# SysV guest under nspawn: no gettys on absent consoles, and ctrl-alt-del (nspawn's SIGINT) halts.
SYSV_HOOK = ("sed -i -e 's/^\\([0-9]*:[0-9]*:respawn:\\/sbin\\/getty\\)/#\\1/' "
             "-e 's/^ca:.*/ca:12345:ctrlaltdel:\\/sbin\\/shutdown -h now/' \"$1/etc/inittab\"")


def image_dir(lab: Lab, image: Image) -> Path:
    return lab.state_dir / "images" / f"{image.name}-{image.recipe_hash(lab.suite)}"


def build_images(lab: Lab, log: Callable[[str], None]) -> dict[str, Path]:
    """Build every missing image (in parallel); return image name -> root filesystem."""
    wanted = {image.name: image for image in {h.image.name: h.image for h in lab.hosts.values()}.values()}
    result, running = {}, []
    for image in wanted.values():
        target = image_dir(lab, image)
        result[image.name] = target
        if target.is_dir():
            continue
        if image.init not in INIT_PACKAGES:
            raise MxspecError(f"image '{image.name}': init must be one of {', '.join(INIT_PACKAGES)}")
        partial = target.with_name(target.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.parent.mkdir(parents=True, exist_ok=True)
        packages = sorted(set(BASE_PACKAGES + INIT_PACKAGES[image.init] + image.packages))
        args = ["mmdebstrap", "--variant=apt", "--include=" + ",".join(packages)]
        if image.init == "sysv":
            args += ["--customize-hook=" + SYSV_HOOK]
        args += [lab.suite, str(partial)]
        log(f"building image {image.name} ({len(packages)} packages) ...")
        logfile = open(partial.with_suffix(".log"), "w")
        running.append((image, partial, target, logfile, time.monotonic(),
                        subprocess.Popen(args, stdout=logfile, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)))
    for image, partial, target, logfile, started, proc in running:
        proc.wait()
        logfile.close()
        if proc.returncode != 0:
            tail = Path(logfile.name).read_text(errors="replace").strip().splitlines()[-15:]
            shutil.rmtree(partial, ignore_errors=True)
            raise MxspecError(f"building image {image.name} failed (mmdebstrap exit {proc.returncode}):\n"
                              + "\n".join(tail))
        if image.init == "sysv" and (partial / "lib/systemd/systemd").exists():
            shutil.rmtree(partial, ignore_errors=True)
            raise MxspecError(f"image {image.name} is meant to boot SysV init, but its packages pulled in "
                              "systemd (systemd-nspawn would boot that instead); add the alternative "
                              "the depending package accepts (e.g. rsyslog) to its package list")
        partial.rename(target)
        Path(logfile.name).unlink(missing_ok=True)
        log(f"built image {image.name} in {time.monotonic() - started:.0f} s")
    return result

