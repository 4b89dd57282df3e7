"""Outbound steps: submission with STARTTLS and AUTH, and DKIM signatures on mail that leaves."""


import pytest
from pytest_bdd import given, parsers, then

from mxspec.checks import smtpchecks
from mxspec.checks.dkimcheck import verify_dkim
from mxspec.checks.mailhost import MailHost
from mxspec.checks.smtpchecks import SentMessage
from mxspec.steps.phrases import TYPES
from mxspec.transport.smtp import Reply, Session


@given("the estate offers submission with authentication")
def offers_submission(mailhost: MailHost) -> None:
    """Skips the scenario where the inventory sets no `submission_port` for the host."""
    if not mailhost.setting("submission_port"):
        pytest.skip(f"host {mailhost.name} offers no submission service (submission_port not set)")


@then("on the submission port, AUTH is offered only after STARTTLS")
def auth_only_after_starttls(mailhost: MailHost) -> None:
    """EHLO before STARTTLS lists no AUTH; EHLO after it does."""
    port = mailhost.setting("submission_port")
    context = smtpchecks.client_context(mailhost.setting("tls_ca"))
    before, _, after, _ = smtpchecks.starttls(mailhost, context, mailhost.setting("smtp_name"), port)
    if "AUTH" in before:
        raise AssertionError(f"host {mailhost.name}: port {port} offers AUTH before STARTTLS ({before['AUTH']})")
    if "AUTH" not in after:
        raise AssertionError(f"host {mailhost.name}: port {port} offers no AUTH after STARTTLS")


@then(parsers.parse("on the submission port, a wrong password for the submission user is refused with {reply:Quoted}",
                    extra_types=TYPES))
def wrong_password_refused(mailhost: MailHost, reply: str) -> None:
    """AUTH PLAIN after STARTTLS as `submission_user` with a wrong password gets the reply (e.g. "535")."""
    port = mailhost.setting("submission_port")
    context = smtpchecks.client_context(mailhost.setting("tls_ca"))

    async def wrong_login(s: Session) -> Reply:
        return await s.auth_plain(mailhost.setting("submission_user"), "not-the-password-" + mailhost.name)

    *_, got = smtpchecks.starttls(mailhost, context, mailhost.setting("smtp_name"), port, after=wrong_login)
    if not got.matches(mailhost.value(reply)):
        raise AssertionError(f"host {mailhost.name}: wrong password answered {got}, expected {reply}")


@then(parsers.parse("it arrives at the remote peer within {seconds:Count} seconds, signed for its sender's "
                    "domain with a DKIM signature that verifies against the estate's DNS", extra_types=TYPES))
def arrives_signed(mailhost: MailHost, sent: SentMessage, seconds: str) -> None:
    """The copy at the remote peer (`remote_mailstore`) carries a DKIM signature for the sender's domain
    (d=) that verifies with the key the estate's DNS server publishes."""
    if sent.reply.code != 250:
        raise AssertionError(f"host {mailhost.name}: message refused: {sent.reply}")
    peer = mailhost.other_host("remote_mailstore")
    text = smtpchecks.wait_in_mailstore(peer, peer.value("{{ maildir_root }}"), sent, float(mailhost.value(seconds)),
                                        entry=mailhost)
    if text is None:
        raise AssertionError(f"message {sent.id} did not reach {sent.recipient} within {mailhost.value(seconds)} s")
    verify_dkim(mailhost, text, sent.sender.split("@", 1)[1])
