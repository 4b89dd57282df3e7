"""The hosts of one role compared, without a lab: the effective configuration of the lab's two healthy
inbound MXs as recorded (`facts.EFFECTIVE_CONFIGURATION` on new-mx-in-1 and new-mx-in-2), and copies
of it changed the way an operator's slip would change a host."""

from pathlib import Path
from types import SimpleNamespace

import pytest

from mxspec.checks import alike, facts
from mxspec.checks.mailhost import Subject
from mxspec.estate.inventory import Estate, Host
from mxspec.estate.target import Target
from mxspec.steps.common import hosts_configured_alike

DATA = Path(__file__).parent / "data" / "alike"
RECORDED = {name: (DATA / f"{name}.txt").read_text() for name in ("new-mx-in-1", "new-mx-in-2")}
SIZE = "message_size_limit = 10240000"  # main.cf sets it on both: as written, expanded, and set


class Connection:
    """Answers the one command the check runs with the host's recorded output."""

    def __init__(self, output: str, rc: int = 0, stderr: str = ""):
        self.output, self.rc, self.stderr, self.commands = output, rc, stderr, []

    def run(self, command: str, *args: str) -> SimpleNamespace:
        self.commands.append(command)
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
    assert subject.evidence[1].endswith("parameters compared (postconf, postconf -P; defaults included); 0 differ")
    # The same as written, once expanded with each host's name (smtpd_banner = $myhostname ESMTP, smtp_helo_name):
    # alike; only the name itself is left out, as the contract says it differs by nature.
    assert subject.evidence[2:] == ["-- left out as host-specific: 1",
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
        "parameter differs (host-specific ones left out; an estate names more in host_specific_parameters):\n"
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
