"""The hosts of one role compared, without a lab: the effective configuration of the lab's two healthy
inbound MXs as recorded (`facts.EFFECTIVE_CONFIGURATION` on new-mx-in-1 and new-mx-in-2), and copies
of it changed the way an operator's slip would change a host."""

import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from mxspec.checks import alike, changes, facts
from mxspec.checks.mailhost import Subject
from mxspec.estate.inventory import Estate, Host
from mxspec.estate.target import Target
from mxspec.steps.common import hosts_configured_alike

DATA = Path(__file__).parent / "data" / "alike"
RECORDED = {name: (DATA / f"{name}.txt").read_text() for name in ("new-mx-in-1", "new-mx-in-2")}
SIZE = "message_size_limit = 10240000"  # main.cf sets it on both: as written, expanded, and set


class Connection:
    """Answers the one command the check runs with the host's recorded output; with `then`, answers it so
    first and each later time with `then` (a host read while a change journal is on it, then once it is gone)."""

    def __init__(self, output: str, rc: int = 0, stderr: str = "", then: str | None = None):
        self.output, self.rc, self.stderr, self.then, self.commands = output, rc, stderr, then, []

    def run(self, command: str, *args: str) -> SimpleNamespace:
        self.commands.append(command)
        if self.then is not None and len(self.commands) > 1:
            return SimpleNamespace(rc=0, stdout=self.then, stderr="")
        return SimpleNamespace(rc=self.rc, stdout=self.output, stderr=self.stderr)


class Pool:
    def __init__(self, connections: dict[str, Connection]):
        self.connections = connections

    def get(self, host: Host) -> Connection:
        return self.connections[host.name]


def estate(outputs: dict[str, str], role_vars: dict | None = None, other_roles: dict[str, str] | None = None,
           connections: dict[str, Connection] | None = None) -> Subject:
    """The estate `new-mx`: a host playing inbound-mx per output, and hosts playing other roles."""
    hosts = {name: Host(name, "new-mx", "new-mx.yml:1", ["inbound-mx"], {"smtp_name": f"{name}.lab.test", **(role_vars or {})})
             for name in outputs}
    hosts |= {name: Host(name, "new-mx", "new-mx.yml:9", [role], {}) for name, role in (other_roles or {}).items()}
    pool = Pool(connections or {name: Connection(output) for name, output in outputs.items()})
    return Subject(Target(Estate("new-mx", "new-mx.yml", {}, hosts)), pool, 1, [])  # type: ignore[arg-type]


def changed(host: str, *edits: tuple[str, str]) -> str:
    text = RECORDED[host]
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new)
    return text


def test_the_healthy_inbound_mxs_are_alike_but_for_their_names_which_the_evidence_shows():
    subject = estate(RECORDED)
    hosts = subject.hosts_playing("inbound-mx")
    alike.configured_alike(subject, "inbound-mx", hosts)
    assert subject.evidence[0] == "-- the hosts playing inbound-mx: new-mx-in-1 (Postfix 3.7.11), new-mx-in-2 (Postfix 3.7.11)"
    assert subject.evidence[1].endswith("parameters (postconf, postconf -P; defaults included) and 31 master.cf "
                                        "services (postconf -M) compared; 0 differ")
    # The same as written, once expanded with each host's name (smtpd_banner = $myhostname ESMTP, smtp_helo_name):
    # alike; only the name itself differs, as the contract says it does by nature, each as its inventory implies.
    assert subject.evidence[2:] == ["-- host-specific, each as its inventory implies: 1",
                                    "   myhostname: new-mx-in-1 has new-mx-in-1.lab.test; new-mx-in-2 has new-mx-in-2.lab.test"]
    assert [connection.commands for connection in subject.pool.connections.values()] == [  # type: ignore[attr-defined]
        [facts.EFFECTIVE_CONFIGURATION]] * 2
    assert facts.is_fact(facts.EFFECTIVE_CONFIGURATION)  # read once per host and run, as the other checks' reads


def test_a_size_limit_set_otherwise_on_one_host_fails_naming_the_parameter_and_each_hosts_value():
    subject = estate({"new-mx-in-1": RECORDED["new-mx-in-1"],
                      "new-mx-in-2": changed("new-mx-in-2", (SIZE, "message_size_limit = 1234567"))})
    with pytest.raises(AssertionError) as failure:
        alike.configured_alike(subject, "inbound-mx", subject.hosts_playing("inbound-mx"))
    assert str(failure.value) == (
        "estate new-mx: the hosts playing inbound-mx (new-mx-in-1, new-mx-in-2) are not configured alike: 1 Postfix "
        "setting differs (host-specific parameters held to each host's inventory or left out; an estate names more in "
        "host_specific_parameters):\n"
        "  message_size_limit: new-mx-in-1 has 10240000; new-mx-in-2 has 1234567")
    assert "   message_size_limit: new-mx-in-1 has 10240000; new-mx-in-2 has 1234567" in subject.evidence


def test_a_parameter_the_estate_declares_host_specific_is_left_out_with_each_hosts_value():
    subject = estate({"new-mx-in-1": RECORDED["new-mx-in-1"],
                      "new-mx-in-2": changed("new-mx-in-2", (SIZE, "message_size_limit = 1234567"))},
                     role_vars={"host_specific_parameters": ["message_size_limit"]})
    alike.configured_alike(subject, "inbound-mx", subject.hosts_playing("inbound-mx"))
    assert "   message_size_limit: new-mx-in-1 has 10240000; new-mx-in-2 has 1234567" in subject.evidence


def test_the_odd_host_out_of_three_is_named_and_a_setting_only_its_main_cf_has_is_said():
    # main.cf of new-mx-in-3 sets delay_warning_time (Postfix's default: 0h) and nothing else differs.
    third = changed("new-mx-in-2", ("delay_warning_time = 0h", "delay_warning_time = 4h"),
                    (SIZE, SIZE + "\ndelay_warning_time = 4h"))
    configurations = [alike.parse_configuration(name, text) for name, text in
                      (("new-mx-in-1", RECORDED["new-mx-in-1"]), ("new-mx-in-2", RECORDED["new-mx-in-2"]),
                       ("new-mx-in-3", third))]
    comparison = alike.compare(configurations)
    assert [str(d) for d in comparison.differing] == [
        "delay_warning_time: new-mx-in-1, new-mx-in-2 have 0h; new-mx-in-3 has 4h (new-mx-in-3 differs from the rest) "
        "(set in main.cf on new-mx-in-3; new-mx-in-1, new-mx-in-2 keep Postfix's default)"]


def test_values_equal_as_postfix_means_them_or_once_expanded_are_alike_and_a_different_postfix_is_said():
    configurations = [alike.parse_configuration("new-mx-in-1", RECORDED["new-mx-in-1"]), alike.parse_configuration(
        "new-mx-in-2", changed("new-mx-in-2",
                               ("mynetworks = 127.0.0.0/8", "mynetworks =   127.0.0.0/8 "),  # spacing only
                               # written otherwise, the same once expanded
                               ("relay/unix/syslog_name = postfix/$service_name", "relay/unix/syslog_name = postfix/relay"),
                               ("mail_version = 3.7.11", "mail_version = 3.9.1"),
                               ("allow_mail_to_commands = alias, forward\n", ""),  # unknown to this Postfix
                               ))]
    comparison = alike.compare(configurations)
    assert [str(d) for d in comparison.differing] == [
        "allow_mail_to_commands: new-mx-in-1 has alias, forward; new-mx-in-2 has none (Postfix 3.9.1 knows no "
        "allow_mail_to_commands)"]


def test_a_master_cf_override_that_differs_is_said_to_be_one():
    subject = estate({"new-mx-in-1": RECORDED["new-mx-in-1"], "new-mx-in-2": changed(
        "new-mx-in-2", ("relay/unix/syslog_name = postfix/$service_name", "relay/unix/syslog_name = postfix/out"),
        ("relay/unix/syslog_name = postfix/relay", "relay/unix/syslog_name = postfix/out"))})
    with pytest.raises(AssertionError, match=r"\n  relay/unix/syslog_name: new-mx-in-1 has postfix/\$service_name "
                                             r"\(= postfix/relay\); new-mx-in-2 has postfix/out \(a master.cf -o override\)$"):
        alike.configured_alike(subject, "inbound-mx", subject.hosts_playing("inbound-mx"))


def test_an_override_one_host_lacks_is_said_to_be_missing_there():
    configurations = [alike.parse_configuration("new-mx-in-1", RECORDED["new-mx-in-1"]), alike.parse_configuration(
        "new-mx-in-2", changed("new-mx-in-2", ("relay/unix/syslog_name = postfix/$service_name\n", ""),
                               ("relay/unix/syslog_name = postfix/relay\n", "")))]
    assert [str(d) for d in alike.compare(configurations).differing] == [
        "relay/unix/syslog_name: new-mx-in-1 has postfix/$service_name (= postfix/relay); new-mx-in-2 has none "
        "(a master.cf -o override)"]


def test_a_name_derived_parameter_set_to_each_hosts_own_name_is_host_specific_and_otherwise_compared():
    own = {name: changed(name, (SIZE, f"{SIZE}\nmyorigin = {name}.lab.test"),
                         ("myorigin = $myhostname", f"myorigin = {name}.lab.test")) for name in RECORDED}
    configurations = [alike.parse_configuration(name, text) for name, text in own.items()]
    assert not alike.compare(configurations).differing
    astray = changed("new-mx-in-2", (SIZE, f"{SIZE}\nmyorigin = elsewhere.test"),
                     ("myorigin = $myhostname", "myorigin = elsewhere.test"),
                     ("myorigin = new-mx-in-2.lab.test", "myorigin = elsewhere.test"))
    configurations[1] = alike.parse_configuration("new-mx-in-2", astray)
    assert [d.parameter for d in alike.compare(configurations).differing] == ["myorigin"]


def test_a_role_one_host_plays_is_not_applicable_and_says_why():
    subject = estate({"new-mx-in-1": RECORDED["new-mx-in-1"]}, other_roles={"new-router-1": "smtp-router"})
    with pytest.raises(pytest.skip.Exception, match="^estate new-mx: one host plays inbound-mx: nothing to compare$"):
        hosts_configured_alike(subject, "inbound-mx")
    with pytest.raises(pytest.skip.Exception, match="^estate new-mx: no host plays outbound-mx: nothing to compare$"):
        hosts_configured_alike(subject, "outbound-mx")


def test_a_host_whose_configuration_cannot_be_read_fails_naming_it():
    subject = estate(RECORDED, connections={"new-mx-in-1": Connection(RECORDED["new-mx-in-1"]),
                                            "new-mx-in-2": Connection("", 1, "postconf: fatal: open /etc/postfix/main.cf: "
                                                                             "Permission denied")})
    with pytest.raises(AssertionError, match="^host new-mx-in-2: reading the effective Postfix configuration: exit 1: "
                                             "postconf: fatal: open /etc/postfix/main.cf: Permission denied$"):
        hosts_configured_alike(subject, "inbound-mx")


def test_a_host_specific_parameter_one_host_sets_otherwise_than_its_inventory_implies_fails_naming_both():
    subject = estate({"new-mx-in-1": RECORDED["new-mx-in-1"],
                      "new-mx-in-2": changed("new-mx-in-2", ("inet_interfaces = all", "inet_interfaces = loopback-only"))})
    with pytest.raises(AssertionError, match=r"\n  inet_interfaces: new-mx-in-2 has loopback-only, where its inventory "
                                             r"implies all \(host-specific, held to the host's inventory\)$"):
        alike.configured_alike(subject, "inbound-mx", subject.hosts_playing("inbound-mx"))
    assert "-- host-specific, but not as the host's inventory implies: 1" in subject.evidence


def test_a_helo_name_astray_is_said_with_the_value_its_inventory_implies_once_expanded():
    subject = estate({"new-mx-in-1": RECORDED["new-mx-in-1"], "new-mx-in-2": changed(
        "new-mx-in-2", ("smtp_helo_name = $myhostname", "smtp_helo_name = mail.example.com"),
        ("smtp_helo_name = new-mx-in-2.lab.test", "smtp_helo_name = mail.example.com"))})
    with pytest.raises(AssertionError, match=r"\n  smtp_helo_name: new-mx-in-2 has mail.example.com, where its inventory "
                                             r"implies \$myhostname \(= new-mx-in-2.lab.test\) "):
        alike.configured_alike(subject, "inbound-mx", subject.hosts_playing("inbound-mx"))


def test_a_host_specific_parameter_the_inventory_implies_no_value_for_is_left_out():
    configurations = [alike.parse_configuration(name, text) for name, text in (
        ("new-mx-in-1", RECORDED["new-mx-in-1"]),
        ("new-mx-in-2", changed("new-mx-in-2", ("inet_interfaces = all", "inet_interfaces = loopback-only"))))]
    comparison = alike.compare(configurations)  # no inventory values: as when the inventory cannot render them
    assert not comparison.failures
    assert comparison.host_specific["inet_interfaces"] == {"new-mx-in-1": "all", "new-mx-in-2": "loopback-only"}


SMTPD = "smtp       inet  n       -       y       -       -       smtpd"


@pytest.mark.parametrize(("edit", "said"), [
    ((SMTPD, "smtp       inet  n       -       y       -       1       postscreen"),
     "smtp/inet: new-mx-in-1 has n - y - - smtpd; new-mx-in-2 has n - y - 1 postscreen"),
    ((SMTPD, "smtp       inet  n       -       n       -       20      smtpd"),
     "smtp/inet: new-mx-in-1 has n - y - - smtpd; new-mx-in-2 has n - n - 20 smtpd"),
    ((SMTPD, SMTPD + "\nsubmission inet n       -       y       -       -       smtpd"),
     "submission/inet: new-mx-in-1 has none (not in its master.cf); new-mx-in-2 has n - y - - smtpd"),
], ids=["postscreen-instead-of-smtpd", "chroot-and-maxproc", "a-service-one-host-lacks"])
def test_a_master_cf_service_that_differs_or_one_host_lacks_fails_naming_it(edit, said):
    subject = estate({"new-mx-in-1": RECORDED["new-mx-in-1"], "new-mx-in-2": changed("new-mx-in-2", edit)})
    with pytest.raises(AssertionError) as failure:
        alike.configured_alike(subject, "inbound-mx", subject.hosts_playing("inbound-mx"))
    assert str(failure.value).endswith(
        f"\n  {said} (a master.cf service: private unpriv chroot wakeup maxproc command)")


@pytest.mark.parametrize(("value", "shown"), [
    ("static:relay:s3cret", "(masked)"),
    ("inline:{ relay.example.com = user:s3cret }", "(masked)"),
    ("hash:/etc/postfix/sasl_passwd", "hash:/etc/postfix/sasl_passwd"),  # where it is kept: no secret
])
def test_a_password_parameters_value_is_masked_unless_it_only_names_a_table(value, shown):
    subject = estate({"new-mx-in-1": RECORDED["new-mx-in-1"], "new-mx-in-2": changed(
        "new-mx-in-2", ("smtp_sasl_password_maps =", f"smtp_sasl_password_maps = {value}"))})
    with pytest.raises(AssertionError) as failure:
        alike.configured_alike(subject, "inbound-mx", subject.hosts_playing("inbound-mx"))
    assert f"smtp_sasl_password_maps: new-mx-in-1 has (empty); new-mx-in-2 has {shown}" in str(failure.value)
    assert "s3cret" not in str(failure.value) + "\n".join(subject.evidence)


JOURNAL = "/var/lib/mxspec/changes/20261205T101500.123-abc123"
BEING_CHANGED = RECORDED["new-mx-in-2"].replace(
    "@@mxspec-section journals\n",
    f"@@mxspec-section journals\n{JOURNAL}\tscenario=smtpd_banner_change run=ci:4242 started=2026-12-05T10:15:00+00:00\n")


def test_a_host_being_changed_is_read_again_once_the_change_is_put_back():
    # The same recorded read, first with a change scenario's journal on new-mx-in-2 (its smtpd_banner changed), then without.
    connection = Connection(BEING_CHANGED.replace("smtpd_banner = $myhostname ESMTP", "smtpd_banner = changed ESMTP"),
                            rc=changes.CHANGING, then=RECORDED["new-mx-in-2"])
    subject = estate(RECORDED, connections={"new-mx-in-1": Connection(RECORDED["new-mx-in-1"]), "new-mx-in-2": connection})
    alike.configured_alike(subject, "inbound-mx", subject.hosts_playing("inbound-mx"))
    assert connection.commands == [facts.EFFECTIVE_CONFIGURATION] * 2


def test_a_host_changed_throughout_the_wait_fails_naming_its_journal_and_scenario():
    connection = Connection(BEING_CHANGED, rc=changes.CHANGING)
    subject = estate(RECORDED, connections={"new-mx-in-1": Connection(RECORDED["new-mx-in-1"]), "new-mx-in-2": connection})
    with pytest.raises(AssertionError) as failure:
        alike.configured_alike(subject, "inbound-mx", subject.hosts_playing("inbound-mx"))
    assert str(failure.value) == (
        "host new-mx-in-2: was being changed by a change scenario (of this run, beside this one) for the 1 s waited, "
        f"so it cannot be compared with the other hosts of its role: change journal {JOURNAL} (scenario=smtpd_banner_change "
        "run=ci:4242 started=2026-12-05T10:15:00+00:00); if no run is changing the host, put it back with "
        f"`sh {JOURNAL}/restore.sh` on the host")
    assert len(connection.commands) > 1  # asked again, not answered from the run's facts


def test_the_journal_listing_says_each_journal_and_exits_changing_only_when_there_is_one(tmp_path):
    # Run here, on a folder of this test's own: the shell the host runs, with JOURNALS pointed at it.
    assert facts.EFFECTIVE_CONFIGURATION.endswith(changes.JOURNALS_LISTED)
    journals = tmp_path / "changes"
    listing = "echo read && " + changes.JOURNALS_LISTED.replace(changes.JOURNALS, str(journals))
    assert subprocess.run(["sh", "-c", listing], capture_output=True, text=True).returncode == 0  # no folder yet
    (journals / "left-empty").mkdir(parents=True)  # no restore.sh: not a journal (yet)
    (journals / "j1").mkdir()
    (journals / "j1" / "restore.sh").write_text("")
    (journals / "j1" / "about").write_text("scenario=smtpd_banner_change\n")
    ran = subprocess.run(["sh", "-c", listing], capture_output=True, text=True)
    assert (ran.returncode, ran.stdout) == (changes.CHANGING, f"read\n{journals}/j1\tscenario=smtpd_banner_change\n")
    failed = subprocess.run(["sh", "-c", "false && " + changes.JOURNALS_LISTED.replace(changes.JOURNALS, str(journals))])
    assert failed.returncode == 1  # a read that fails before the listing fails as itself
