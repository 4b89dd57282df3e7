"""Each lab host's known-good configuration, and putting a host back to it.

Fault cases and change scenarios edit a lab host's configuration and undo the edit. A backup
taken just before each edit would copy whatever an earlier, failed undo left behind, and the
"restore" would then put a broken file back. So the known-good copy is taken once, right after
the host booted and answered ready (`mxspec lab up`), kept on this machine rather than on the
host (where a fault could reach it), and never replaced while the host runs: only a new boot,
from the image, takes it again — or, for a host booted bare, the playbook that configured it
(`mxspec premerge`, once its converge succeeded twice: that configuration, not the bare one, is
the host's known-good state). Every repair puts files back from it and is checked against it.

The paths come from lab.yml (`baseline:`): each file's content (SHA-256), mode, owner and, for
a symbolic link, its target. Compiled Postfix maps are left out: a repair makes them again.
"""

import json
import shlex
from pathlib import Path

from mxspec.core.errors import MxspecError
from mxspec.lab import access
from mxspec.lab.spec import Lab

COMPILED = ("*.db", "*.lmdb", "*.cdb")  # made from their source by postmap; bytes differ per build


def _find(lab: Lab, action: str) -> str:
    """A `find` over the baseline paths that prints `action` for each file and link kept."""
    skip = " ".join(f"! -name {shlex.quote(pattern)}" for pattern in COMPILED)
    paths = " ".join(shlex.quote(path) for path in lab.baseline)
    return f"find {paths} \\( -type f -o -type l \\) {skip} {action} 2>/dev/null"


def _manifest_command(lab: Lab) -> str:
    return (_find(lab, "-printf '%y\\t%p\\t%m %u:%g\\t%l\\n'") + "; " +
            _find(lab, "-type f -exec sha256sum {} +") + "; true")


def _parse_manifest(text: str) -> dict[str, str]:
    entries: dict[str, str] = {}
    hashes: dict[str, str] = {}
    for line in text.splitlines():
        if "\t" in line:
            kind, path, mode, target = (line.split("\t") + ["", "", ""])[:4]
            entries[path] = f"{mode} -> {target}" if kind == "l" else mode
        elif line.strip():
            digest, _, path = line.partition("  ")
            hashes[path] = digest
    return {path: f"{what} sha256:{hashes[path]}" if path in hashes else what for path, what in entries.items()}


def _dir(lab: Lab) -> Path:
    return lab.state_dir / "run" / "baseline"


def kept(lab: Lab, name: str) -> bool:
    return (_dir(lab) / f"{name}.json").exists() and (_dir(lab) / f"{name}.tar").exists()


def forget(lab: Lab, name: str) -> None:
    """The host's kept state is no longer its own (it is booted anew): gone before the boot, so that an
    `up` interrupted before the new one is taken boots the host again rather than trust the old one."""
    for suffix in (".json", ".tar"):
        (_dir(lab) / f"{name}{suffix}").unlink(missing_ok=True)


def _saved_manifest(lab: Lab, name: str) -> dict[str, str]:
    try:
        return json.loads((_dir(lab) / f"{name}.json").read_text())
    except (OSError, ValueError):
        raise MxspecError(f"lab host {name}: no known-good state was kept when it booted "
                          f"({_dir(lab) / (name + '.json')}); `mxspec lab down` and `mxspec lab up` boot it afresh") from None


def current(lab: Lab, ssh_config: Path, name: str) -> dict[str, str]:
    result = access.on_host(ssh_config, name, _manifest_command(lab))
    if result.returncode == 255:
        raise MxspecError(f"lab host {name}: not reachable over SSH: {result.stderr.decode(errors='replace').strip()}")
    return _parse_manifest(result.stdout.decode(errors="replace"))


def take(lab: Lab, ssh_config: Path, name: str) -> None:
    """Keep the host's configuration as it is now as its known-good state (right after boot, or after a
    bare host's playbook configured it)."""
    manifest = current(lab, ssh_config, name)
    members = " ".join(shlex.quote(path.lstrip("/")) for path in sorted(manifest))
    archive = access.on_host(ssh_config, name, f"cd / && tar -cf - --no-recursion {members}", timeout=120)
    if archive.returncode != 0:
        raise MxspecError(f"lab host {name}: could not copy its configuration: "
                          f"{archive.stderr.decode(errors='replace').strip()}")
    _dir(lab).mkdir(mode=0o700, parents=True, exist_ok=True)  # host configuration may hold credentials
    for path, content in ((_dir(lab) / f"{name}.tar", archive.stdout),
                          (_dir(lab) / f"{name}.json", json.dumps(manifest, indent=1, sort_keys=True).encode())):
        path.touch(mode=0o600)
        path.write_bytes(content)


def differences(lab: Lab, ssh_config: Path, name: str) -> dict[str, str]:
    """Paths that differ from the known-good state, each with what is wrong with it."""
    known = _saved_manifest(lab, name)
    now = current(lab, ssh_config, name)
    found = {}
    for path in sorted(set(known) | set(now)):
        if path not in now:
            found[path] = "missing"
        elif path not in known:
            found[path] = "not there at boot"
        elif known[path] != now[path]:
            found[path] = "changed"
    return found


def put_back(lab: Lab, ssh_config: Path, name: str, paths: list[str]) -> None:
    """The paths as they were at boot (removed if they were not there), then checked against it."""
    known = _saved_manifest(lab, name)
    kept = [path for path in paths if path in known]
    extra = [path for path in paths if path not in known]
    command = []
    if extra:
        command.append("rm -f -- " + " ".join(shlex.quote(path) for path in extra))
    if kept:  # unlink first, so a link that became a file (or the reverse) is replaced whole
        command.append("cd / && tar -xpf - --unlink-first " + " ".join(shlex.quote(p.lstrip("/")) for p in kept))
    if not command:
        return
    with open(_dir(lab) / f"{name}.tar", "rb") as archive:
        result = access.on_host(ssh_config, name, " && ".join(command), stdin=archive)
    if result.returncode != 0:
        raise MxspecError(f"lab host {name}: could not put back {', '.join(paths)}: "
                          f"{result.stderr.decode(errors='replace').strip()}")
    left = {path: why for path, why in differences(lab, ssh_config, name).items() if path in paths}
    if left:
        raise MxspecError(f"lab host {name}: still differs from its state at boot after being put back: "
                          + ", ".join(f"{path} ({why})" for path, why in left.items()))
