"""The canary's reading of mail logs (real lines the lab's estates logged under canary traffic), its
window on a syslog file, its policy file and its options: without hosts."""

import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mxspec.canary import behaviours, collect, command, judge, outcomes
from mxspec.canary.attempts import (
    ACCEPTED,
    BOUNCED,
    DELIVERED,
    IN_FLIGHT,
    NEW,
    OLD,
    REFUSED_POLICY,
    SPAM_STOPPED,
    TEMPORARY,
    TOO_BIG,
    UNKNOWN_USER,
    VIRUS_STOPPED,
)
from mxspec.core.errors import MxspecError

DATA = Path(__file__).parent / "data" / "canary"
PROJECT = Path(__file__).resolve().parent.parent
AT_READING = datetime(2026, 12, 5, 18, 0, tzinfo=UTC).timestamp()  # when the sample logs were read
UTC_CLOCK = outcomes.Clock(AT_READING, 0)


def lines_of(*names: str) -> list[outcomes.Line]:
    return [line for name in names
            for line in outcomes.parse((DATA / f"{name}.log").read_text().splitlines(), name, UTC_CLOCK)]


def test_the_old_all_in_one_host_read_from_its_syslog_file():
    found = outcomes.attempts(OLD, lines_of("old-mail"), {"old-mail"}, {"alpha.test"}, 0, AT_READING)
    outcomes_seen = sorted(message.outcome for attempt in found for message in attempt.messages)
    assert {ACCEPTED, SPAM_STOPPED, VIRUS_STOPPED, UNKNOWN_USER, TOO_BIG} <= set(outcomes_seen)
    # Spam spamd scored and the milter marked is stopped for the sender, though accepted and delivered.
    [spam] = [m for a in found for m in a.messages if m.outcome == SPAM_STOPPED]
    assert spam.fate == DELIVERED and spam.sender == "lee@shop.test"
    # A virus refused at the end of DATA: its reply and the line saying so.
    virus = next(m for a in found for m in a.messages if m.outcome == VIRUS_STOPPED)
    assert virus.reply == "5.7.1" and any("milter-reject" in line for line in virus.evidence)
    unknown = next(m for a in found for m in a.messages if m.outcome == UNKNOWN_USER)
    assert unknown.reply == "550 5.1.1" and unknown.recipients[0].startswith("nobody-")
    delivered = [m for a in found for m in a.messages if m.outcome == ACCEPTED]
    assert delivered and all(m.fate == DELIVERED and m.delay is not None and m.delay > 0 for m in delivered)
    assert any(attempt.tls for attempt in found) and any(not attempt.tls for attempt in found)
    assert all(attempt.client == "10.213.0.6" and attempt.completed for attempt in found)
    # The classic stamp read in the host's year and zone.
    assert min(a.started for a in found) == datetime(2026, 12, 5, 17, 53, 16, tzinfo=UTC).timestamp()


def test_the_new_estate_followed_from_its_inbound_mx_through_a_router_to_the_mailstore():
    lines = lines_of("new-mx-in-1", "new-router")
    found = outcomes.attempts(NEW, lines, {"new-mx-in-1"}, {"alpha.test"}, 0, AT_READING)
    assert len(found) >= 10
    accepted = [m for a in found for m in a.messages if m.outcome == ACCEPTED]
    assert sum(m.fate == DELIVERED for m in accepted) >= 5
    # The sample's last messages were still queued when it was cut: in flight, not lost and not delivered.
    assert all(m.fate == DELIVERED or (m.fate == IN_FLIGHT and not any("status=" in line for line in m.evidence))
               for m in accepted)
    # Its delay is the sum of the two hops' `delay=`: the inbound MX's and the router's.
    sample = next(m for m in accepted if m.fate == DELIVERED)
    hops = [float(line.split("delay=")[1].split(",")[0]) for line in sample.evidence if "status=sent" in line]
    assert len(hops) == 2 and sample.delay == pytest.approx(sum(hops))
    assert any(m.outcome == SPAM_STOPPED and m.reply == "5.7.1" for a in found for m in a.messages)  # rspamd's GTUBE refusal
    # The router's own connections (from the inbound MX) are not the estate's door: never judged.
    assert {attempt.host for attempt in found} == {"new-mx-in-1"}


def test_connections_are_judged_by_when_they_began():
    lines = lines_of("old-mail")
    every = outcomes.attempts(OLD, lines, {"old-mail"}, set(), 0, AT_READING)
    cut = sorted(a.started for a in every)[len(every) // 2]
    later = outcomes.attempts(OLD, lines, {"old-mail"}, set(), cut, AT_READING)
    assert 0 < len(later) < len(every) and all(a.started >= cut for a in later)


@pytest.mark.parametrize("reply, text, meaning", [
    ("550 5.1.1", "550 5.1.1 <x@alpha.test>: Recipient address rejected: User unknown in relay recipient table", UNKNOWN_USER),
    ("552 5.3.4", "552 5.3.4 Message size exceeds fixed limit", TOO_BIG),
    ("5.7.1", "5.7.1 Rejected: virus Lab.EICAR.String.UNOFFICIAL found", VIRUS_STOPPED),
    ("5.7.1", "5.7.1 Gtube pattern", SPAM_STOPPED),
    ("554 5.7.1", "554 5.7.1 <lee@shop.test>: Sender address rejected: Access denied", REFUSED_POLICY),
    ("450 4.7.1", "450 4.7.1 Client host rejected: cannot find your hostname", TEMPORARY),
    ("4.7.1", "4.7.1 Service unavailable - try again later", TEMPORARY),
])
def test_a_refusal_is_named_by_what_it_means_for_the_sender(reply, text, meaning):
    assert outcomes.reply_of(text) == reply
    assert outcomes.classify(reply, text) == meaning


def test_a_december_line_read_in_january_is_of_last_year():
    january = outcomes.Clock(datetime(2027, 1, 2, tzinfo=UTC).timestamp(), 0)
    assert january.epoch("Dec 31 23:59:59") == datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp()
    assert outcomes.Clock(AT_READING, 3600).epoch("Dec  5 18:30:00") == datetime(2026, 12, 5, 17, 30, tzinfo=UTC).timestamp()


def test_a_syslog_file_is_read_from_the_window_on_in_the_hosts_own_time(tmp_path):
    log = tmp_path / "mail.log"
    (tmp_path / "mail.log.1").write_text("Dec  5 09:00:00 mx postfix/smtpd[1]: rotated, too early\n"
                                         "Dec  5 10:00:01 mx postfix/smtpd[1]: rotated, in the window\n")
    log.write_text("Dec  5 09:59:58 mx postfix/smtpd[2]: too early\n"
                   "2026-12-05T10:00:00.5+00:00 mx postfix/smtpd[2]: RFC 3339, in the window\n"
                   "Dec  5 10:30:00 mx postfix/smtpd[2]: in the window\n")
    since = datetime(2026, 12, 5, 10, 0, 0, tzinfo=UTC).timestamp()
    shown = subprocess.run(["bash", "-c", collect.log_command(str(log), since)], capture_output=True, text=True,
                           env={"TZ": "UTC", "PATH": "/usr/bin:/bin"}, check=True).stdout.splitlines()
    assert shown[0].startswith(collect.CLOCK_MARK) and shown[0].endswith("+0000")
    assert shown[1:] == ["Dec  5 10:00:01 mx postfix/smtpd[1]: rotated, in the window",
                         "2026-12-05T10:00:00.5+00:00 mx postfix/smtpd[2]: RFC 3339, in the window",
                         "Dec  5 10:30:00 mx postfix/smtpd[2]: in the window"]
    missing = subprocess.run(["bash", "-c", collect.log_command(str(tmp_path / "nope.log"), since)],
                             capture_output=True, text=True)
    assert missing.returncode == 3 and "no readable mail log" in missing.stderr


def test_the_lab_policy_file_loads_and_a_broken_one_names_file_and_line(tmp_path):
    policy = command.load_policy(str(PROJECT / "canary-policy.yml"))
    assert policy.alpha == 0.01 and "DKIM-signed (outgoing)" in policy.accepted
    assert policy.tolerances["mail accepted"] == judge.ShareTolerance(0.05)
    assert policy.tolerances["delivery delay p50"] == judge.DelayTolerance(1.5, 2)
    cases = {
        "min_events: 30\nalfa: 0.05\n": "policy.yml:2: unknown key 'alfa'",
        "tolerances:\n  mail accepted: 0.05\n": "policy.yml:2: the tolerance of 'mail accepted' is {points: P}",
        "accepted:\n  delivery delay p99: later\n": "names an unknown metric 'delivery delay p99'",
        "tolerances:\n  delivery delay p50: {points: 0.1}\n": "'delivery delay p50' is a DelayTolerance",
        "alpha: 2\n": "alpha must lie between 0 and 1",
        "tolerances:\n  mail accepted: {points: .nan}\n": "policy.yml:2: the tolerance of 'mail accepted' is {points: P}",
        "tolerances:\n  delivery delay p95: {ratio: 0.5, seconds: 1}\n": "(R >= 1, S >= 0)",
        "- a list\n": "a canary policy is a mapping",
    }
    cases_dir = tmp_path / "a-folder"
    cases_dir.mkdir()
    with pytest.raises(MxspecError, match="a-folder: cannot read it"):
        command.load_policy(str(cases_dir))
    for text, said in cases.items():
        path = tmp_path / "policy.yml"
        path.write_text(text)
        with pytest.raises(MxspecError) as refused:
            command.load_policy(str(path))
        assert said in str(refused.value), (text, str(refused.value))


def test_since_and_window_are_read_as_an_operator_writes_them():
    now = 1_000_000.0
    assert command.moment("30m", now) == now - 1800 and command.moment("-30m", now) == now - 1800
    assert command.moment("@1764943200", now) == 1764943200
    assert command.moment("2026-12-05T14:00:00+00:00", now) == datetime(2026, 12, 5, 14, tzinfo=UTC).timestamp()
    assert command.seconds("2h", "--window") == 7200 and command.seconds("600", "--window") == 600
    for bad in ("yesterday", "@soon", "-3 weeks", "0m", "@nan"):
        with pytest.raises(MxspecError, match="--since"):
            command.moment(bad, now)
    with pytest.raises(MxspecError, match="--window '0'"):
        command.seconds("0", "--window")


def test_a_canary_result_that_is_no_result_is_said_before_any_host_is_contacted(tmp_path):
    for text, said in (("{", "not JSON"), ('{"decision": "GO"}', "not a canary result")):
        path = tmp_path / "canary.json"
        path.write_text(text)
        with pytest.raises(MxspecError, match=said):
            behaviours.load(str(path))
    with pytest.raises(MxspecError, match="cannot read it"):
        behaviours.load(str(tmp_path / "missing.json"))


def test_clients_left_out_are_addresses_or_networks():
    assert [str(n) for n in command.networks(["10.213.0.1", "192.0.2.0/24"])] == ["10.213.0.1/32", "192.0.2.0/24"]
    with pytest.raises(MxspecError, match="--exclude-client: .*10.213.0.300"):
        command.networks(["10.213.0.300"])


def test_the_readiness_report_shows_the_canary_and_waits_for_it_to_be_go(tmp_path):
    from canary_traffic import connections, refusing
    from mxspec.canary import render
    from mxspec.report import canary as report_canary
    from mxspec.report import readiness
    from mxspec.report import render as report_render
    from mxspec.report.results import Result, Results

    verdict = judge.judge(connections(OLD, 200) + connections(NEW, 90, door=refusing(0.3)), None, judge.Policy())
    assert verdict.decision == "ROLLBACK"
    render.write_all(verdict, tmp_path / "canary", {"old": "old-mx", "new": "new-mx", "window": {"since": 0, "until": 60},
                                                   "path": {}})
    summary = report_canary.load(str(tmp_path / "canary" / "canary.json"), tmp_path / "report")
    assert summary["link"] == "../canary/canary.html" and summary["decision"] == "ROLLBACK"
    data = Results({"old-mx": ["inbound-mx"], "new-mx": ["inbound-mx"]},
                   {"old-mx": {"old-1": ["inbound-mx"]}, "new-mx": {"new-1": ["inbound-mx"]}})
    data.results += [Result(estate, host, ["inbound-mx"], "Inbound MX", "s", "", "passed", "", "")
                     for estate, host in (("old-mx", "old-1"), ("new-mx", "new-1"))]
    without = readiness.compare(data, "old-mx", "new-mx", [], datetime(2026, 12, 5).date())
    held = readiness.compare(data, "old-mx", "new-mx", [], datetime(2026, 12, 5).date(), summary["decision"])
    assert without.verdict == "GO" and held.verdict == "NO-GO"
    written = report_render.write_all(held, data, tmp_path / "report", None, summary)
    markdown = written["markdown"].read_text()
    assert "### Canary (old-mx → new-mx, `mxspec canary`): **ROLLBACK** — [the canary's page](../canary/canary.html)" \
        in markdown and report_canary.HOLDS in markdown
    assert "href='../canary/canary.html'" in written["html"].read_text()
    with pytest.raises(MxspecError, match="not a canary result"):
        report_canary.load(str(written["json"]), tmp_path)
    with pytest.raises(MxspecError, match="judged old-mx -> new-mx, not old-mx -> other-mx"):
        report_canary.load(str(tmp_path / "canary" / "canary.json"), tmp_path, ("old-mx", "other-mx"))


def test_a_december_window_keeps_the_january_lines_of_the_file(tmp_path):
    log = tmp_path / "mail.log"
    log.write_text("Dec 31 23:59:50 mx postfix/smtpd[2]: before\nJan  1 00:00:05 mx postfix/smtpd[2]: new year\n")
    since = datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp()
    shown = subprocess.run(["bash", "-c", collect.log_command(str(log), since)], capture_output=True, text=True,
                           env={"TZ": "UTC", "PATH": "/usr/bin:/bin"}, check=True).stdout.splitlines()
    assert shown[1:] == ["Jan  1 00:00:05 mx postfix/smtpd[2]: new year"]


T = "2026-12-05T17:54:00+0000 mx "


def judged_lines(*texts: str, hosts: frozenset[str] = frozenset({"router"})) -> list:
    """Synthetic log lines of one door `mx` (and hops behind it), read into attempts."""
    lines = outcomes.parse([T + text if not text.startswith("2026") else text for text in texts], "mx", UTC_CLOCK)
    return outcomes.attempts(NEW, lines, {"mx"}, {"alpha.test"}, 0, AT_READING, hosts)


def test_refusals_to_ipv6_clients_and_before_the_greeting_are_read():
    [v6] = judged_lines(
        "postfix/smtpd[1]: connect from unknown[2001:db8::1]",
        "postfix/smtpd[1]: NOQUEUE: reject: RCPT from unknown[2001:db8::1]: 550 5.1.1 <x@alpha.test>: Recipient address "
        "rejected: User unknown; from=<a@b.test> to=<x@alpha.test> proto=ESMTP helo=<h>",
        "postfix/smtpd[1]: disconnect from unknown[2001:db8::1] ehlo=1 mail=1 rcpt=0/1 quit=1 commands=3/4")
    assert v6.client == "2001:db8::1" and [(m.outcome, m.recipients) for m in v6.messages] == [(UNKNOWN_USER, ("x@alpha.test",))]
    [at_connect] = judged_lines(
        "postfix/smtpd[1]: connect from h[192.0.2.1]",
        "postfix/smtpd[1]: NOQUEUE: reject: CONNECT from h[192.0.2.1]: 554 5.7.1 <h[192.0.2.1]>: Client host rejected: "
        "Access denied; proto=SMTP",
        "postfix/smtpd[1]: disconnect from h[192.0.2.1] commands=0/0")
    assert [(m.outcome, m.reply) for m in at_connect.messages] == [(REFUSED_POLICY, "554 5.7.1")]


def test_one_recipient_refused_leaves_the_message_for_the_others_and_a_discard_is_accepted():
    [partly] = judged_lines(
        "postfix/smtpd[1]: connect from h[192.0.2.1]",
        "postfix/smtpd[1]: AAA111: client=h[192.0.2.1]",
        "postfix/smtpd[1]: AAA111: reject: RCPT from h[192.0.2.1]: 550 5.1.1 <x@alpha.test>: Recipient address rejected: "
        "User unknown; from=<a@b.test> to=<x@alpha.test> proto=ESMTP helo=<h>",
        "postfix/qmgr[3]: AAA111: from=<a@b.test>, size=100, nrcpt=1 (queue active)",
        "postfix/smtpd[1]: disconnect from h[192.0.2.1] ehlo=1 mail=1 rcpt=1/2 data=1 quit=1 commands=5/6",
        "postfix/smtp[4]: AAA111: to=<alice@alpha.test>, relay=store[10.0.0.5]:25, delay=0.2, delays=0.1/0/0/0.1, "
        "dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as ZZZ)")
    assert sorted((m.outcome, m.fate) for m in partly.messages) == [(ACCEPTED, DELIVERED), (UNKNOWN_USER, None)]
    [dropped] = judged_lines(
        "postfix/smtpd[1]: connect from h[192.0.2.1]",
        "postfix/smtpd[1]: BBB111: client=h[192.0.2.1]",
        "postfix/cleanup[2]: BBB111: discard: END-OF-MESSAGE from h[192.0.2.1]: <a@b.test>: Sender address triggers "
        "DISCARD action; from=<a@b.test> to=<alice@alpha.test> proto=ESMTP helo=<h>",
        "postfix/smtpd[1]: disconnect from h[192.0.2.1] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5")
    assert [m.outcome for m in dropped.messages] == [ACCEPTED]
    [checked] = judged_lines(
        "postfix/smtpd[1]: connect from h[192.0.2.1]",
        "postfix/smtpd[1]: CCC111: client=h[192.0.2.1]",
        "postfix/cleanup[2]: CCC111: reject: header Subject: buy now from h[192.0.2.1]; from=<a@b.test> "
        "to=<alice@alpha.test> proto=ESMTP helo=<h>: 5.7.1 Message content rejected",
        "postfix/smtpd[1]: disconnect from h[192.0.2.1] ehlo=1 mail=1 rcpt=1 data=0/1 quit=1 commands=4/5")
    assert [(m.outcome, m.reply, m.sender) for m in checked.messages] == [(REFUSED_POLICY, "5.7.1", "a@b.test")]


def test_a_message_is_as_delivered_as_its_worst_recipient_and_a_hop_not_in_the_logs_is_not_delivered():
    opening = ("postfix/smtpd[1]: connect from h[192.0.2.1]", "postfix/smtpd[1]: DDD111: client=h[192.0.2.1]",
               "postfix/qmgr[3]: DDD111: from=<a@b.test>, size=100, nrcpt=2 (queue active)",
               "postfix/smtpd[1]: disconnect from h[192.0.2.1] ehlo=1 mail=1 rcpt=2 data=1 quit=1 commands=6")
    [mixed] = judged_lines(
        *opening,
        "postfix/smtp[4]: DDD111: to=<bob@alpha.test>, relay=store[10.0.0.5]:25, delay=0.2, delays=0.1/0/0/0.1, "
        "dsn=5.1.1, status=bounced (host said: 550 no)",
        "postfix/smtp[4]: DDD111: to=<alice@alpha.test>, relay=store[10.0.0.5]:25, delay=0.2, delays=0.1/0/0/0.1, "
        "dsn=2.0.0, status=sent (250 2.0.0 Ok)")
    assert [m.fate for m in mixed.messages] == [BOUNCED]
    [unseen] = judged_lines(
        *opening,
        "postfix/smtp[4]: DDD111: to=<alice@alpha.test>, relay=router.lab.test[10.0.0.31]:25, delay=0.2, "
        "delays=0.1/0/0/0.1, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as EEE222)")
    assert [m.fate for m in unseen.messages] == [IN_FLIGHT]  # the router's log, which would show it, was not read
    [later] = judged_lines(
        *opening,
        "postfix/smtp[4]: DDD111: to=<alice@alpha.test>, relay=none, delay=30, delays=0.1/0/30/0, dsn=4.4.1, "
        "status=deferred (connect to store[10.0.0.5]:25: Connection refused)",
        "postfix/smtp[4]: DDD111: to=<alice@alpha.test>, relay=store[10.0.0.5]:25, delay=330, delays=0.1/300/0/0.1, "
        "dsn=2.0.0, status=sent (250 2.0.0 Ok)")
    assert [(m.fate, m.delay) for m in later.messages] == [(DELIVERED, 330)]
    [expired] = judged_lines(*opening, "postfix/qmgr[3]: DDD111: from=<a@b.test>, status=expired, returned to sender")
    assert [m.fate for m in expired.messages] == [BOUNCED]


def test_postscreen_connections_it_ends_itself_are_connections_too():
    refused, dropped = judged_lines(
        "postfix/postscreen[9]: CONNECT from [192.0.2.1]:40000 to [10.0.0.21]:25",
        "postfix/postscreen[9]: NOQUEUE: reject: RCPT from [192.0.2.1]:40000: 550 5.7.1 Service unavailable; client "
        "[192.0.2.1] blocked using zen.example; from=<a@b.test>, to=<alice@alpha.test>, proto=ESMTP, helo=<h>",
        "postfix/postscreen[9]: DISCONNECT [192.0.2.1]:40000",
        "postfix/postscreen[9]: CONNECT from [192.0.2.2]:40001 to [10.0.0.21]:25",
        "postfix/postscreen[9]: PREGREET 11 after 0.1 from [192.0.2.2]:40001: EHLO spam\\r\\n",
        "postfix/postscreen[9]: DISCONNECT [192.0.2.2]:40001",
        "postfix/postscreen[9]: CONNECT from [192.0.2.3]:40002 to [10.0.0.21]:25",
        "postfix/postscreen[9]: PASS NEW [192.0.2.3]:40002")
    assert [(m.outcome, m.recipients) for m in refused.messages] == [(REFUSED_POLICY, ("alice@alpha.test",))]
    assert dropped.client == "192.0.2.2" and dropped.lost_at == "CONNECT" and not dropped.messages
