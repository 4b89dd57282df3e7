"""DKIM verification of a delivered message against the key in the estate's own DNS (dkimpy)."""

import dkim

from mxspec.checks.dnschecks import Dns
from mxspec.checks.mailhost import Subject


def verify_dkim(subject: Subject, message: str, domain: str) -> None:
    resolver = Dns.of(subject)

    def txt(name: bytes | str, timeout: float = 5) -> bytes | None:
        name = name.decode() if isinstance(name, bytes) else name
        records = resolver.txt(name.rstrip("."))
        return records[0].encode() if records else None

    data = message.replace("\r\n", "\n").replace("\n", "\r\n").encode()
    signatures = [line for line in message.splitlines() if line.lower().startswith("dkim-signature:")]
    if not signatures:
        raise AssertionError("the message arrived without a DKIM-Signature header")
    verifier = dkim.DKIM(data)
    results = []
    for index in range(len(signatures)):
        ok = verifier.verify(idx=index, dnsfunc=txt)
        tags = dict(verifier.signature_fields or {})
        d = tags.get(b"d", b"").decode()
        subject.evidence.append(f"-- DKIM signature d={d} s={tags.get(b's', b'').decode()}: "
                                f"{'verifies' if ok else 'does not verify'}")
        results.append((d, ok))
    if not any(d == domain and ok for d, ok in results):
        raise AssertionError(f"no DKIM signature for {domain} verifies: {results}")
