"""Credentials the lab makes once and keeps: the SSH key, the lab CA and host certificates, DKIM keys."""

import base64
import hashlib
import subprocess
from pathlib import Path
from typing import Any

from mxspec.core.errors import MxspecError
from mxspec.lab.spec import Lab, LabHost
from mxspec.lab.system import run
from mxspec.transport import openssh


def secrets_dir(lab: Lab) -> Path:
    path = lab.state_dir / "secrets"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def ssh_key(lab: Lab) -> Path:
    key = secrets_dir(lab) / "id_ed25519"
    if not key.exists():
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "mxspec-lab", "-f", str(key)], "making the lab SSH key")
    return key


def write_ssh_config(lab: Lab, path: Path, control_dir: Path) -> None:
    key = ssh_key(lab)
    blocks = []
    for host in lab.hosts.values():
        blocks.append(
            f"Host {host.name}\n"
            f"  HostName {host.address}\n"
            "  User root\n"
            f"  IdentityFile {key}\n"
            "  IdentitiesOnly yes\n"
            "  StrictHostKeyChecking no\n"
            "  UserKnownHostsFile /dev/null\n"
            "  LogLevel ERROR\n"
            "  ControlMaster auto\n"
            # per user too: an operator's jump through the bastion must not ride root's master
            f"  ControlPath {control_dir}/%r@%n.sock\n"
            "  ControlPersist 300\n")
    path.write_text("# Written by `mxspec lab up`; one alias per lab host.\n\n" + "\n".join(blocks))


def ca(lab: Lab) -> tuple[Path, Path]:
    directory = secrets_dir(lab)
    cert, key = directory / "ca.crt", directory / "ca.key"
    if not cert.exists():
        run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650",
             "-subj", "/CN=mxspec lab CA", "-keyout", str(key), "-out", str(cert)], "making the lab CA")
    return cert, key


def host_certificate(lab: Lab, host: LabHost) -> tuple[Path, Path]:
    """A certificate for the host's name, signed by the lab CA (made once per host name)."""
    return certificate(lab, host.name, [host.fqdn, host.name])


def https_certificate(lab: Lab, host: LabHost, names: list[str]) -> tuple[Path, Path]:
    """A certificate for the names the host serves HTTPS for (lab.yml's `https_names`), signed by the
    lab CA; made again when the names change (they are part of its file name's hash)."""
    digest = hashlib.sha256("\n".join(names).encode()).hexdigest()[:12]
    return certificate(lab, f"{host.name}-https-{digest}", names)


def certificate(lab: Lab, stem: str, names: list[str]) -> tuple[Path, Path]:
    """A server certificate for `names` (the first its CN), signed by the lab CA, kept as STEM.crt and STEM.key."""
    ca_cert, ca_key = ca(lab)
    directory = secrets_dir(lab)
    cert, key, csr = (directory / f"{stem}.{ext}" for ext in ("crt", "key", "csr"))
    if not cert.exists():
        what = f"making the TLS certificate {stem} ({', '.join(names)})"
        run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={names[0]}",
             "-keyout", str(key), "-out", str(csr)], what)
        ext = directory / f"{stem}.ext"
        ext.write_text(f"subjectAltName={','.join(f'DNS:{name}' for name in names)}\nextendedKeyUsage=serverAuth\n")
        run(["openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca_cert), "-CAkey", str(ca_key),
             "-CAcreateserial", "-days", "825", "-extfile", str(ext), "-out", str(cert)], what)
        csr.unlink()
        ext.unlink()
    return cert, key


def dkim_key(lab: Lab, selector: str) -> tuple[Path, str]:
    """A DKIM private key and the `p=` value to publish in DNS for it."""
    key = secrets_dir(lab) / f"dkim-{selector}.key"
    if not key.exists():
        run(["openssl", "genrsa", "-out", str(key), "2048"], f"making DKIM key {selector}")
    der = run(["openssl", "rsa", "-in", str(key), "-pubout", "-outform", "DER"],
              f"reading DKIM key {selector}", text=False).stdout
    return key, base64.b64encode(der).decode()


def on_host(ssh_config: Path, name: str, command: str, stdin: Any = subprocess.DEVNULL,
            timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
    """`command` on a lab host over the lab's ssh, bounded; the one way the lab's own repairs reach a host."""
    try:
        return subprocess.run(openssh.command(ssh_config, name, command, connect_timeout=5),
                              stdin=stdin, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise MxspecError(f"lab host {name}: no answer within {timeout:g} s to `{command.strip()[:60]}`") from None
