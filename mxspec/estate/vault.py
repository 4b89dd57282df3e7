"""Vault-encrypted inventory values (`!vault |`), decrypted with ansible-core's own VaultLib.

ansible-core is an optional extra (`pip install 'mxspec[ansible]'`): only it can decrypt a vault,
and mxspec does not reimplement its cryptography. Without it, or without a vault password file
(`--mx-vault-password-file`, or `ANSIBLE_VAULT_PASSWORD_FILE`), a vaulted value a scenario needs
is refused with the variable's name and the file and line that set it. A decrypted value is a
`Secret`: text that never shows itself in a message or a report.
"""

import importlib
from pathlib import Path
from typing import Any

from mxspec.core.errors import MxspecError
from mxspec.core.yamlfile import Vaulted


class Secret(str):
    """Decrypted text: used as a string, shown as `<secret>`."""

    def __repr__(self) -> str:
        return "'<secret>'"


def refusal(name: str, value: Vaulted) -> str:
    return (f"{value.where}: inventory variable '{name}' is vault-encrypted: give a vault password file "
            "(--mx-vault-password-file or ANSIBLE_VAULT_PASSWORD_FILE) and install ansible-core "
            "(pip install 'mxspec[ansible]') to decrypt it")


def _vault_lib(password_file: str) -> Any:
    try:
        vault = importlib.import_module("ansible.parsing.vault")
    except ImportError:
        raise MxspecError("decrypting vaulted inventory values needs ansible-core: "
                          "pip install 'mxspec[ansible]'") from None
    try:
        password = Path(password_file).read_bytes().strip()
    except OSError as error:
        raise MxspecError(f"vault password file {password_file}: {error.strerror}") from None
    if Path(password_file).stat().st_mode & 0o111:
        raise MxspecError(f"vault password file {password_file} is executable: mxspec reads it, never runs it; "
                          "give a file holding the password")
    return vault.VaultLib([("default", vault.VaultSecret(password))])


_LIBS: dict[str, Any] = {}


def decrypt_file(path: Path, text: str, password_file: str) -> str:
    """A vars file encrypted whole (`ansible-vault encrypt group_vars/all/vault.yml`): its plain text."""
    lib = _LIBS.get(password_file) or _LIBS.setdefault(password_file, _vault_lib(password_file))
    try:
        return str(lib.decrypt(text.encode()).decode())
    except Exception as error:  # ansible-core raises AnsibleError and others; none may show the secret
        raise MxspecError(f"{path}: cannot be decrypted with {password_file}: {type(error).__name__}") from None


def decrypt(value: Vaulted, name: str, password_file: str) -> Secret:
    lib = _LIBS.get(password_file) or _LIBS.setdefault(password_file, _vault_lib(password_file))
    try:
        return Secret(lib.decrypt(value.ciphertext.encode()).decode())
    except Exception as error:  # ansible-core raises AnsibleError and others; none may show the secret
        raise MxspecError(f"{value.where}: inventory variable '{name}' cannot be decrypted with "
                          f"{password_file}: {type(error).__name__}") from None
