"""SMTP steps: what the host answers a client, what it offers, and what happens to mail sent to it."""


import ssl

import pytest
from pytest_bdd import given, parsers, then, when

from mxspec.checks import certificates, hostchecks, maillog, smtpchecks
from mxspec.checks.mailhost import MailHost
from mxspec.checks.smtpchecks import Client, SentMessage
from mxspec.steps.phrases import TYPES

CLIENTS = {"outside the estate": "outside_client", "on an authorised network": "trusted_client"}


@pytest.fixture
def smtp_client(mailhost: MailHost) -> Client:
    """Unless a scenario says otherwise, mxspec speaks SMTP as a client outside the estate."""
    return Client("a client outside the estate", mailhost.setting("outside_client"))


@given(parsers.parse("an SMTP client {where}"), target_fixture="smtp_client")
def an_smtp_client(mailhost: MailHost, where: str) -> Client:
    """Where the SMTP client connects from: "outside the estate" or "on an authorised network"."""
    if where not in CLIENTS:
        raise AssertionError(f'unknown client "{where}"; say one of: {", ".join(CLIENTS)}')
    return Client(f"a client {where}", mailhost.setting(CLIENTS[where]))


@then("each recipient gets the expected reply:")
def recipients_replies(mailhost: MailHost, smtp_client: Client, datatable: list[list[str]]) -> None:
    """Columns sender, recipient, reply ("250", "550 5.1.1"): MAIL and RCPT only, then RSET; nothing is sent."""
    smtpchecks.rcpt_replies(mailhost, smtp_client, mailhost.table(datatable))


@then(parsers.parse("a message announced as {size:Count} bytes is refused with {reply:Quoted}", extra_types=TYPES))
def announced_size_refused(mailhost: MailHost, smtp_client: Client, size: str, reply: str) -> None:
    """MAIL FROM with SIZE=size gets the reply (e.g. "552 5.3.4"); nothing is sent."""
    got = smtpchecks.announced_size_reply(mailhost, smtp_client, int(mailhost.value(size)),
                                          mailhost.setting("test_sender"))
    if not got.matches(mailhost.value(reply)):
        raise AssertionError(f"host {mailhost.name}: MAIL FROM with SIZE={mailhost.value(size)}: "
                             f"expected {mailhost.value(reply)}, got {got}")


@then(parsers.parse("EHLO offers {extensions:QuotedList}", extra_types=TYPES))
def ehlo_offers(mailhost: MailHost, smtp_client: Client, extensions: list[str]) -> None:
    """The EHLO reply on port 25 lists each of these extensions."""
    offered = smtpchecks.ehlo_extensions(mailhost, smtp_client)
    missing = [e for e in extensions if e.upper() not in offered]
    if missing:
        raise AssertionError(f"host {mailhost.name}: EHLO does not offer {', '.join(missing)}; "
                             f"it offers {', '.join(sorted(offered))}")


@then("STARTTLS gives a certificate for the host's name, signed by the estate's CA")
def starttls_certificate(mailhost: MailHost) -> None:
    """The certificate verifies against `tls_ca` and names `smtp_name`."""
    context = smtpchecks.client_context(mailhost.setting("tls_ca"))
    try:
        smtpchecks.starttls(mailhost, context, mailhost.setting("smtp_name"))
    except ssl.SSLError as error:
        raise AssertionError(f"host {mailhost.name}: certificate not valid for "
                             f"{mailhost.setting('smtp_name')}: {error.reason or error}") from None


@then("every certificate the host presents with STARTTLS stays valid for the estate's margin and matches Postfix's key")
def certificates_valid_and_matching(mailhost: MailHost) -> None:
    """Port 25 and `submission_port`: valid `certificate_margin_days` more days, its key that of smtpd_tls_key_file."""
    ports = [25] + ([int(mailhost.setting("submission_port"))] if mailhost.setting("submission_port") else [])
    certificates.certificates_valid_and_matching(mailhost, ports, mailhost.setting("certificate_margin_days"))


@then("a client limited to TLS 1.1 cannot start TLS")
def old_tls_refused(mailhost: MailHost) -> None:
    """STARTTLS fails for a client that offers TLS 1.1 at most."""
    why = smtpchecks.tls_refused_for(mailhost, ssl.TLSVersion.TLSv1_1, mailhost.setting("smtp_name"))
    mailhost.evidence.append(f"-- TLS 1.1 client refused: {why}")


@given("the estate requires TLS 1.2 or newer")
def estate_requires_tls12(mailhost: MailHost) -> None:
    """Skips the scenario unless the inventory's `tls_minimum` is TLSv1.2 or TLSv1.3."""
    if str(mailhost.setting("tls_minimum") or "") not in ("TLSv1.2", "TLSv1.3"):
        pytest.skip(f"estate {mailhost.target.estate.name} does not require TLS 1.2 (tls_minimum not set)")


@when(parsers.parse("{kind:MessageKind} is sent to {recipient:Quoted}", extra_types=TYPES),
      target_fixture="sent")
def message_sent(mailhost: MailHost, smtp_client: Client, kind: str, recipient: str) -> SentMessage:
    """Sends one message ("a clean message", "... EICAR test virus ...", "... GTUBE ...") from `test_sender`."""
    return smtpchecks.send(mailhost, smtp_client, kind, mailhost.setting("test_sender"), mailhost.value(recipient))


@when(parsers.parse("{kind:MessageKind} from {sender:Quoted} is sent to {recipient:Quoted}", extra_types=TYPES),
      target_fixture="sent")
def message_sent_from(mailhost: MailHost, smtp_client: Client, kind: str, sender: str, recipient: str) -> SentMessage:
    """Sends one message of that kind from the given sender to a test recipient."""
    return smtpchecks.send(mailhost, smtp_client, kind, mailhost.value(sender), mailhost.value(recipient))


@then(parsers.parse("the message is refused with {reply:Quoted}", extra_types=TYPES))
def message_refused(mailhost: MailHost, sent: SentMessage, reply: str) -> None:
    """The message was refused (at RCPT or after DATA) with this reply, e.g. "5" or "550 5.7.1"."""
    if not sent.reply.matches(reply):
        cleanup = ""
        if sent.reply.code == 250 and mailhost.has("mailstore"):
            # Accepted after all: find the copy and remove it, so the mailbox keeps no probe.
            store = mailhost.other_host("mailstore")
            found = smtpchecks.wait_in_mailstore(store, store.value("{{ maildir_root }}"), sent, 30)
            cleanup = " (the delivered copy was removed)" if found else " (no copy found in the mailstore)"
        raise AssertionError(f"host {mailhost.name}: expected the message to be refused with {reply}, "
                             f"got {sent.reply}{cleanup}")


@then("the message is accepted")
def message_accepted(mailhost: MailHost, sent: SentMessage) -> None:
    """The reply after DATA is 250."""
    if sent.reply.code != 250:
        raise AssertionError(f"host {mailhost.name}: message refused: {sent.reply}")


@then(parsers.parse("it arrives in the mailstore within {seconds:Count} seconds with these headers:",
                    extra_types=TYPES))
def arrives_with_headers(mailhost: MailHost, sent: SentMessage, seconds: str, datatable: list[list[str]]) -> None:
    """The copy in the mailstore (`mailstore`) has each header (column `header`: a name, or "Name: value")."""
    text = _delivered(mailhost, sent, seconds)
    missing = [row["header"] for row in mailhost.table(datatable)
               if not any(line.lower().startswith(row["header"].lower()) for line in smtpchecks.headers_of(text))]
    if missing:
        raise AssertionError(f"message {sent.id} arrived without: {', '.join(missing)}\nits headers:\n"
                             + "\n".join(smtpchecks.headers_of(text)))


@then(parsers.parse("it is refused, or arrives in the mailstore within {seconds:Count} seconds marked as spam",
                    extra_types=TYPES))
def refused_or_marked_spam(mailhost: MailHost, sent: SentMessage, seconds: str) -> None:
    """Spam never arrives unmarked: refused with 5xx, or delivered with a `spam_mark` header."""
    if sent.reply.code >= 500:
        return
    if sent.reply.code != 250:
        raise AssertionError(f"host {mailhost.name}: neither refused nor accepted: {sent.reply}")
    text = _delivered(mailhost, sent, seconds)
    mark = mailhost.setting("spam_mark")
    if not any(line.lower().startswith(mark.lower()) for line in smtpchecks.headers_of(text)):
        raise AssertionError(f"message {sent.id} was delivered without '{mark}'")


def _delivered(mailhost: MailHost, sent: SentMessage, seconds: str) -> str:
    if sent.reply.code != 250:
        raise AssertionError(f"host {mailhost.name}: message refused: {sent.reply}")
    store = mailhost.other_host("mailstore")
    text = smtpchecks.wait_in_mailstore(store, store.value("{{ maildir_root }}"), sent, float(mailhost.value(seconds)),
                                        entry=mailhost)
    if text is None:
        raise AssertionError(f"message {sent.id} to {sent.recipient} did not arrive in the mailstore "
                             f"({store.name}) within {mailhost.value(seconds)} s")
    return text


@then(parsers.parse("the SMTP greeting arrives within {seconds:Count} seconds and names the host", extra_types=TYPES))
def greeting_in_time(mailhost: MailHost, smtp_client: Client, seconds: str) -> None:
    """A simple query answered: the 220 banner comes within the bound and carries `smtp_name`."""
    bound, name = float(mailhost.value(seconds)), mailhost.setting("smtp_name")
    banner, elapsed = smtpchecks.greeting(mailhost, smtp_client, bound)
    if banner.code != 220 or name not in banner.message:
        raise AssertionError(f"host {mailhost.name}: greeting '{banner}' does not name {name}")
    mailhost.evidence.append(f"-- greeting after {elapsed * 1000:.0f} ms")


@given("the inventory gives the host an IPv6 address")
def host_has_ipv6(mailhost: MailHost) -> None:
    """Skips the scenario unless the inventory gives the host an `ipv6_address`."""
    if not mailhost.setting("ipv6_address"):
        pytest.skip(f"host {mailhost.name} has no IPv6 address (ipv6_address not set)")


@then("a client connecting to that address over IPv6 is greeted in the host's name")
def greeted_over_ipv6(mailhost: MailHost) -> None:
    """Port 25 at `ipv6_address` answers with a 220 greeting carrying `smtp_name`, within the run's bound."""
    address, name = mailhost.setting("ipv6_address"), mailhost.setting("smtp_name")
    # No source address: `outside_client` is an IPv4 address; the machine picks its own IPv6 one.
    banner, elapsed = smtpchecks.greeting(mailhost, Client("a client over IPv6"),
                                         mailhost.timeout, address, "does not answer SMTP over IPv6")
    if banner.code != 220 or name not in banner.message:
        raise AssertionError(f"host {mailhost.name}: greeting over IPv6 at {address} '{banner}' does not name {name}")
    mailhost.evidence.append(f"-- greeting over IPv6 after {elapsed * 1000:.0f} ms")


@when(parsers.parse("the service {service:Quoted} is stopped", extra_types=TYPES))
def service_stopped(mailhost: MailHost, request: pytest.FixtureRequest, service: str) -> None:
    """Stops the service on the host (@disruptive scenarios only); it is started again when the
    scenario ends, whatever happened, and mxspec waits until it runs."""
    name = mailhost.value(service)
    if request.node.get_closest_marker("disruptive") is None:
        raise AssertionError(f"stopping {name} is disruptive: tag the scenario @disruptive")
    request.addfinalizer(lambda: hostchecks.start_and_wait(mailhost, name))
    result = mailhost.run(f"service {name} stop")
    if result.rc != 0:
        raise AssertionError(f"host {mailhost.name}: could not stop {name}: {result.stderr.strip()}")


@then("a clean message to each recipient is relayed as the mail log shows:")
def relayed_as_logged(mailhost: MailHost, smtp_client: Client, datatable: list[list[str]]) -> None:
    """Columns recipient, relayed to: the host's own log (`mail_log`: journal or a file) shows each
    message's `to=` line with `relay=NEXT HOP` and `status=sent`; the copy is then removed from
    the `mailstore`, if it landed there."""
    seconds = mailhost.setting("delivery_seconds")
    store = mailhost.other_host("mailstore") if mailhost.has("mailstore") else None
    problems = []
    for row in mailhost.table(datatable):
        sent = smtpchecks.send(mailhost, smtp_client, "clean", mailhost.setting("test_sender"), row["recipient"])
        try:
            if sent.reply.code != 250:
                raise AssertionError(f"{row['recipient']}: message refused: {sent.reply}")
            maillog.wait_relayed(mailhost, sent.message_id, row["relayed to"], seconds)
        except AssertionError as problem:
            problems.append(str(problem))
        if store and sent.reply.code == 250:
            smtpchecks.wait_in_mailstore(store, store.value("{{ maildir_root }}"), sent, 5)
    if problems:
        raise AssertionError("\n".join(problems))
