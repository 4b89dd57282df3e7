"""The built-in lab: an old and a new mail estate booted as systemd-nspawn containers.

Owns: the lab's description and life cycle (`spec`, `commands`, `images`, `machines`, `network`,
`access`, `readiness`, `system`) and, in `builtin/`, the lab itself (`lab.yml`, `roles/`,
`templates/`), shipped in the wheel.
May import: `mxspec.transport` (for the OpenSSH command lines), `mxspec.core`. It stands beside
the test layers, not under them: nothing but the `mxspec` command imports it.
"""

from pathlib import Path

BUILTIN = Path(__file__).resolve().parent / "builtin"  # the built-in lab: lab.yml, roles/, templates/
