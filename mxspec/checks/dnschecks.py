"""Checks of the estate's domains, asked of the estate's own DNS server (`dns_server`)."""

import ipaddress
import re

import dns.exception
import dns.resolver
import dns.reversename

from mxspec.checks.mailhost import Subject
from mxspec.core.errors import DependencyDown
from mxspec.transport.silence import Silences

# SPF terms that cost a DNS lookup (RFC 7208, 4.6.4); the limit is 10.
LOOKUP_TERMS = {"include", "a", "mx", "ptr", "exists", "redirect"}


class Dns:
    """A resolver for one estate's DNS server that writes every answer into the evidence."""

    def __init__(self, server: str, port: int, timeout: float, silences: Silences, evidence: list[str]):
        self.silences = silences
        self.evidence = evidence
        self.resolver = dns.resolver.Resolver(configure=False)
        self.resolver.nameservers = [server]
        self.resolver.port = port
        self.resolver.timeout = self.resolver.lifetime = timeout
        self.endpoint = f"DNS server {server}" + (f" port {port}" if port != 53 else "")

    @classmethod
    def of(cls, subject: Subject) -> "Dns":
        """The estate's DNS server (`dns_server`, `dns_port`), bounded by the run's timeout."""
        return cls(subject.setting("dns_server"), subject.setting("dns_port"), subject.timeout, subject.pool.silences,
                   subject.evidence)

    def query(self, name: str, rdtype: str) -> list[str]:
        """Answers as text; an empty list for NXDOMAIN or no data."""
        qname = name if name.endswith(".") else name + "."
        silences = self.silences
        silences.check(self.endpoint)  # silent earlier in the run: fail now, not after another bound
        try:
            answer = self.resolver.resolve(qname, rdtype)
            texts = [rr.to_text() for rr in answer]
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            texts = []
        except dns.exception.Timeout:
            said = f"{self.endpoint} did not answer {qname} {rdtype} within {self.resolver.lifetime:g} s"
            silences.remember(self.endpoint, said)
            raise DependencyDown(self.endpoint, said) from None
        except dns.resolver.NoNameservers as error:
            raise AssertionError(f"DNS server {self.resolver.nameservers[0]} failed {qname} {rdtype}: {error}") from None
        self.evidence.append(f"DNS {qname} {rdtype}: " + ("; ".join(texts) or "(no answer)"))
        return texts

    def txt(self, name: str) -> list[str]:
        """TXT records with their strings joined, as the record's owner meant them."""
        return ["".join(part.strip('"') for part in text.split('" "')) for text in self.query(name, "TXT")]


def mx_records(resolver: Dns, domain: str) -> list[str]:
    return sorted(resolver.query(domain, "MX"), key=lambda rr: (int(rr.split()[0]), rr))


def aaaa_problems(resolver: Dns, name: str, address: str) -> list[str]:
    """The name's AAAA records are exactly `address` (compared as addresses: :: forms alike), or what differs."""
    seen = resolver.query(name, "AAAA")
    if {ipaddress.IPv6Address(a) for a in seen} == {ipaddress.IPv6Address(address)}:
        return []
    return [f"{name} AAAA {', '.join(seen) or 'none'}, expected {address}"]


def resolves_back(resolver: Dns, name: str, rdtype: str) -> list[str]:
    """Forward-confirmed reverse DNS of a name, over IPv4 (`A`) or IPv6 (`AAAA`): it has addresses of
    that type, and the PTR of each names it again. What is wrong, as `name -> address -> PTR names`."""
    addresses = resolver.query(name, rdtype)
    if not addresses:
        return [f"{name} has no {rdtype} record"]
    problems = []
    for address in addresses:
        back = [p.rstrip(".") for p in resolver.query(dns.reversename.from_address(address).to_text(), "PTR")]
        if name not in back:
            problems.append(f"{name} -> {address} -> {back or 'no PTR'}")
    return problems


def ipv6_inbound_mxs(estate: Subject) -> list[tuple[str, str, str]]:
    """(host, its `smtp_name`, its `ipv6_address`) of each inbound MX of the estate that declares IPv6."""
    return [(host.name, host.setting("smtp_name"), host.setting("ipv6_address"))
            for host in estate.hosts_playing("inbound-mx") if host.setting("ipv6_address")]


def spf_records(resolver: Dns, domain: str) -> list[str]:
    return [t for t in resolver.txt(domain) if t.lower().startswith("v=spf1")]


def spf_lookups(record: str) -> int:
    names = [re.split(r"[:/=]", term.lstrip("+-~?").lower(), maxsplit=1)[0] for term in record.split()[1:]]
    return sum(1 for name in names if name in LOOKUP_TERMS)


def spf_allows(record: str, address: str) -> bool:
    """Whether the record's ip4/ip6 terms cover the address (terms needing lookups are not followed)."""
    ip = ipaddress.ip_address(address)
    for term in record.split()[1:]:
        if term.startswith(("-", "~", "?")):
            continue
        term = term.lstrip("+")
        for prefix in ("ip4:", "ip6:"):
            if term.startswith(prefix):
                try:
                    if ip in ipaddress.ip_network(term[len(prefix):], strict=False):
                        return True
                except ValueError:
                    continue
    return False


def tags(record: str) -> dict[str, str]:
    """`v=DKIM1; k=rsa; p=...` as a mapping."""
    result = {}
    for part in record.split(";"):
        if "=" in part:
            key, value = part.split("=", 1)
            result[key.strip().lower()] = value.strip()
    return result
