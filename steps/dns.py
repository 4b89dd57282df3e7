"""DNS steps, asked once per estate of the estate's DNS server (`dns_server`)."""

import dns.reversename
from pytest_bdd import parsers, then

from mxspec import dnschecks
from mxspec.dnschecks import Dns
from mxspec.phrases import TYPES


def _domains(estate) -> list[str]:
    return list(estate.value("{{ local_domains }}"))


def _fail_if(problems: list[str], what: str) -> None:
    if problems:
        raise AssertionError(f"{what}:\n  " + "\n  ".join(problems))


@then("every local domain has exactly these MX records:")
def mx_records_are(estate, datatable):
    """Column `MX` ("10 mx1.example.org"): the domain's MX set, preferences included, and nothing else."""
    resolver = Dns(estate)
    wanted = sorted(row["MX"].rstrip(".") for row in estate.table(datatable))
    problems = []
    for domain in _domains(estate):
        seen = sorted(rr.rstrip(".") for rr in dnschecks.mx_records(resolver, domain))
        if seen != wanted:
            problems.append(f"{domain}: MX {seen or 'none'}, expected {wanted}")
    _fail_if(problems, f"estate {estate.name}: MX records differ")


@then("every MX host's address resolves back to its name")
def mx_fcrdns(estate):
    """Each MX name has an A record whose PTR names it again (forward-confirmed reverse DNS)."""
    resolver, problems = Dns(estate), []
    for domain in _domains(estate):
        for rr in dnschecks.mx_records(resolver, domain):
            name = rr.split()[1].rstrip(".")
            addresses = resolver.query(name, "A")
            if not addresses:
                problems.append(f"{domain}: MX {name} has no A record")
            for address in addresses:
                back = [p.rstrip(".") for p in resolver.query(dns.reversename.from_address(address).to_text(), "PTR")]
                if name not in back:
                    problems.append(f"{domain}: {name} -> {address} -> {back or 'no PTR'}")
    _fail_if(problems, f"estate {estate.name}: forward-confirmed reverse DNS fails")


@then(parsers.parse("every local domain has one SPF record that ends in {endings:QuotedList}", extra_types=TYPES))
def one_spf_record(estate, endings):
    """Exactly one `v=spf1` TXT record per domain, whose last term is one of these."""
    resolver, problems = Dns(estate), []
    for domain in _domains(estate):
        records = dnschecks.spf_records(resolver, domain)
        if len(records) != 1:
            problems.append(f"{domain}: {len(records)} SPF records {records}")
        elif records[0].split()[-1] not in endings:
            problems.append(f"{domain}: SPF ends in {records[0].split()[-1]}, not {' or '.join(endings)}")
    _fail_if(problems, f"estate {estate.name}: SPF records")


@then(parsers.parse("every SPF record needs at most {limit:Count} DNS lookups", extra_types=TYPES))
def spf_lookup_limit(estate, limit):
    """Counts include, a, mx, ptr, exists and redirect terms of each domain's SPF record."""
    resolver, problems, bound = Dns(estate), [], int(estate.value(limit))
    for domain in _domains(estate):
        for record in dnschecks.spf_records(resolver, domain):
            if dnschecks.spf_lookups(record) > bound:
                problems.append(f"{domain}: {dnschecks.spf_lookups(record)} lookups in '{record}'")
    _fail_if(problems, f"estate {estate.name}: SPF records need too many lookups")


@then("every SPF record allows these addresses to send:")
def spf_allows(estate, datatable):
    """Column `address`: each is covered by an ip4/ip6 term of every local domain's SPF record."""
    resolver, problems = Dns(estate), []
    addresses = [row["address"] for row in estate.table(datatable)]
    for domain in _domains(estate):
        for record in dnschecks.spf_records(resolver, domain) or [""]:
            problems += [f"{domain}: '{record}' does not cover {a}" for a in addresses
                         if not dnschecks.spf_allows(record, a)]
    _fail_if(problems, f"estate {estate.name}: SPF does not cover the outbound MXs")


@then(parsers.parse("every local domain publishes a DKIM key for selector {selector:Quoted}", extra_types=TYPES))
def dkim_key_published(estate, selector):
    """`SELECTOR._domainkey.DOMAIN` has a TXT record with v=DKIM1 and a non-empty p=."""
    resolver, problems, name = Dns(estate), [], estate.value(selector)
    for domain in _domains(estate):
        records = [dnschecks.tags(t) for t in resolver.txt(f"{name}._domainkey.{domain}")]
        if not any(r.get("v") == "DKIM1" and r.get("p") for r in records):
            problems.append(f"{domain}: no valid DKIM key for selector {name} ({records or 'no record'})")
    _fail_if(problems, f"estate {estate.name}: DKIM keys")


@then(parsers.parse("every local domain has a DMARC record with policy {policies:QuotedList}", extra_types=TYPES))
def dmarc_policy(estate, policies):
    """Exactly one `v=DMARC1` record at `_dmarc.DOMAIN` whose p= is one of these."""
    resolver, problems = Dns(estate), []
    for domain in _domains(estate):
        records = [dnschecks.tags(t) for t in resolver.txt(f"_dmarc.{domain}") if t.startswith("v=DMARC1")]
        if len(records) != 1:
            problems.append(f"{domain}: {len(records)} DMARC records")
        elif records[0].get("p") not in policies:
            problems.append(f"{domain}: DMARC policy p={records[0].get('p')}, not {' or '.join(policies)}")
    _fail_if(problems, f"estate {estate.name}: DMARC")
