"""The certificates a host serves with STARTTLS: how long they stay valid, and whether each is the
one whose private key Postfix is configured with.

The served certificate is taken from the wire (without verifying it: an expired or foreign
certificate must be seen, not refused); the host's own openssl reads its dates and public key and
the public keys of the key files Postfix names, so nothing on mxspec's machine parses X.509.
"""

import base64
import re
import shlex
import ssl
import time
from dataclasses import dataclass

from mxspec.checks import facts, smtpchecks
from mxspec.checks.mailhost import MailHost
from mxspec.transport.smtp import Session, unverified_context

DAY = 86400
KEY_PARAMETERS = ("smtpd_tls_key_file", "smtpd_tls_eckey_file")
CHAIN_PARAMETER = "smtpd_tls_chain_files"
PUBLIC_KEY = re.compile(r"-----BEGIN PUBLIC KEY-----.*?-----END PUBLIC KEY-----", re.S)


@dataclass(frozen=True)
class Served:
    port: int
    subject: str
    not_after: str  # as openssl prints it: `Nov 25 14:16:48 2027 GMT`
    public_key: str  # PEM

    def days_left(self, now: float) -> float:
        return (ssl.cert_time_to_seconds(self.not_after) - now) / DAY


def parse_x509(port: int, output: str) -> Served:
    """`openssl x509 -noout -subject -enddate -pubkey` output -> Served."""
    fields = dict(line.split("=", 1) for line in output.splitlines() if line.startswith(("subject=", "notAfter=")))
    key = PUBLIC_KEY.search(output)
    if "notAfter" not in fields or key is None:
        raise AssertionError(f"openssl could not read the certificate served on port {port}: {output.strip()}")
    return Served(port, fields.get("subject", "").strip(), fields["notAfter"].strip(), normal_key(key.group(0)))


def normal_key(pem: str) -> str:
    return "".join(pem.split())


def key_files(postconf_output: str) -> tuple[list[str], list[str]]:
    """The private key files the configuration names for smtpd (`name = value` lines of postconf -nx
    and -Px): smtpd_tls_key_file and smtpd_tls_eckey_file, in main.cf and master.cf; only where none
    is set, smtpd_tls_chain_files (keys and certificates together). Second: the chain files set
    besides named key files, which Postfix then serves from instead."""
    keys: list[str] = []
    chains: list[str] = []
    for line in postconf_output.splitlines():
        name, sep, value = line.partition(" = ")
        if not sep:
            continue
        parameter = name.strip().rsplit("/", 1)[-1]
        files = value.replace(",", " ").split()
        if parameter in KEY_PARAMETERS:
            keys += files
        elif parameter == CHAIN_PARAMETER:
            chains += files
    if keys:
        return list(dict.fromkeys(keys)), list(dict.fromkeys(chains))
    return list(dict.fromkeys(chains)), []


def served_certificate(mailhost: MailHost, port: int) -> bytes:
    """The certificate (DER) the host presents after STARTTLS on `port`."""
    context = unverified_context()

    async def peer(s: Session) -> bytes:
        return bytes(s.client.get_transport_info("ssl_object").getpeercert(binary_form=True))

    _, _, _, der = smtpchecks.starttls(mailhost, context, mailhost.setting("smtp_name"), port, after=peer)
    return bytes(der)


def read_certificate_command(der: bytes) -> str:
    """openssl reading a certificate given on its command line (base64, one line): subject, end date, public key."""
    return (f"echo {base64.b64encode(der).decode()} | openssl base64 -d -A | "
            "openssl x509 -inform DER -noout -subject -enddate -pubkey")


def configured_keys(mailhost: MailHost) -> tuple[dict[str, str], list[str]]:
    """Key file -> its public key (PEM, whitespace removed), for each key file Postfix names; and the
    chain files set besides them (see key_files)."""
    files, chains = key_files(facts.postfix_configuration(mailhost))
    if not files:  # the defaults: smtpd_tls_key_file = $smtpd_tls_cert_file
        files, chains = key_files(str(mailhost.run(
            "postconf -xh smtpd_tls_key_file | sed 's/^/smtpd_tls_key_file = /'").stdout))
    keys = {}
    for path in files:
        output = mailhost.output(f"openssl pkey -pubout -in {shlex.quote(path)}",
                               f"reading the public key of Postfix's key file {path}")
        found = PUBLIC_KEY.search(output)
        if found:
            keys[path] = normal_key(found.group(0))
    return keys, chains


def certificate_problems(served: Served, keys: dict[str, str], margin_days: int, now: float,
                         chains: tuple[str, ...] = ()) -> list[str]:
    problems = []
    left = served.days_left(now)
    if left < margin_days:
        state = f"expired {-left:.1f} days ago" if left < 0 else f"expires in {left:.1f} days"
        problems.append(f"port {served.port}: the certificate ({served.subject}) {state} (not after {served.not_after}), "
                        f"within the estate's margin of {margin_days} days")
    if served.public_key not in keys.values():
        named = ", ".join(keys) or "none readable"
        besides = (f"; smtpd_tls_chain_files ({', '.join(chains)}) is set too, and Postfix serves from it"
                   if chains else "")
        problems.append(f"port {served.port}: the certificate served ({served.subject}) does not match the private "
                        f"key Postfix is configured with ({named}){besides}")
    return problems


def certificates_valid_and_matching(mailhost: MailHost, ports: list[int], margin_days: int) -> None:
    keys, chains = configured_keys(mailhost)
    problems = []
    for port in ports:
        output = mailhost.output(read_certificate_command(served_certificate(mailhost, port)),
                               f"reading the certificate served on port {port}")
        served = parse_x509(port, output)
        mailhost.evidence.append(f"-- port {port}: certificate {served.subject}, not after {served.not_after}")
        problems += certificate_problems(served, keys, margin_days, time.time(), tuple(chains))
    mailhost.evidence.append("-- Postfix's key files: " + (", ".join(keys) or "none"))
    if problems:
        raise AssertionError(f"host {mailhost.name}: certificates served with STARTTLS:\n  " + "\n  ".join(problems))
