"""A DNS server or SMTP endpoint that did not answer is remembered for the run: later probes fail at once.

Small local servers stand in for the dead dependency: a UDP socket that never replies (a DNS
server that is down), a TCP listener whose queue is full and never accepts (an SMTP endpoint
that does not answer: the connection is never made), and one that accepts and never greets.
"""

import contextlib
import socket
import time

import pytest

from mxspec.checks import dnschecks, smtpchecks
from mxspec.checks.mailhost import MailHost, Subject
from mxspec.core.errors import DependencyDown
from mxspec.estate.inventory import Estate, Host
from mxspec.estate.target import Target
from mxspec.transport.connection import ConnectionPool
from mxspec.transport.smtp import SmtpTimeout
from silent import silent_server

LOOPBACK = "127.0.0.1"


@pytest.fixture
def pool():
    pool = ConnectionPool(connect_timeout=2, command_timeout=2)
    yield pool
    pool.close()


@contextlib.contextmanager
def mute_dns_server():
    """A UDP socket on a free port that reads nothing and answers nothing."""
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind((LOOPBACK, 0))
    try:
        yield server.getsockname()[1]
    finally:
        server.close()


@contextlib.contextmanager
def full_listener():
    """A TCP listener whose accept queue is full and never drained: a new connection is never made."""
    server = socket.socket()
    server.bind((LOOPBACK, 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = []
    try:
        for _ in range(4):  # enough to fill the queue whatever the kernel rounds a backlog of 0 to
            filler = socket.socket()
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect((LOOPBACK, port))
            fillers.append(filler)
        time.sleep(0.2)
        yield port
    finally:
        for filler in fillers:
            filler.close()
        server.close()


def estate(variables: dict) -> Estate:
    return Estate(name="lab", path="test.yml", vars=variables, hosts={})


def test_a_dns_server_that_did_not_answer_fails_later_queries_at_once(pool):
    with mute_dns_server() as port:
        subject = Subject(Target(estate({"dns_server": LOOPBACK, "dns_port": port})), pool, 1, [])
        pool.silences.scenario = "MX records [lab]"
        started = time.monotonic()
        with pytest.raises(DependencyDown, match=rf"DNS server {LOOPBACK} port {port} did not answer alpha.test. MX "
                                                 r"within 1 s") as first:
            dnschecks.Dns.of(subject).query("alpha.test", "MX")
        assert time.monotonic() - started >= 0.9
        pool.silences.scenario = "SPF records [lab]"
        started = time.monotonic()
        with pytest.raises(DependencyDown) as later:
            dnschecks.Dns.of(subject).query("beta.test", "TXT")
        assert time.monotonic() - started < 0.1
        assert str(later.value) == (f"DNS server {LOOPBACK} port {port} did not answer earlier in this run "
                                    f"(at MX records [lab]): {first.value}")
        assert later.value.endpoint == first.value.endpoint


def mailhost(pool: ConnectionPool, port: int) -> MailHost:
    host = Host(name="mx-1", estate="lab", where="test.yml:1", roles=["inbound"],
                vars={"smtp_address": LOOPBACK, "ansible_connection": "local"})
    return MailHost(Target(estate({}), host), pool, 1, [])


def test_an_smtp_endpoint_that_made_no_connection_fails_later_probes_at_once(pool):
    client = smtpchecks.Client("from the test")
    with full_listener() as port:
        host = mailhost(pool, port)
        with pytest.raises(DependencyDown, match=rf"SMTP {LOOPBACK}:{port} did not answer \(no connection within 1 s\)"):
            smtpchecks.ehlo_extensions(host, client, port=port)
        started = time.monotonic()
        with pytest.raises(DependencyDown, match=rf"SMTP {LOOPBACK}:{port} did not answer earlier in this run"):
            smtpchecks.ehlo_extensions(host, client, port=port)
        assert time.monotonic() - started < 0.1
        # Another port of the same address is another endpoint: asked, not refused from memory.
        with silent_server(LOOPBACK) as other, pytest.raises(SmtpTimeout):
            smtpchecks.ehlo_extensions(host, client, port=other)


def test_a_server_that_connects_but_does_not_greet_is_asked_again(pool):
    client = smtpchecks.Client("from the test")
    with silent_server(LOOPBACK) as port:
        host = mailhost(pool, port)
        for _ in range(2):  # a slow greeting fails its probe; it is not a dead endpoint
            started = time.monotonic()
            with pytest.raises(SmtpTimeout, match=rf"{LOOPBACK}:{port} did not greet within 1 s"):
                smtpchecks.ehlo_extensions(host, client, port=port)
            assert time.monotonic() - started >= 0.9
    assert pool.silences.known == {}
