"""DNS steps, asked once per estate of the estate's DNS server (`dns_server`)."""

from collections.abc import Callable

import pytest
from pytest_bdd import given, parsers, then

from mxspec.checks import dnschecks, mtasts
from mxspec.checks.dnschecks import Dns
from mxspec.checks.mailhost import Subject
from mxspec.steps.phrases import TYPES


def _each_domain(estate: Subject, what: str, check: Callable[[Dns, str], list[str]]) -> None:
    """Run check(resolver, domain) -> problems for every local domain; fail listing them all."""
    resolver, problems = Dns.of(estate), []
    for domain in estate.setting("local_domains"):
        problems += [f"{domain}: {problem}" for problem in check(resolver, domain)]
    if problems:
        raise AssertionError(f"estate {estate.name}: {what}:\n  " + "\n  ".join(problems))


@then("every local domain has exactly these MX records:")
def mx_records_are(estate: Subject, datatable: list[list[str]]) -> None:
    """Column `MX` ("10 mx1.example.org"): the domain's MX set, preferences included, and nothing else."""
    wanted = sorted(row["MX"].rstrip(".") for row in estate.table(datatable))

    def check(resolver: Dns, domain: str) -> list[str]:
        seen = sorted(rr.rstrip(".") for rr in dnschecks.mx_records(resolver, domain))
        return [] if seen == wanted else [f"MX {seen or 'none'}, expected {wanted}"]

    _each_domain(estate, "MX records differ", check)


@then("every MX host's address resolves back to its name")
def mx_fcrdns(estate: Subject) -> None:
    """Each MX name has an A record whose PTR names it again (forward-confirmed reverse DNS)."""
    def check(resolver: Dns, domain: str) -> list[str]:
        return [problem for rr in dnschecks.mx_records(resolver, domain)
                for problem in dnschecks.resolves_back(resolver, rr.split()[1].rstrip("."), "A")]

    _each_domain(estate, "forward-confirmed reverse DNS fails", check)


@then(parsers.parse("every local domain has one SPF record that ends in {endings:QuotedList}", extra_types=TYPES))
def one_spf_record(estate: Subject, endings: list[str]) -> None:
    """Exactly one `v=spf1` TXT record per domain, whose last term is one of these."""
    def check(resolver: Dns, domain: str) -> list[str]:
        records = dnschecks.spf_records(resolver, domain)
        if len(records) != 1:
            return [f"{len(records)} SPF records {records}"]
        ending = records[0].split()[-1]
        return [] if ending in endings else [f"SPF ends in {ending}, not {' or '.join(endings)}"]

    _each_domain(estate, "SPF records", check)


@then(parsers.parse("every SPF record needs at most {limit:Count} DNS lookups", extra_types=TYPES))
def spf_lookup_limit(estate: Subject, limit: str) -> None:
    """Counts include, a, mx, ptr, exists and redirect terms of each domain's SPF record."""
    bound = int(estate.value(limit))

    def check(resolver: Dns, domain: str) -> list[str]:
        return [f"{dnschecks.spf_lookups(record)} lookups in '{record}'"
                for record in dnschecks.spf_records(resolver, domain) if dnschecks.spf_lookups(record) > bound]

    _each_domain(estate, "SPF records need too many lookups", check)


@then("every SPF record allows these addresses to send:")
def spf_allows(estate: Subject, datatable: list[list[str]]) -> None:
    """Column `address`: each is covered by an ip4/ip6 term of every local domain's SPF record."""
    addresses = [row["address"] for row in estate.table(datatable)]

    def check(resolver: Dns, domain: str) -> list[str]:
        return [f"'{record}' does not cover {a}" for record in dnschecks.spf_records(resolver, domain) or [""]
                for a in addresses if not dnschecks.spf_allows(record, a)]

    _each_domain(estate, "SPF does not cover the outbound MXs", check)


@then(parsers.parse("every local domain publishes a DKIM key for selector {selector:Quoted}", extra_types=TYPES))
def dkim_key_published(estate: Subject, selector: str) -> None:
    """`SELECTOR._domainkey.DOMAIN` has a TXT record with v=DKIM1 and a non-empty p=."""
    name = estate.value(selector)

    def check(resolver: Dns, domain: str) -> list[str]:
        records = [dnschecks.tags(t) for t in resolver.txt(f"{name}._domainkey.{domain}")]
        valid = any(r.get("v") == "DKIM1" and r.get("p") for r in records)
        return [] if valid else [f"no valid DKIM key for selector {name} ({records or 'no record'})"]

    _each_domain(estate, "DKIM keys", check)


@then(parsers.parse("every local domain has a DMARC record with policy {policies:QuotedList}", extra_types=TYPES))
def dmarc_policy(estate: Subject, policies: list[str]) -> None:
    """Exactly one `v=DMARC1` record at `_dmarc.DOMAIN` whose p= is one of these."""
    def check(resolver: Dns, domain: str) -> list[str]:
        records = [dnschecks.tags(t) for t in resolver.txt(f"_dmarc.{domain}") if t.startswith("v=DMARC1")]
        if len(records) != 1:
            return [f"{len(records)} DMARC records"]
        policy = records[0].get("p")
        return [] if policy in policies else [f"DMARC policy p={policy}, not {' or '.join(policies)}"]

    _each_domain(estate, "DMARC", check)


# MTA-STS and TLS-RPT: only where the estate declares them (mta_sts_mode, tls_rpt_address).

@given("the estate publishes an MTA-STS policy")
def estate_publishes_mta_sts(estate: Subject) -> None:
    """Skips the scenario unless the inventory's `mta_sts_mode` says the policy's mode (enforce or testing)."""
    if not estate.setting("mta_sts_mode"):
        pytest.skip(f"estate {estate.name} publishes no MTA-STS policy (mta_sts_mode not set)")


@given("the estate asks for TLS reports")
def estate_asks_for_tls_reports(estate: Subject) -> None:
    """Skips the scenario unless the inventory's `tls_rpt_address` says where TLS-RPT reports go."""
    if not estate.setting("tls_rpt_address"):
        pytest.skip(f"estate {estate.name} asks for no TLS reports (tls_rpt_address not set)")


@then("every local domain announces its MTA-STS policy in DNS")
def mta_sts_record(estate: Subject) -> None:
    """One `v=STSv1; id=...` TXT record at `_mta-sts.DOMAIN`, the id 1 to 32 letters and digits."""
    _each_domain(estate, "MTA-STS records", mtasts.sts_record_problems)


@then("every local domain serves its MTA-STS policy over HTTPS with a certificate for its policy host's name")
def mta_sts_policy_served(estate: Subject) -> None:
    """`https://mta-sts.DOMAIN/.well-known/mta-sts.txt` at each of its addresses: verifies against `tls_ca`, a valid policy."""
    ca_file = estate.setting("tls_ca")

    def check(resolver: Dns, domain: str) -> list[str]:
        served, problems = mtasts.policies(estate, resolver, domain, ca_file)
        return problems + [f"{policy.url}: {problem}" for policy in served for problem in policy.problems]

    _each_domain(estate, "MTA-STS policies not served as senders fetch them", check)


@then("every MTA-STS policy has the estate's mode and covers every MX host of its domain")
def mta_sts_policy_covers_mx(estate: Subject) -> None:
    """The policy's mode is `mta_sts_mode`, and an `mx:` pattern of it covers each host the domain's MX records name."""
    mode, ca_file = estate.setting("mta_sts_mode"), estate.setting("tls_ca")

    def check(resolver: Dns, domain: str) -> list[str]:
        served, problems = mtasts.policies(estate, resolver, domain, ca_file)
        hosts = mtasts.mx_hosts(resolver, domain)
        return problems + [p for policy in served for p in mtasts.coverage_problems(policy, mode, hosts)]

    _each_domain(estate, "MTA-STS policies do not cover the MX hosts", check)


@then("every MX host presents a certificate for its name with STARTTLS, signed by the estate's CA")
def mx_starttls_names(estate: Subject) -> None:
    """Port 25 of each address of each host the MX records name: STARTTLS verifies against `tls_ca` for that name."""
    resolver, ca_file, checked, problems = Dns.of(estate), estate.setting("tls_ca"), set(), []
    for domain in estate.setting("local_domains"):
        hosts = [host for host in mtasts.mx_hosts(resolver, domain) if host not in checked]
        checked.update(hosts)  # every domain names the same MX hosts, usually: each is asked once
        problems += mtasts.mx_certificate_problems(estate, resolver, hosts, ca_file)
    if problems:
        raise AssertionError(f"estate {estate.name}: MX hosts a sender enforcing MTA-STS would refuse:\n  "
                             + "\n  ".join(problems))


@then("every local domain has a TLS-RPT record sending reports to the estate's address")
def tls_rpt_record(estate: Subject) -> None:
    """One `v=TLSRPTv1` TXT record at `_smtp._tls.DOMAIN` whose rua includes `mailto:` + `tls_rpt_address`."""
    address = estate.setting("tls_rpt_address")
    _each_domain(estate, "TLS-RPT records", lambda resolver, domain: mtasts.tlsrpt_problems(resolver, domain, address))


def _each_ipv6_mx(estate: Subject, what: str, check: Callable[[Dns, str, str], list[str]]) -> None:
    """Run check(resolver, smtp_name, ipv6_address) -> problems for every inbound MX declaring IPv6;
    fail listing them all."""
    resolver, problems = Dns.of(estate), []
    for host, name, address in dnschecks.ipv6_inbound_mxs(estate):
        problems += [f"{host}: {problem}" for problem in check(resolver, name, address)]
    if problems:
        raise AssertionError(f"estate {estate.name}: {what}:\n  " + "\n  ".join(problems))


@given("the estate declares IPv6 for its inbound MXs")
def estate_declares_ipv6(estate: Subject) -> None:
    """Skips the scenario unless an inbound MX of the estate sets `ipv6_address` (those that do are checked)."""
    if not dnschecks.ipv6_inbound_mxs(estate):
        pytest.skip(f"estate {estate.name} declares no IPv6 (no inbound MX sets ipv6_address)")


@then("every inbound MX's name has exactly its IPv6 address as AAAA record")
def ipv6_aaaa_records(estate: Subject) -> None:
    """The AAAA records of each IPv6 inbound MX's `smtp_name` are its `ipv6_address` and nothing else."""
    _each_ipv6_mx(estate, "AAAA records differ from the declared IPv6 addresses", dnschecks.aaaa_problems)


@then("every inbound MX's IPv6 address resolves back to its name")
def ipv6_fcrdns(estate: Subject) -> None:
    """Each IPv6 inbound MX's `smtp_name` has AAAA records whose PTRs name it again (forward-confirmed).

    That the AAAA record is the declared `ipv6_address` is the AAAA step's to say.
    """
    def check(resolver: Dns, name: str, address: str) -> list[str]:
        return dnschecks.resolves_back(resolver, name, "AAAA")

    _each_ipv6_mx(estate, "forward-confirmed reverse DNS over IPv6 fails", check)
