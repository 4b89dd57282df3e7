"""MTA-STS and TLS-RPT: the records' and the policy's parsers, the policy fetched over HTTPS from the
lab's own policy server (started on loopback with a certificate made as the lab makes it), the lab's
policy and DNS records as the lab renders them, and (lab) both estates' scenarios.

The unit tests answer DNS from recorded answers and serve HTTPS on 127.0.0.1 only.
"""

import contextlib
import re
import socket
import subprocess
import sys

import pytest

from conftest import output, run_mxspec_pytest
from mxspec.checks import mtasts
from mxspec.checks.mailhost import Subject
from mxspec.core.waiting import poll
from mxspec.estate.inventory import Estate
from mxspec.estate.target import Target
from mxspec.lab import BUILTIN, access
from mxspec.lab.spec import load_lab, render
from mxspec.transport.connection import ConnectionPool

SERVER = BUILTIN / "roles/mta-sts/files/usr/local/sbin/lab-mta-sts"
LOOPBACK = "127.0.0.1"
MXS = ["new-mx-in-1.lab.test", "new-mx-in-2.lab.test"]
POLICY = "version: STSv1\r\nmode: enforce\r\nmx: new-mx-in-1.lab.test\r\nmx: *.mx.lab.test\r\nmax_age: 86400\r\n"


class RecordedDns:
    """Answers as recorded: name -> rdtype -> texts (TXT strings already joined)."""

    def __init__(self, answers: dict[str, dict[str, list[str]]]):
        self.answers = answers

    def query(self, name: str, rdtype: str) -> list[str]:
        return self.answers.get(name.rstrip("."), {}).get(rdtype, [])

    def txt(self, name: str) -> list[str]:
        return self.query(name, "TXT")


# -- the parsers

def test_a_policy_is_read_line_by_line_and_every_fault_named():
    fields, problems = mtasts.parse_policy(POLICY)
    assert fields == {"version": ["STSv1"], "mode": ["enforce"], "mx": ["new-mx-in-1.lab.test", "*.mx.lab.test"],
                      "max_age": ["86400"]}
    assert problems == []
    _, problems = mtasts.parse_policy("version: STSv2\nmode: strict\nmax_age: 99999999\nno colon here\n")
    assert problems == ["line 4 is not 'key: value': 'no colon here'", "version ['STSv2'], expected STSv1",
                        "mode ['strict'], expected one of enforce, testing, none",
                        "max_age ['99999999'], expected one whole number of seconds up to 31557600",
                        "no mx lines: the policy names no MX host"]


@pytest.mark.parametrize("pattern, host, covered", [
    ("mx1.example.org", "MX1.example.org.", True),
    ("*.example.org", "mx1.example.org", True),
    ("*.example.org", "example.org", False),  # the wildcard stands for exactly one label
    ("*.example.org", "a.mx1.example.org", False),
    ("mx1.example.org", "mx2.example.org", False),
])
def test_an_mx_pattern_covers_the_name_or_one_leftmost_label(pattern, host, covered):
    assert mtasts.mx_matches(pattern, host) is covered


def test_a_policy_of_another_mode_or_missing_an_mx_host_is_named_with_its_url():
    policy = mtasts.Policy("https://mta-sts.alpha.test/.well-known/mta-sts.txt (10.0.0.5)",
                           *mtasts.parse_policy(POLICY.replace("enforce", "testing")))
    assert mtasts.coverage_problems(policy, "enforce", ["new-mx-in-1.lab.test", "a.mx.lab.test", "b.lab.test"]) == [
        "https://mta-sts.alpha.test/.well-known/mta-sts.txt (10.0.0.5): mode testing, expected enforce",
        "https://mta-sts.alpha.test/.well-known/mta-sts.txt (10.0.0.5): no mx pattern covers MX host b.lab.test "
        "(mx: new-mx-in-1.lab.test, *.mx.lab.test)"]


@pytest.mark.parametrize("records, problems", [
    (["v=STSv1; id=2026120501"], []),
    (["v=STSv1; id=20261205T01"], []),
    ([], ["no MTA-STS records (v=STSv1) at _mta-sts.alpha.test, expected one"]),
    (["v=STSv1; id=1", "v=STSv1; id=2"], ["2 MTA-STS records (v=STSv1) at _mta-sts.alpha.test, expected one"]),
    (["v=STSv1; id=2026-12-05"],
     ["_mta-sts.alpha.test: id '2026-12-05' is not 1 to 32 letters and digits ('v=STSv1; id=2026-12-05')"]),
])
def test_the_mta_sts_record(records, problems):
    resolver = RecordedDns({"_mta-sts.alpha.test": {"TXT": records}})
    assert mtasts.sts_record_problems(resolver, "alpha.test") == problems


@pytest.mark.parametrize("records, problems", [
    (["v=TLSRPTv1; rua=mailto:tls@alpha.test"], []),
    (["v=TLSRPTv1; rua=https://reports.example/tls,mailto:TLS@alpha.test"], []),
    (["v=spf1 -all"], ["no TLS-RPT records (v=TLSRPTv1) at _smtp._tls.alpha.test, expected one"]),
    (["v=TLSRPTv1; rua=tls@alpha.test"],
     ["_smtp._tls.alpha.test: rua 'tls@alpha.test' is not a mailto: or https: address",
      "_smtp._tls.alpha.test: rua 'tls@alpha.test' does not send reports to mailto:tls@alpha.test "
      "('v=TLSRPTv1; rua=tls@alpha.test')"]),
    (["v=TLSRPTv1; rua=mailto:other@alpha.test"],
     ["_smtp._tls.alpha.test: rua 'mailto:other@alpha.test' does not send reports to mailto:tls@alpha.test "
      "('v=TLSRPTv1; rua=mailto:other@alpha.test')"]),
])
def test_the_tls_rpt_record(records, problems):
    resolver = RecordedDns({"_smtp._tls.alpha.test": {"TXT": records}})
    assert mtasts.tlsrpt_problems(resolver, "alpha.test", "tls@alpha.test") == problems


# -- the policy over HTTPS, from the lab's own server

def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def lab_copy(tmp_path_factory):
    """The built-in lab with its secrets (CA, certificates) made in a folder of the test's own."""
    return load_lab(BUILTIN, state_dir=str(tmp_path_factory.mktemp("labstate")))


@pytest.fixture(scope="module")
def policy_server(lab_copy, tmp_path_factory):
    """lab-mta-sts on loopback, with the certificate the lab makes for lab-store's https_names, serving
    a policy for mta-sts.alpha.test (and none for mta-sts.beta.test)."""
    store = lab_copy.hosts["lab-store"]
    cert, key = access.https_certificate(lab_copy, store, store.vars["https_names"])
    policies = tmp_path_factory.mktemp("policies")
    (policies / "mta-sts.alpha.test.txt").write_text(POLICY, newline="")
    port = free_port()
    process = subprocess.Popen([sys.executable, str(SERVER), "--address", LOOPBACK, "--port", str(port),
                                "--cert", str(cert), "--key", str(key), "--policies", str(policies)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        if not poll(10, lambda: listening(port)):
            process.terminate()
            pytest.fail(f"lab-mta-sts did not listen on port {port}: {process.communicate(timeout=10)[0]}")
        yield port, policies
    finally:
        process.terminate()
        process.wait(10)


def listening(port: int) -> bool | None:
    with contextlib.suppress(OSError), socket.create_connection((LOOPBACK, port), timeout=1):
        return True
    return None


def ca_of(lab) -> str:
    return str(access.ca(lab)[0])


def test_the_policy_server_serves_the_policy_of_the_name_asked_for(lab_copy, policy_server):
    port, _ = policy_server
    evidence: list[str] = []
    policy = mtasts.fetch_policy("mta-sts.alpha.test", LOOPBACK, ca_of(lab_copy), 5, port, evidence)
    assert policy.problems == [] and policy.mode == "enforce" and policy.mx == ["new-mx-in-1.lab.test", "*.mx.lab.test"]
    assert evidence[0] == (f"HTTPS GET https://mta-sts.alpha.test/.well-known/mta-sts.txt ({LOOPBACK} port {port}): "
                           f"200 text/plain, {len(POLICY)} bytes")


def test_a_name_without_a_policy_is_404(lab_copy, policy_server):
    port, _ = policy_server
    with pytest.raises(AssertionError, match=r"^https://mta-sts.beta.test/.well-known/mta-sts.txt "
                                             rf"\({LOOPBACK} port {port}\): HTTP 404, expected 200 with the policy$"):
        mtasts.fetch_policy("mta-sts.beta.test", LOOPBACK, ca_of(lab_copy), 5, port)


def test_a_certificate_for_another_name_is_refused(lab_copy, policy_server):
    port, _ = policy_server
    with pytest.raises(AssertionError, match=r"TLS failed \(a certificate for mta-sts.gamma.test, signed by the "
                                             r"estate's CA, expected\): hostname 'mta-sts.gamma.test' doesn't match"):
        mtasts.fetch_policy("mta-sts.gamma.test", LOOPBACK, ca_of(lab_copy), 5, port)


def test_a_certificate_from_another_ca_is_refused(lab_copy, policy_server, tmp_path):
    port, _ = policy_server
    other = load_lab(BUILTIN, state_dir=str(tmp_path))
    with pytest.raises(AssertionError, match=r"TLS failed .*: certificate verify failed: "):
        mtasts.fetch_policy("mta-sts.alpha.test", LOOPBACK, ca_of(other), 5, port)


def test_nothing_listening_is_said_in_one_line(lab_copy):
    port = free_port()
    with pytest.raises(AssertionError, match=rf"\({LOOPBACK} port {port}\): cannot connect: .*Connection refused$"):
        mtasts.fetch_policy("mta-sts.alpha.test", LOOPBACK, ca_of(lab_copy), 5, port)


def test_every_address_of_the_policy_host_is_asked_and_a_missing_one_named(lab_copy, policy_server):
    port, _ = policy_server
    subject = Subject(Target(Estate(name="lab", path="test.yml", vars={}, hosts={})),
                      ConnectionPool(connect_timeout=2, command_timeout=2), 5, [])
    resolver = RecordedDns({"mta-sts.alpha.test": {"A": [LOOPBACK, "127.0.0.2"]}})
    served, problems = mtasts.policies(subject, resolver, "alpha.test", ca_of(lab_copy), port)
    assert [policy.url for policy in served] == [f"https://mta-sts.alpha.test/.well-known/mta-sts.txt "
                                                 f"({LOOPBACK} port {port})"]
    assert len(problems) == 1 and "(127.0.0.2 port" in problems[0] and "cannot connect" in problems[0]
    assert mtasts.policies(subject, resolver, "beta.test", ca_of(lab_copy)) == (
        [], ["mta-sts.beta.test has no A record: no host serves the MTA-STS policy"])


# -- the lab as it is built

def test_the_policy_host_certificate_names_every_policy_host_name(lab_copy):
    store = lab_copy.hosts["lab-store"]
    cert, _ = access.https_certificate(lab_copy, store, store.vars["https_names"])
    text = subprocess.run(["openssl", "x509", "-in", str(cert), "-noout", "-ext", "subjectAltName"],
                          capture_output=True, text=True, check=True).stdout
    assert "DNS:mta-sts.alpha.test, DNS:mta-sts.beta.test" in text


def test_the_policy_host_writes_policies_covering_the_new_estates_mx_hosts(lab_copy, tmp_path):
    """lab-store's setup writes the policies: run its commands with /etc/mta-sts in a folder here."""
    store = lab_copy.hosts["lab-store"]
    script = render(lab_copy, (BUILTIN / "roles/mta-sts/setup.sh").read_text(), store.vars, "setup.sh")
    writes = "\n".join(line for line in script.splitlines() if "/etc/mta-sts" in line and not line.startswith("#"))
    subprocess.run(["sh", "-eu", "-c", writes.replace("/etc/mta-sts", str(tmp_path))], check=True)
    for name in ("mta-sts.alpha.test", "mta-sts.beta.test"):
        text = (tmp_path / f"{name}.txt").read_bytes().decode()
        assert text.endswith("\r\n")
        policy = mtasts.Policy(name, *mtasts.parse_policy(text))
        assert mtasts.coverage_problems(policy, "enforce", MXS) == []


def test_the_dns_publishes_mta_sts_and_tls_rpt_after_the_cut_over_only(lab_copy):
    dns_host = lab_copy.hosts["lab-dns"]
    conf = render(lab_copy, (BUILTIN / "roles/dns/files/etc/unbound/unbound.conf.d/lab.conf.tmpl").read_text(),
                  {**dns_host.vars, "dkim_public_keys": {}}, "lab.conf.tmpl")
    before, after = conf.split('name: "after-cutover"')
    assert "mta-sts" not in before and "_smtp._tls" not in before
    store = lab_copy.hosts["lab-store"].address
    for domain in ("alpha.test", "beta.test"):
        assert f'local-data: "mta-sts.{domain}. A {store}"' in after
        assert re.search(rf"local-data: '_mta-sts\.{domain}\. TXT \"v=STSv1; id=[A-Za-z0-9]{{1,32}}\"'", after)
        assert f"local-data: '_smtp._tls.{domain}. TXT \"v=TLSRPTv1; rua=mailto:tls-reports@alpha.test\"'" in after


# -- the lab (run by whoever runs the lab tests)

def test_in_the_lab_the_new_estate_passes_and_the_old_one_declares_neither(lab):
    result = run_mxspec_pytest("--hosts=old-mx,new-mx", "-k", "mtasts or tlsrpt", "-rs", "-p", "no:cacheprovider")
    text = output(result)
    assert result.returncode == 0 and "2 passed, 2 skipped" in result.stdout, text
    assert "estate old-mx publishes no MTA-STS policy (mta_sts_mode not set)" in result.stdout, text
    assert "estate old-mx asks for no TLS reports (tls_rpt_address not set)" in result.stdout, text


def test_a_policy_host_silent_once_is_not_waited_for_again(lab_copy):
    """A policy host that did not answer within the bound fails the next domain's fetch at once."""
    import time

    from silent import silent_server

    subject = Subject(Target(Estate(name="lab", path="test.yml", vars={}, hosts={})),
                      ConnectionPool(connect_timeout=1, command_timeout=1), 1, [])
    resolver = RecordedDns({"mta-sts.alpha.test": {"A": [LOOPBACK]}, "mta-sts.beta.test": {"A": [LOOPBACK]}})
    with silent_server(LOOPBACK) as port:
        _, first = mtasts.policies(subject, resolver, "alpha.test", ca_of(lab_copy), port)
        started = time.monotonic()
        _, second = mtasts.policies(subject, resolver, "beta.test", ca_of(lab_copy), port)
    assert len(first) == 1 and "within 1 s" in first[0], first
    assert time.monotonic() - started < 0.5
    assert len(second) == 1 and "did not answer earlier in this run" in second[0], second
