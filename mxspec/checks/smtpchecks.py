"""Checks made over SMTP from the machine running mxspec, against a host of the estate."""

import contextlib
import ssl
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from mxspec.checks import maillog
from mxspec.checks.mailhost import MailHost, Subject
from mxspec.core.errors import DependencyDown, HostUnreachable
from mxspec.core.waiting import poll
from mxspec.transport.smtp import Reply, Session, client_context, converse

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
ID_HEADER = "X-Mxspec-Id"
PROBE_DOMAIN = "mxspec.probe"  # right-hand side of every probe's Message-ID


@dataclass
class Client:
    """Where mxspec's SMTP client connects from, as the scenario says."""

    description: str
    source: str | None = None


@dataclass
class SentMessage:
    id: str
    sender: str
    recipient: str
    reply: Reply

    @property
    def message_id(self) -> str:
        """The Message-ID header's value, without angle brackets (see build_message)."""
        return f"{self.id}@{PROBE_DOMAIN}"


@contextlib.contextmanager
def session(host: Subject, client: Client, port: int = 25, bound: float | None = None,
            address: str | None = None) -> Iterator[Session]:
    """An SMTP session with the host (or with `address`: where DNS says it is, or its IPv6 address)
    whose transcript joins the evidence, whatever the outcome."""
    if address is None:
        assert isinstance(host, MailHost), "an SMTP session for an estate says which address it is with"
        address = host.address
    smtp = Session(address, port, host.timeout if bound is None else bound, client.source)
    silences = host.pool.silences
    silences.check(smtp.endpoint)  # silent earlier in the run: fail now, not after another bound
    try:
        yield smtp
    except DependencyDown as error:
        silences.remember(error.endpoint, str(error))
        raise
    finally:
        host.evidence.extend(smtp.transcript)


def rcpt_replies(host: MailHost, client: Client, rows: list[dict]) -> None:
    """For each row: MAIL FROM sender, RCPT TO recipient, compare the reply, RSET. Nothing is sent."""

    async def conversation(s: Session) -> list[tuple[dict, Reply]]:
        await s.ehlo()
        seen = []
        for row in rows:
            mail = await s.command(f"MAIL FROM:<{row['sender']}>")
            reply = await s.command(f"RCPT TO:<{row['recipient']}>") if mail.code == 250 else mail
            seen.append((row, reply))
            await s.command("RSET")
        return seen

    with session(host, client) as smtp:
        seen = converse(smtp, conversation, f"host {host.name}: RCPT probe")
    wrong = [f"{row['sender']} -> {row['recipient']}: expected {row['reply']}, got {reply}"
             for row, reply in seen if not reply.matches(row["reply"])]
    if wrong:
        raise AssertionError(f"host {host.name} answered {client.description} differently:\n  " + "\n  ".join(wrong))


def greeting(host: MailHost, client: Client, bound: float, address: str | None = None,
             what: str = "SMTP greeting") -> tuple[Reply, float]:
    """The server's 220 greeting (at `address`, else where the host's probes go) and how long it
    took, within `bound` seconds."""
    started = time.monotonic()

    async def conversation(s: Session) -> None:
        return None

    with session(host, client, bound=bound, address=address) as smtp:
        converse(smtp, conversation, f"host {host.name}: {what}")
    banner = next((line for line in smtp.transcript if line.startswith("S: ")), "S: 000 (none)")
    code, _, text = banner[3:].partition(" ")
    return Reply(int(code), text), time.monotonic() - started


def announced_size_reply(host: MailHost, client: Client, size: int, sender: str) -> Reply:
    async def conversation(s: Session) -> Reply:
        extensions = await s.ehlo()
        if "SIZE" not in extensions:
            raise AssertionError(f"host {host.name} does not announce SIZE in its EHLO reply")
        reply = await s.command(f"MAIL FROM:<{sender}>", f"SIZE={size}")
        await s.command("RSET")
        return reply

    with session(host, client) as smtp:
        return converse(smtp, conversation, f"host {host.name}: SIZE probe")


def ehlo_extensions(host: MailHost, client: Client, port: int = 25) -> dict:
    async def conversation(s: Session) -> dict:
        return await s.ehlo()

    with session(host, client, port) as smtp:
        return converse(smtp, conversation, f"host {host.name}: EHLO")


def starttls(host: Subject, context: ssl.SSLContext, server_name: str, port: int = 25,
             after: Callable[[Session], Awaitable[Any]] | None = None,
             address: str | None = None) -> tuple[dict, str, dict, Any]:
    """EHLO, STARTTLS with `context`, EHLO again; returns (extensions before TLS, tls version,
    extensions after TLS, after()). With `address`: at that address (an MX host by its name)."""
    who = f"host {host.name}" if address is None else f"{server_name} ({address})"

    async def conversation(s: Session) -> tuple[dict, str, dict, Any]:
        before = await s.ehlo()
        if "STARTTLS" not in before:
            raise AssertionError(f"{who} does not offer STARTTLS on port {port}")
        await s.starttls(context, server_name)
        extensions = await s.ehlo()
        version = s.client.get_transport_info("ssl_object").version()
        extra = await after(s) if after else None
        return before, version, extensions, extra

    with session(host, Client("a TLS client"), port, address=address) as smtp:
        return converse(smtp, conversation, f"{who}: STARTTLS on port {port}")


def tls_refused_for(host: MailHost, maximum: ssl.TLSVersion, server_name: str) -> str:
    """Try STARTTLS with a client capped at `maximum`; return why it failed, or fail the check."""
    try:
        _, version, _, _ = starttls(host, client_context(None, maximum), server_name)
    except ssl.SSLError as error:
        return error.reason or str(error)
    except AssertionError as error:
        if "STARTTLS" in str(error) and "does not offer" in str(error):
            raise
        return str(error)
    raise AssertionError(f"host {host.name} accepted a client limited to {maximum.name} ({version})")


def build_message(kind: str, sender: str, recipient: str) -> tuple[str, bytes]:
    probe_id = uuid.uuid4().hex
    message = EmailMessage()
    message["From"], message["To"] = sender, recipient
    message["Subject"] = f"mxspec probe {probe_id}"
    message[ID_HEADER] = probe_id
    message["Message-ID"] = f"<{probe_id}@{PROBE_DOMAIN}>"
    if kind == "spam":
        message.set_content(f"This message carries the GTUBE spam test pattern.\n\n{GTUBE}\n")
    else:
        message.set_content("A message from mxspec, the mail estate's acceptance suite.\n")
    if kind == "virus":
        message.add_attachment(EICAR, maintype="application", subtype="octet-stream", filename="eicar.com")
    return probe_id, message.as_bytes()


def send(host: MailHost, client: Client, kind: str, sender: str, recipient: str) -> SentMessage:
    """Deliver one message (MAIL, RCPT, DATA); the reply to the last step reached is kept."""
    probe_id, data = build_message(kind, sender, recipient)

    async def conversation(s: Session) -> Reply:
        await s.ehlo()
        for command in (f"MAIL FROM:<{sender}>", f"RCPT TO:<{recipient}>"):
            reply = await s.command(command)
            if reply.code != 250:
                await s.command("RSET")
                return reply
        return await s.data(data)

    with session(host, client) as smtp:
        reply = converse(smtp, conversation, f"host {host.name}: sending {kind} message")
    return SentMessage(probe_id, sender, recipient, reply)


def wait_in_mailstore(store: MailHost, root: str, message: SentMessage, seconds: float,
                      entry: MailHost | None = None) -> str | None:
    """The delivered copy of `message` (its text), found by its id and then removed; None if absent.

    With `entry` (the host the message was sent to), the wait ends at once when that host's mail
    log says the message was deferred or bounced there.
    """
    local, domain = message.recipient.split("@", 1)
    folder = f"{root}/{domain}/{local}"
    watched = [entry] if entry is not None else []

    def delivered() -> str | None:
        for host in watched:
            try:
                maillog.held_on_the_way(host, message.message_id)
            except HostUnreachable:  # its log cannot be read: the mailstore alone answers, within the bound
                watched.clear()
        found = store.run(f"grep -rlF '{ID_HEADER}: {message.id}' {folder}/new {folder}/cur 2>/dev/null | head -n 1")
        path = found.stdout.strip()
        if not path:
            return None
        text = str(store.run(f"cat {path}").stdout)
        store.run(f"rm -f {path}")
        store.evidence.append(f"-- delivered to {store.name}:{path}")
        return text

    return poll(seconds, delivered)


def headers_of(text: str) -> list[str]:
    head = text.split("\n\n", 1)[0]
    unfolded = head.replace("\n ", " ").replace("\n\t", " ")
    return unfolded.splitlines()
