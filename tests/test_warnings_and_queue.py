"""What the configuration-warning and deferred-queue checks read, without a lab: recorded mail log
lines (from the lab's hosts, with the warnings mxspec's own probes cause) and `postqueue -j` output."""

import subprocess
from types import SimpleNamespace

import pytest

from mxspec.checks import configwarnings, hostchecks, maillog

# Warnings mxspec's probes and fault tests left on the lab's healthy hosts: none is about the configuration.
CLIENT_NOISE = [
    "2026-11-25T16:18:25+0000 new-mx-in-1 postfix/smtpd[4121]: warning: TLS library problem: error:0A000102:"
    "SSL routines::unsupported protocol:../ssl/statem/statem_srvr.c:1664:",
    "2026-11-25T16:18:30+0000 new-out-1 postfix/submission/smtpd[77]: warning: unknown[10.213.0.1]: SASL PLAIN "
    "authentication failed: authentication failure, sasl_username=submitter@lab.test",
    "2026-11-25T16:18:30+0000 new-out-1 postfix/submission/smtpd[77]: warning: SASL authentication failure: "
    "Password verification failed",
    "Nov 25 16:44:14 old-mx-1 postfix/smtpd[9455]: warning: connect to Milter service inet:127.0.0.1:7357: "
    "Connection refused",
    "2026-11-25T16:49:10+0000 new-out-1 postfix/cleanup[812]: warning: 009931943A2: message rejected: hopcount exceeded",
    "Nov 25 16:50:01 old-mx-1 postfix/smtpd[9460]: warning: non-SMTP command from unknown[10.213.0.1]: GET / HTTP/1.1",
    "Nov 25 16:50:02 old-mx-1 postfix/smtpd[9460]: warning: Illegal address syntax from unknown[10.213.0.1] in MAIL "
    "command: <a b>",
    "Nov 25 16:50:03 old-mx-1 postfix/smtpd[9460]: warning: hostname probe.example does not resolve to address "
    "10.213.0.1: Name or service not known",
    # warnings that look like the configuration's and are a client's, a message's, a milter's
    "Nov 25 16:50:04 old-mx-1 postfix/smtpd[9460]: warning: valid_hostaddr: invalid octet value: 300.1.2.3",
    "Nov 25 16:50:05 old-mx-1 postfix/cleanup[9461]: warning: 4F1A2B3C5D: ignoring malformed Message-ID",
    'Nov 25 16:50:05 old-mx-1 postfix/cleanup[9461]: warning: 4F1A2B3C5D: Bad NOTIFY parameter from Milter or '
    'header/body_checks: "NEVER,SUCCESS"',
    "Nov 25 16:50:06 old-mx-1 postfix/smtpd[9460]: warning: unknown[10.213.0.1]: ignoring too long SNI hostname: x",
    # a fatal error is the fatal-error scenario's; another program's words about main.cf are not Postfix's
    "2026-11-25T17:00:29+0000 new-router-1 postfix/postmap[72258]: fatal: open database /etc/postfix/nonexist.db: "
    "No such file or directory",
    "2026-11-25T16:48:50+0000 new-router-1 lab-apply[31]: warning: /etc/postfix/main.cf changed, reloading",
]
CONFIGURATION = [
    "Nov 25 17:01:00 old-mx-1 postfix/trivial-rewrite[12]: warning: database /etc/postfix/transport.db is older "
    "than source file /etc/postfix/transport",
    '2026-11-25T17:01:00+0000 new-router-1 postfix/smtpd[13]: using backwards-compatible default setting '
    'relay_domains=$mydestination to accept mail for domain "alpha.test"',
    "2026-11-25T17:01:00+0000 new-mx-in-1 postfix/smtpd[14]: warning: hash:/etc/postfix/virtual is unavailable. "
    "open database /etc/postfix/virtual.db: No such file or directory",
    '2026-11-25T17:01:00+0000 new-out-1 postfix/smtpd[15]: warning: cannot get RSA certificate from file '
    '"/etc/ssl/lab/gone.pem": disabling TLS support',
    "Nov 25 17:01:00 old-mx-1 postfix/postfix-script[16]: warning: /var/spool/postfix/etc/resolv.conf and "
    "/etc/resolv.conf differ",
    "2026-11-25T17:01:00+0000 new-out-1 postfix-out/master[17]: warning: duplicate master.cf entry for service "
    '"smtp" (25) -- using the last entry',
    '2026-11-25T17:01:00+0000 new-mx-in-1 postfix/smtpd[18]: warning: unknown smtpd restriction: "reject_unknwon_client"',
    "2026-11-25T17:01:00+0000 new-router-1 postfix/trivial-rewrite[19]: warning: /etc/postfix/transport, line 3: "
    "expected format: key whitespace value -- ignoring this line",
    "Nov 25 17:01:00 old-mx-1 postfix/smtpd[20]: warning: ignoring non-empty smtpd_helo_restrictions setting "
    "behind postscreen",
]
POSTCONF_STDERR = ("postconf: warning: /etc/postfix/main.cf, line 37: overriding earlier entry: compatibility_level=3.6\n"
                   "postconf: warning: /etc/postfix/main.cf, line 37: overriding earlier entry: compatibility_level=3.6\n"
                   "postconf: warning: /etc/postfix/main.cf: unused parameter: smtpd_tls_securty_level=may\n")


def test_only_warnings_about_the_configuration_count_not_what_clients_cause():
    assert configwarnings.configuration_warnings(CLIENT_NOISE) == []
    assert configwarnings.configuration_warnings(CLIENT_NOISE + CONFIGURATION) == CONFIGURATION


def test_the_host_side_selection_is_valid_grep_and_keeps_every_configuration_warning(tmp_path):
    log = tmp_path / "mail.log"
    log.write_text("\n".join(CLIENT_NOISE + CONFIGURATION) + "\n")
    done = subprocess.run(["/bin/sh", "-c", f"grep {configwarnings.log_selection()} {log}"], capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 0 and not done.stderr, done
    assert set(CONFIGURATION) <= set(done.stdout.splitlines())


def test_postconf_warnings_are_each_said_once():
    assert configwarnings.postconf_warnings(POSTCONF_STDERR + "\n") == [
        "postconf: warning: /etc/postfix/main.cf, line 37: overriding earlier entry: compatibility_level=3.6",
        "postconf: warning: /etc/postfix/main.cf: unused parameter: smtpd_tls_securty_level=may"]


class FakeHost:
    """Answers each command from a table of (part of the command, stdout, stderr, rc)."""

    name = "mx1"

    def __init__(self, answers, settings=None):
        self.answers = answers
        self.settings = {"mail_log": "journal", **(settings or {})}
        self.evidence: list[str] = []

    def setting(self, name):
        return self.settings[name]

    def run(self, command, *args):
        for part, stdout, stderr, rc in self.answers:
            if part in command:
                return SimpleNamespace(rc=rc, stdout=stdout, stderr=stderr)
        raise AssertionError(f"unexpected command: {command}")


def test_a_misspelt_parameter_and_a_logged_configuration_warning_fail_with_both_lines():
    host = FakeHost([("postconf -n", "", POSTCONF_STDERR, 0),
                     ("journalctl", "\n".join(CLIENT_NOISE[:2] + CONFIGURATION[:1]) + "\n", "", 0)])
    with pytest.raises(AssertionError) as failure:
        configwarnings.no_configuration_warnings(host)
    text = str(failure.value)
    assert text.startswith("host mx1: Postfix warns about its configuration (postconf -n, and the mail log (journal) "
                           "since Postfix last started):\n")
    assert "\n  postconf: warning: /etc/postfix/main.cf: unused parameter: smtpd_tls_securty_level=may" in text
    assert f"\n  mail log: {CONFIGURATION[0]}" in text and "TLS library problem" not in text
    assert host.evidence == ["-- postconf -n, reading main.cf and master.cf: 2 warnings",
                             "-- mail log (journal) since Postfix last started: 1 configuration warnings"]


def test_a_host_whose_postfix_warns_only_about_its_clients_passes_with_evidence():
    host = FakeHost([("postconf -n", "", "", 0), ("journalctl", "\n".join(CLIENT_NOISE) + "\n", "", 0)])
    configwarnings.no_configuration_warnings(host)
    assert host.evidence == ["-- postconf -n, reading main.cf and master.cf: no warnings",
                             "-- mail log (journal) since Postfix last started: no configuration warnings"]


def test_a_mail_log_that_cannot_be_read_says_why():
    host = FakeHost([("postconf -n", "", "", 0), ("tail -n", "", "no readable mail log /var/log/mail.log", 3)],
                    {"mail_log": "/var/log/mail.log"})
    with pytest.raises(AssertionError, match="^host mx1: no readable mail log /var/log/mail.log$"):
        configwarnings.no_configuration_warnings(host)


JOURNAL_OF = {  # what the fake journalctl prints, and how it ends
    "endless": "while :; do echo '2026-11-25T17:00:29+0000 mx1 postfix/smtpd[1]: fatal: again'; done",
    "quiet": "seq 1 100000 | sed 's/^/2026-11-25T17:00:29+0000 mx1 postfix\\/smtpd[1]: connect /'",
    "broken": "echo 'Failed to open journal: Permission denied' >&2; exit 1",
}


@pytest.mark.parametrize("journal, rc, lines, said", [
    ("endless", 0, 50, ""), ("quiet", 0, 0, ""),
    ("broken", 3, 0, "Failed to open journal: Permission denied\njournalctl failed")])  # journalctl's own words first
def test_the_journal_since_postfix_started_is_streamed_not_held(tmp_path, journal, rc, lines, said):
    """A busy MX logs millions of lines between two starts of Postfix: the read streams them through grep and
    stops at the lines it shows (an endless journal ends the read), while a journal that cannot be read
    still fails it, saying so."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in (("systemctl", "echo 'Wed 2026-11-25 16:00:00 UTC'"), ("journalctl", JOURNAL_OF[journal])):
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    command = maillog.JournalLog(None, "journal").since_start_command("-F -e fatal:")
    done = subprocess.run(["/bin/sh", "-c", command], capture_output=True, text=True, timeout=30,
                          env={"PATH": f"{bin_dir}:/usr/bin:/bin"})
    assert (done.returncode, len(done.stdout.splitlines()), done.stderr.strip()) == (rc, lines, said), done


# `date +%s && postqueue -j` on a lab host: a deferred message (recorded), an active one, a held one.
QUEUE = (
    "1795633200\n"
    '{"queue_name": "deferred", "queue_id": "25F1B19425E", "arrival_time": 1795625799, "message_size": 579, '
    '"forced_expire": false, "sender": "peer@remote.test", "recipients": [{"address": "alice@alpha.test", '
    '"delay_reason": "Host or domain name not found. Name service error for name=new-router-2.lab.test type=A: '
    'Host not found, try again"}]}\n'
    '{"queue_name": "deferred", "queue_id": "3A1B2C4D5E6", "arrival_time": 1795632000, "message_size": 600, '
    '"forced_expire": false, "sender": "", "recipients": [{"address": "bob@beta.test", "delay_reason": '
    '"deferred transport"}, {"address": "carol@beta.test"}]}\n'
    '{"queue_name": "active", "queue_id": "9F8E7D6C5B4", "arrival_time": 1795600000, "message_size": 400, '
    '"forced_expire": false, "sender": "a@alpha.test", "recipients": [{"address": "x@remote.test"}]}\n'
    '{"queue_name": "hold", "queue_id": "1A2B3C4D5E6", "arrival_time": 1795500000, "message_size": 400, '
    '"forced_expire": false, "sender": "a@alpha.test", "recipients": [{"address": "y@remote.test"}]}\n'
)


def test_the_queue_reads_with_the_hosts_time_each_message_its_arrival_recipients_and_reasons():
    now, messages = hostchecks.parse_queue(QUEUE)
    assert now == 1795633200 and [m.queue for m in messages] == ["deferred", "deferred", "active", "hold"]
    assert messages[1] == hostchecks.Queued("deferred", "3A1B2C4D5E6", 1795632000, "",
                                            (("bob@beta.test", "deferred transport"), ("carol@beta.test", "")))
    assert hostchecks.parse_queue("1795633200\n") == (1795633200, [])


def test_only_deferred_messages_older_than_the_bound_are_overdue_oldest_first():
    now, messages = hostchecks.parse_queue(QUEUE)
    assert hostchecks.overdue(now, messages, 60) == [
        "25F1B19425E: waiting 123 min (since 2026-11-25 16:56:39 UTC), from <peer@remote.test> to <alice@alpha.test> "
        "(Host or domain name not found. Name service error for name=new-router-2.lab.test type=A: Host not found, "
        "try again)"]
    assert [line.split(":")[0] for line in hostchecks.overdue(now, messages, 10)] == ["25F1B19425E", "3A1B2C4D5E6"]
    assert "to <bob@beta.test> (deferred transport), <carol@beta.test> (no reason given)" in \
        hostchecks.overdue(now, messages, 10)[1]
    assert hostchecks.overdue(now, messages, 200) == []


def test_a_message_deferred_too_long_fails_naming_it_and_the_queue_is_the_evidence():
    host = FakeHost([("postqueue -j", QUEUE, "", 0)])
    with pytest.raises(AssertionError) as failure:
        hostchecks.deferred_not_older_than(host, 60)
    assert str(failure.value).startswith("host mx1: messages have waited in the deferred queue longer than 60 minutes:"
                                         "\n  25F1B19425E: waiting 123 min")
    assert host.evidence == ["-- deferred queue: 2 messages, the oldest waiting 123 min (bound 60 min)"]
    host = FakeHost([("postqueue -j", "1795633200\n", "", 0)])
    hostchecks.deferred_not_older_than(host, 60)
    hostchecks.queue_at_most(host, 0)
    assert host.evidence == ["-- deferred queue: 0 messages (bound 60 min)"]


def test_a_queue_listing_that_is_not_postqueue_json_fails_in_one_line():
    host = FakeHost([("postqueue -j", "1795633200\nmail queue is empty\n", "", 0)])
    with pytest.raises(AssertionError, match=r"^host mx1: cannot read `date \+%s && postqueue -j`'s output: "
                                             r"JSONDecodeError: Expecting value: line 1 column 1 \(char 0\)$"):
        hostchecks.deferred_not_older_than(host, 60)
