"""SMTP conversations with a host, bounded in time, with a transcript for the report.

Probes stop before DATA (MAIL, RCPT, then RSET and QUIT) so they deliver nothing. Every
exchange is recorded as `C:`/`S:` lines; AUTH arguments are never written down.
"""

import asyncio
import base64
import errno
import hashlib
import os
import ssl
import sys
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import aiosmtplib

from mxspec.core.errors import BehaviourFailed, DependencyDown, MxspecError

T = TypeVar("T")


class SmtpTimeout(BehaviourFailed):
    """The server did not answer within the bound: the behaviour failed (the transcript is the evidence)."""


@dataclass
class Reply:
    code: int
    message: str

    def matches(self, expected: str) -> bool:
        """`expected` is a code, optionally followed by the start of the enhanced status ("550 5.1.1")."""
        text = f"{self.code} {self.message}"
        return text.startswith(expected.strip())

    def __str__(self) -> str:
        return f"{self.code} {self.message}"


@dataclass
class Session:
    """One SMTP conversation; `transcript` keeps every line exchanged (AUTH redacted)."""

    address: str
    port: int
    timeout: float
    source: str | None = None
    helo: str = "mxspec.probe"
    transcript: list[str] = field(default_factory=list)
    smtp: aiosmtplib.SMTP | None = None

    async def open(self) -> Reply:
        self.smtp = aiosmtplib.SMTP(hostname=self.address, port=self.port, timeout=self.timeout,
                                    start_tls=False, local_hostname=self.helo,
                                    source_address=(self.source, 0) if self.source else None)
        self.transcript.append(f"-- connect {self.where}"
                               + (f" from {self.source}" if self.source else ""))
        banner = await self.smtp.connect()
        return self._got(banner)

    @property
    def where(self) -> str:
        """address:port, an IPv6 address in brackets ([2001:db8::25]:25) so the port stays apart."""
        return f"[{self.address}]:{self.port}" if ":" in self.address else f"{self.address}:{self.port}"

    @property
    def endpoint(self) -> str:
        """What the run remembers if it does not answer (transport/silence.py)."""
        return f"SMTP {self.where}"

    @property
    def client(self) -> aiosmtplib.SMTP:
        """The open SMTP client (after `open()`)."""
        if self.smtp is None:
            raise RuntimeError("the SMTP session is not open")
        return self.smtp

    def _got(self, response: aiosmtplib.SMTPResponse) -> Reply:
        return self._reply(response.code, response.message)

    def _reply(self, code: int, message: str) -> Reply:
        for line in message.splitlines() or [""]:
            self.transcript.append(f"S: {code} {line}")
        return Reply(code, " ".join(message.split()))

    async def command(self, *words: str, shown: str | None = None) -> Reply:
        self.transcript.append("C: " + (shown or " ".join(words)))
        response = await self.client.execute_command(*(w.encode() for w in words))
        return self._got(response)

    async def ehlo(self) -> dict:
        self.transcript.append(f"C: EHLO {self.helo}")
        response = await self.client.ehlo()
        self._got(response)
        return {name.upper(): value for name, value in self.client.esmtp_extensions.items()}

    async def starttls(self, context: ssl.SSLContext, server_name: str) -> Reply:
        self.transcript.append("C: STARTTLS")
        response = await self.client.starttls(tls_context=context, server_hostname=server_name)
        reply = self._got(response)
        tls = self.client.get_transport_info("ssl_object")
        self.transcript.append(f"-- TLS {tls.version()} {tls.cipher()[0]}")
        return reply

    async def auth_plain(self, user: str, password: str) -> Reply:
        token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
        return await self.command("AUTH", "PLAIN", token, shown="AUTH PLAIN [redacted]")

    async def data(self, message: bytes) -> Reply:
        self.transcript.append(f"C: DATA ({len(message)} bytes)")
        try:
            response = await self.client.data(message)
        except aiosmtplib.SMTPDataError as error:
            return self._reply(error.code, error.message)
        return self._got(response)

    async def close(self) -> None:
        if self.smtp is not None and self.smtp.is_connected:
            try:
                await self.command("QUIT")
            except aiosmtplib.SMTPException:
                self.smtp.close()


def converse(session: Session, conversation: Callable[[Session], Awaitable[T]], what: str) -> T:
    """Run `conversation(session)` (a coroutine function) within the session's time bound."""

    async def bounded() -> T:
        try:
            return await asyncio.wait_for(_run(), timeout=session.timeout * 3)
        finally:
            if session.smtp is not None:
                session.smtp.close()

    async def _run() -> T:
        try:
            await session.open()
            result = await conversation(session)
            await session.close()
            return result
        except aiosmtplib.SMTPConnectTimeoutError as error:
            if isinstance(error.__cause__, aiosmtplib.SMTPTimeoutError):  # connected, but no greeting in time
                raise SmtpTimeout(f"{what}: {session.where} did not greet within "
                                  f"{session.timeout:g} s") from None
            raise DependencyDown(session.endpoint, f"{what}: {session.endpoint} did not answer (no connection "
                                                   f"within {session.timeout:g} s)") from None
        except (TimeoutError, aiosmtplib.SMTPTimeoutError):
            raise SmtpTimeout(f"{what}: {session.where} did not answer within "
                              f"{session.timeout:g} s") from None

    try:
        return asyncio.run(bounded())
    except TimeoutError:
        raise SmtpTimeout(f"{what}: {session.where} did not finish within "
                          f"{session.timeout * 3:g} s") from None
    except (aiosmtplib.SMTPConnectError, aiosmtplib.SMTPServerDisconnected, OSError) as error:
        if _no_route(error):  # the runner's network lacks the way there (e.g. no IPv6): not the host's failing
            raise MxspecError(f"{what}: this machine has no route to {session.where} ({error}): "
                              "give the machine running mxspec a way to that network") from None
        raise BehaviourFailed(f"{what}: {session.where}: {error}") from None


def _no_route(error: BaseException | None) -> bool:
    """Whether connecting failed on this machine before reaching the network: no route, no source address."""
    while error is not None:
        if isinstance(error, OSError) and error.errno in (errno.ENETUNREACH, errno.EADDRNOTAVAIL):
            return True
        error = error.__cause__ or error.__context__
    return False


# TLS client contexts made so far in this process, by kind. Making one that trusts the system's
# CAs reads and parses the whole bundle (~20 ms of CPU); a run made one for every probe, one of
# the largest costs of a run over hundreds of hosts. A context is only read once made, so one
# per kind serves every probe; one that trusts a CA file is made anew when the file's content
# changes (its digest is part of what the entry was made from).
_CONTEXTS: dict[tuple, tuple[str, ssl.SSLContext]] = {}


def _made_once(kind: tuple, made_from: str, make: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
    known = _CONTEXTS.get(kind)
    if known is None or known[0] != made_from:
        known = _CONTEXTS[kind] = (made_from, make())
    return known[1]


def _content(path: str | None) -> str:
    """What tells one version of a CA file from the next: its digest (the file is small)."""
    if path is None:
        return ""
    try:
        with open(path, "rb") as file:
            return hashlib.sha256(file.read()).hexdigest()
    except OSError:
        return "unreadable"  # ssl says what is wrong with it, when the context is made


def client_context(ca_file: str | None, maximum: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    """A TLS client context trusting the estate's CA; `maximum` caps the version (to probe refusals).

    The same context object for the same arguments (see _CONTEXTS): callers must not change it.
    """
    if maximum is not None:
        return _made_once(("capped", maximum), "", lambda: _capped_context(maximum))
    return _made_once(("trusting", ca_file), _content(ca_file), lambda: ssl.create_default_context(cafile=ca_file))


def unverified_context() -> ssl.SSLContext:
    """A TLS client context that verifies nothing: to read what a server presents, whoever signed it."""
    return _made_once(("unverified",), "", _unverified_context)


def _unverified_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # the secure defaults, no CA to load
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    keylog = os.environ.get("SSLKEYLOGFILE")  # as create_default_context honours it, for debugging
    if keylog and not sys.flags.ignore_environment:
        context.keylog_filename = keylog
    return context


def _capped_context(maximum: ssl.TLSVersion) -> ssl.SSLContext:
    context = _unverified_context()  # the probe asks what versions are accepted, not who signed
    with warnings.catch_warnings():  # old versions are deprecated: offering them is the point
        warnings.simplefilter("ignore", DeprecationWarning)
        context.maximum_version = maximum
        context.minimum_version = ssl.TLSVersion.TLSv1
    context.set_ciphers("DEFAULT:@SECLEVEL=0")  # let an old protocol be offered at all
    return context
