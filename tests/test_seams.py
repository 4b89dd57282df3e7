"""The seams that later work builds on, without a lab: the connection kinds, the mail log, the adapter."""

import pytest

from mxspec import MxspecError
from mxspec.bdd import adapter
from mxspec.checks.maillog import RECENT_LINES, FileLog, JournalLog, MailLog
from mxspec.estate.inventory import SPEC, TARGET, TRANSPORT, Host
from mxspec.transport.backends import CHOOSABLE, KINDS, kind_of, spec_variables
from mxspec.transport.connection import Command, format_transcript


def host(**variables) -> Host:
    return Host("mx1", "est", "inv/est.yml:5", ["inbound-mx"], {TARGET: "mx1.example", **variables})


@pytest.mark.parametrize("variables, kind", [
    ({}, "ssh"),
    ({TRANSPORT: "paramiko"}, "paramiko"),
    ({"ansible_connection": "local"}, "local"),
    ({SPEC: "local://"}, "local"),
    ({SPEC: "docker://mx1"}, "testinfra"),
    ({SPEC: "ssh://root@mx1:2222"}, "ssh"),
])
def test_one_table_says_how_each_host_is_reached(variables, kind):
    assert kind_of(host(**variables)) is KINDS[kind]
    assert all(KINDS[name].description for name in KINDS) and set(CHOOSABLE) <= set(KINDS)


def test_an_unknown_transport_is_bad_input_naming_the_host_and_the_choices():
    with pytest.raises(MxspecError, match=r"^inv/est.yml:5: host 'mx1': mxspec_transport must be ssh, ssh-command or paramiko, "
                                          r"not 'telnet'$"):
        kind_of(host(**{TRANSPORT: "telnet"}))


def test_a_raw_ssh_spec_gives_the_inventorys_connection_variables():
    assert spec_variables("ssh://root@mx1:2222?ssh_config=/tmp/cfg") == {
        TARGET: "mx1", "ansible_user": "root", "ansible_port": "2222", "mxspec_ssh_config": "/tmp/cfg"}


class FakeHost:
    name = "mx1"

    def __init__(self, mail_log: str):
        self.mail_log = mail_log

    def setting(self, name: str) -> str:
        assert name == "mail_log"
        return self.mail_log


def test_the_mail_log_is_the_journal_or_a_file():
    assert type(MailLog.of(FakeHost("journal"))) is JournalLog
    log = MailLog.of(FakeHost("/var/log/mail.log"))
    assert type(log) is FileLog and log.where == "/var/log/mail.log"
    assert "tail -n" in log.recent_command() and "daemon started" in log.since_start_command("-e fatal:")
    # Either kind reads the same last lines, never a window of time (an hour of a busy MX's log is millions)
    assert f"-n {RECENT_LINES} " in JournalLog(None, "journal").recent_command() and "--since" not in \
        JournalLog(None, "journal").recent_command() and f"tail -n {RECENT_LINES} " in log.recent_command()


def test_a_poll_going_round_shows_its_repeats_once():
    same = [Command("postqueue -j", 0, "", "", 0.01)] * 4
    assert format_transcript(same) == ["$ postqueue -j    # exit 0, 10 ms",
                                       "  (3 more runs of the commands above, with the same output)"]


def test_the_adapter_knows_a_scenario_function_from_any_other():
    assert not adapter.is_scenario_function(test_the_adapter_knows_a_scenario_function_from_any_other)
    assert not adapter.is_scenario_function(None)
