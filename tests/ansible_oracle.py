"""ansible-core as the oracle: what it resolves and renders for an inventory, run locally.

Nothing is contacted: `ansible-inventory --list` only reads, and the playbook's one task is
`debug var=NAME` (an action that runs in the controller) for every host, with `connection: local`.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent
PLAY = """\
- hosts: all
  gather_facts: false
  connection: local
  tasks:
"""


def available() -> bool:
    return (BIN / "ansible-inventory").exists() or shutil.which("ansible-inventory") is not None


def _environment(workdir: Path) -> dict[str, str]:
    return {**os.environ, "ANSIBLE_HOME": str(workdir / "ansible-home"), "ANSIBLE_CONFIG": str(workdir / "none.cfg"),
            "ANSIBLE_LOCAL_TEMP": str(workdir / "tmp"), "ANSIBLE_NOCOLOR": "1", "ANSIBLE_STDOUT_CALLBACK": "minimal",
            "ANSIBLE_LOCALHOST_WARNING": "0", "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0"}


def _command(name: str) -> str:
    return str(BIN / name) if (BIN / name).exists() else name


def inventory_list(inventory: Path, workdir: Path) -> dict:
    result = subprocess.run([_command("ansible-inventory"), "-i", str(inventory), "--list"], cwd=workdir,
                            env=_environment(workdir), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def rendered(inventory: Path, names: list[str], workdir: Path) -> dict[str, dict]:
    """host -> {name: value as `debug var=NAME` shows it}, for the names each host defines."""
    playbook = workdir / "render.yml"
    playbook.write_text(PLAY + "".join(f"    - debug: {{var: {name}}}\n" for name in names))
    result = subprocess.run([_command("ansible-playbook"), "-i", str(inventory), str(playbook)], cwd=workdir,
                            env=_environment(workdir), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    found: dict[str, dict] = {}
    decoder = json.JSONDecoder()
    for match in re.finditer(r"^(\S+) \| SUCCESS => ", result.stdout, re.M):
        data, _ = decoder.raw_decode(result.stdout, match.end())
        values = found.setdefault(match.group(1), {})
        for name, value in data.items():
            if name != "changed" and value != "VARIABLE IS NOT DEFINED!":
                values[name] = value
    return found
