"""What the live-configuration checks read, without a lab: map references in postconf's output,
map sources as postmap reads them, the master's start and reloads, certificates and keys.

The shell commands that need no Postfix (the mail log file's reload times, openssl on a certificate)
run here, on this machine, as they would on a host.
"""

import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from mxspec.checks import certificates, liveconfig, postconf
from mxspec.checks.mailhost import MailHost
from mxspec.checks.maillog import FileLog, JournalLog

POSTCONF = """\
alias_database = hash:/etc/aliases
alias_maps = hash:/etc/aliases, nis:mail.aliases
relay_recipient_maps = proxy:hash:/etc/postfix/relay_recipients
transport_maps = lmdb:/etc/postfix/transport, regexp:/etc/postfix/transport.re
header_checks = texthash:/etc/postfix/header_checks
smtp_tls_session_cache_database = btree:/var/lib/postfix/smtp_scache
virtual_alias_maps = cdb:/etc/postfix/virtual,btree:/etc/postfix/virtual2
submission/inet/smtpd_sender_login_maps = hash:/etc/postfix/senders
"""


def test_the_indexed_maps_in_use_are_found_with_where_they_are_used_and_caches_left_out():
    found = {m.name: m for m in liveconfig.indexed_maps(POSTCONF)}
    assert sorted(found) == ["btree:/etc/postfix/virtual2", "cdb:/etc/postfix/virtual", "hash:/etc/aliases",
                             "hash:/etc/postfix/relay_recipients", "hash:/etc/postfix/senders",
                             "lmdb:/etc/postfix/transport"]
    assert found["hash:/etc/aliases"].aliases and found["hash:/etc/aliases"].parameters == ("alias_database", "alias_maps")
    assert not found["hash:/etc/postfix/senders"].aliases
    assert found["lmdb:/etc/postfix/transport"].compiled == "/etc/postfix/transport.lmdb"
    assert found["cdb:/etc/postfix/virtual"].compiled == "/etc/postfix/virtual.cdb"
    assert found["btree:/etc/postfix/virtual2"].compiled == "/etc/postfix/virtual2.db"
    assert liveconfig.indexed_maps("mydestination = localhost\nmynetworks = 127.0.0.0/8\n") == []


def test_a_map_source_reads_as_postmap_reads_it():
    source = ("# routes\n\nalpha.test\tsmtp:[store.example]\n  # an indented comment\n"
              "beta.test   smtp:[store.example]\n\t  ,smtp:[store2.example]\n"
              "alpha.test\tsmtp:[second.example]\nlonely-key\n")
    assert liveconfig.source_entries(source) == {"alpha.test": "smtp:[store.example]",
                                                 "beta.test": "smtp:[store.example] ,smtp:[store2.example]"}
    aliases = "postmaster:    root\nabuse: postmaster, \n  ops@example.org\n"
    assert liveconfig.source_entries(aliases, aliases=True) == {"postmaster": "root",
                                                               "abuse": "postmaster, ops@example.org"}


def test_the_sample_spreads_over_the_source_first_and_last_included():
    keys = [f"k{i}" for i in range(1000)]
    picked = liveconfig.sample(keys, 20)
    assert len(picked) == 20 and picked[0] == "k0" and picked[-1] == "k999" and len(set(picked)) == 20
    assert liveconfig.sample(keys[:3], 20) == ["k0", "k1", "k2"]


def test_lookup_answers_and_values_compare_as_postfix_means_them():
    assert liveconfig.lookup_answers("alice@alpha.test\tOK\nBob@Beta.test\tREJECT\nnoise\n") == {
        "alice@alpha.test": "OK", "bob@beta.test": "REJECT"}
    assert liveconfig.lookup_answers("postmaster:\troot\n", aliases=True) == {"postmaster": "root"}
    assert postconf.same_value("postmaster,  ops@example.org", "postmaster, ops@example.org")
    assert not postconf.same_value("OK", "REJECT")


class FakeHost:
    """Answers each command from a table of (part of the command, stdout, rc), else runs it here."""

    name = "mx1"

    def __init__(self, answers=(), mail_log="/var/log/mail.log"):
        self.answers = list(answers)
        self.evidence: list[str] = []
        self.commands: list[str] = []
        self.mail_log = mail_log

    def setting(self, name):
        return {"mail_log": self.mail_log, "smtp_name": "mx1.example.org"}[name]

    output = MailHost.output  # the real one, over this run()

    def run(self, command, *args):
        self.commands.append(command)
        for part, stdout, rc in self.answers:
            if part in command:
                return SimpleNamespace(rc=rc, stdout=stdout, stderr="" if rc == 0 else "failed")
        done = subprocess.run(["/bin/sh", "-c", command], capture_output=True, text=True, timeout=30)
        return SimpleNamespace(rc=done.returncode, stdout=done.stdout, stderr=done.stderr)


def relay_map_host(source_time, compiled_time, answers):
    files = f"{source_time}\n{compiled_time}\n--source--\nalice@alpha.test\tOK\nbob@beta.test\tOK\n"
    return FakeHost([("postconf -nx", "relay_recipient_maps = hash:/etc/postfix/relay_recipients\n", 0),
                     ("postconf -m", "btree\ncidr\nhash\nlmdb\n", 0),
                     ("postmap -q -", answers, 0),
                     ("stat -c %Y", files, 0)])


def test_a_map_compiled_after_its_source_and_answering_as_it_says_passes_with_evidence():
    host = relay_map_host(1000, 1001, "alice@alpha.test\tOK\nbob@beta.test\tOK\n")
    assert [m.name for m in liveconfig.maps_compiled_from_source(host)] == ["hash:/etc/postfix/relay_recipients"]
    assert "looked up 2 of 2 keys" in host.evidence[-1]
    lookup = next(command for command in host.commands if "postmap -q -" in command)
    assert lookup.startswith("printf '%s\\n' alice@alpha.test bob@beta.test | postmap -q -") and "\n" not in lookup


def test_a_map_source_edited_without_postmap_fails_naming_both_files_and_the_wrong_answer():
    host = relay_map_host(1002, 1001, "alice@alpha.test\tOK\nbob@beta.test\tREJECT\n")
    with pytest.raises(AssertionError) as failure:
        liveconfig.maps_compiled_from_source(host)
    text = str(failure.value)
    assert ("/etc/postfix/relay_recipients.db is older than its source /etc/postfix/relay_recipients (compiled "
            "1970-01-01 00:16:41 UTC, source changed 1970-01-01 00:16:42 UTC): the source was edited and not "
            "compiled (postmap)") in text
    assert "bob@beta.test answers REJECT; the source says OK" in text


def test_an_alias_map_is_looked_up_with_postalias_and_read_in_its_own_format():
    host = FakeHost([("postconf -nx", "alias_maps = hash:/etc/aliases\nalias_database = hash:/etc/aliases\n", 0),
                     ("postconf -m", "hash\n", 0), ("postalias -q -", "postmaster:\troot\n", 0),
                     ("stat -c %Y", "1000\n1000\n--source--\n# aliases(5)\npostmaster:    root\n", 0)])
    liveconfig.maps_compiled_from_source(host)
    assert "(used by alias_maps, alias_database)" in host.evidence[-1] and "looked up 1 of 1 keys" in host.evidence[-1]


def test_a_map_in_a_format_this_postfix_cannot_open_or_never_compiled_fails():
    host = FakeHost([("postconf -nx", "transport_maps = cdb:/etc/postfix/transport\n", 0),
                     ("postconf -m", "btree\nhash\n", 0)])
    with pytest.raises(AssertionError, match="this Postfix cannot open cdb maps"):
        liveconfig.maps_compiled_from_source(host)
    host = FakeHost([("postconf -nx", "transport_maps = hash:/etc/postfix/transport\n", 0),
                     ("postconf -m", "btree\nhash\n", 0), ("stat -c %Y", "1000\nmissing\n--source--\n", 0)])
    with pytest.raises(AssertionError, match=r"not compiled: /etc/postfix/transport.db does not exist"):
        liveconfig.maps_compiled_from_source(host)


def test_a_map_without_its_source_file_says_so(tmp_path: Path):
    compiled = tmp_path / "transport.db"
    compiled.write_text("")
    host = FakeHost([("postconf -nx", f"transport_maps = hash:{tmp_path}/transport\n", 0), ("postconf -m", "hash\n", 0)])
    with pytest.raises(AssertionError, match=f"hash:{tmp_path}/transport: no source file {tmp_path}/transport to compile"):
        liveconfig.maps_compiled_from_source(host)


def test_a_host_without_indexed_maps_has_nothing_to_check():
    assert liveconfig.maps_compiled_from_source(FakeHost([("postconf -nx", "mydestination = localhost\n", 0)])) == []


RUNNING = "pid 4242\nnow 10000\nelapsed      500\nfile 9000 /etc/postfix/main.cf\nfile 9400 /etc/postfix/master.cf\n"


def test_the_master_start_is_now_minus_its_elapsed_time_and_reloads_count_from_then():
    running = liveconfig.parse_running(RUNNING)
    assert (running.pid, running.started) == ("4242", 9500)
    assert running.files == {"/etc/postfix/main.cf": 9000, "/etc/postfix/master.cf": 9400}
    assert liveconfig.parse_running(RUNNING + "file  /etc/postfix/gone.cf\n").files == running.files
    assert liveconfig.last_reload("9400\n9600\n9700.25\n", 9500) == 9700
    assert liveconfig.last_reload("9400\n", 9500) is None and liveconfig.last_reload("", 9500) is None


def live_host(running, reloads, mail_log="/var/log/mail.log"):
    return FakeHost([("master.pid", running, 0), ("reload -- version", reloads, 0)], mail_log)


def test_configuration_changed_before_the_start_or_last_reload_is_live():
    host = live_host(RUNNING, "")
    liveconfig.configuration_is_live(host)
    assert ("master 4242: started at 1970-01-01 02:38:20 UTC, no reload since in the mail log (/var/log/mail.log)"
            in host.evidence[-1])
    host = live_host(RUNNING.replace("file 9400", "file 9800"), "9900\n")
    liveconfig.configuration_is_live(host)
    assert "last reloaded at 1970-01-01 02:45:00 UTC" in host.evidence[-1]


def test_main_cf_changed_after_the_last_reload_is_not_live():
    host = live_host(RUNNING.replace("file 9000", "file 9950"), "9900\n", mail_log="journal")
    with pytest.raises(AssertionError) as failure:
        liveconfig.configuration_is_live(host)
    assert ("/etc/postfix/main.cf changed at 1970-01-01 02:45:50 UTC, 50 s after the master last (re)loaded it"
            in str(failure.value))
    assert "(master 4242, last reloaded at 1970-01-01 02:45:00 UTC)" in str(failure.value)
    assert "master.cf" not in str(failure.value).split("\n", 1)[1]
    assert "journalctl" in host.commands[-1] and "_PID=4242" in host.commands[-1]


def test_the_commands_run_on_the_host_are_plain_sh():
    commands = [liveconfig.RUNNING_COMMAND,
                liveconfig.MAP_FILES_COMMAND.format(source="/etc/postfix/x", compiled="/etc/postfix/x.db", limit=10)]
    for command in commands:
        syntax = subprocess.run(["/bin/sh", "-n", "-c", command], capture_output=True, text=True, timeout=30)
        assert syntax.returncode == 0, (command, syntax.stderr)


def test_a_stopped_master_is_said_so():
    host = FakeHost([("master.pid", "", 3)])
    with pytest.raises(AssertionError, match="cannot tell what Postfix runs"):
        liveconfig.configuration_is_live(host)


def test_reload_times_are_read_from_a_syslog_file_and_its_rotation_in_the_hosts_time(tmp_path: Path):
    log = tmp_path / "mail.log"
    (tmp_path / "mail.log.1").write_text("Jan  2 03:04:05 mx1 postfix/master[77]: reload -- version 3.7.11, "
                                         "configuration /etc/postfix\n")
    log.write_text("Jan  3 03:04:05 mx1 postfix/master[77]: reload -- version 3.7.11, configuration /etc/postfix\n"
                   "Jan  3 03:04:06 mx1 postfix/master[78]: reload -- version 3.7.11, configuration /etc/postfix\n"
                   "2026-01-04T03:04:05.123456+00:00 mx1 postfix/master[77]: reload -- version 3.7.11, conf\n"
                   "Jan  3 03:05:00 mx1 postfix/master[77]: daemon started -- version 3.7.11\n")
    command = FileLog(FakeHost(), str(log)).reload_times_command("77", 0)
    done = subprocess.run(["/bin/sh", "-c", command], capture_output=True, text=True, timeout=30, env={"TZ": "UTC"})
    times = [int(word) for word in done.stdout.split()]
    assert done.returncode == 0 and len(times) == 3, done
    year = time.gmtime().tm_year
    expected_third = int(time.mktime(time.strptime("2026-01-04 03:04:05", "%Y-%m-%d %H:%M:%S"))) - time.timezone
    assert time.gmtime(times[0])[:6] in [(year, 1, 2, 3, 4, 5), (year - 1, 1, 2, 3, 4, 5)]
    assert time.gmtime(times[1])[1:6] == (1, 3, 3, 4, 5)
    assert times[2] == expected_third


def test_an_unreadable_log_file_says_so():
    command = FileLog(FakeHost(), "/nonexistent/mail.log").reload_times_command("77", 0)
    done = subprocess.run(["/bin/sh", "-c", command], capture_output=True, text=True, timeout=30)
    assert done.returncode == 3 and "no readable mail log /nonexistent/mail.log" in done.stderr


def test_the_journal_read_of_reloads_is_the_masters_own_entries_since_it_started():
    command = JournalLog(FakeHost(mail_log="journal"), "journal").reload_times_command("4242", 9500)
    assert "--since @9500 _PID=4242 SYSLOG_FACILITY=2" in command and "'[4242]: reload -- version'" in command
    syntax = subprocess.run(["/bin/sh", "-n", "-c", command], capture_output=True, text=True, timeout=30)
    assert syntax.returncode == 0, syntax.stderr


def test_key_files_are_smtpds_key_files_in_main_and_master_cf_else_its_chain_files():
    both = ("smtpd_tls_cert_file = /etc/ssl/host.crt\nsmtpd_tls_key_file = /etc/ssl/host.key\n"
            "smtpd_tls_chain_files = /etc/ssl/chain.pem\nsubmission/inet/smtpd_tls_key_file = /etc/ssl/sub.key\n"
            "smtp_tls_key_file = /etc/ssl/client.key\n")
    assert certificates.key_files(both) == (["/etc/ssl/host.key", "/etc/ssl/sub.key"], ["/etc/ssl/chain.pem"])
    assert certificates.key_files("smtpd_tls_chain_files = /etc/ssl/rsa.pem, /etc/ssl/ec.pem\n") == (
        ["/etc/ssl/rsa.pem", "/etc/ssl/ec.pem"], [])
    assert certificates.key_files("mydestination = localhost\n") == ([], [])


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> Path:
    """A key with a certificate valid 5 days, and another key with one valid a year."""
    here = tmp_path_factory.mktemp("certs")
    for name, days in (("soon", "5"), ("year", "365")):
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", days, "-subj", f"/CN={name}.example.org",
                "-keyout", f"{name}.key", "-out", f"{name}.crt", cwd=here)
    return here


def served(certs: Path, name: str, port: int = 25) -> certificates.Served:
    der = subprocess.run(["openssl", "x509", "-in", certs / f"{name}.crt", "-outform", "DER"], capture_output=True,
                         check=True).stdout
    command = certificates.read_certificate_command(der)
    assert "\n" not in command
    return certificates.parse_x509(port, FakeHost().run(command).stdout)


def keys_of(certs: Path, *names: str) -> dict[str, str]:
    host = FakeHost([("postconf", "".join(f"smtpd_tls_key_file = {certs / n}.key\n" for n in names), 0)])
    return certificates.configured_keys(host)[0]


def test_a_certificate_valid_beyond_the_margin_and_matching_its_key_passes(certs):
    cert = served(certs, "year")
    assert cert.subject == "CN = year.example.org" and 364 < cert.days_left(time.time()) <= 365
    assert certificates.certificate_problems(cert, keys_of(certs, "soon", "year"), 21, time.time()) == []


def test_a_certificate_expiring_within_the_margin_fails_saying_when(certs):
    problems = certificates.certificate_problems(served(certs, "soon", 587), keys_of(certs, "soon"), 21, time.time())
    assert len(problems) == 1
    assert problems[0].startswith("port 587: the certificate (CN = soon.example.org) expires in 5.0 days (not after ")
    assert problems[0].endswith("within the estate's margin of 21 days")
    later = certificates.certificate_problems(served(certs, "soon"), keys_of(certs, "soon"), 3, time.time() + 6 * 86400)
    assert "expired 1.0 days ago" in later[0]


def test_a_certificate_whose_key_postfix_does_not_have_fails_naming_the_key_files(certs):
    problems = certificates.certificate_problems(served(certs, "year"), keys_of(certs, "soon"), 21, time.time())
    assert problems == [f"port 25: the certificate served (CN = year.example.org) does not match the private key "
                        f"Postfix is configured with ({certs / 'soon.key'})"]
    besides = certificates.certificate_problems(served(certs, "year"), keys_of(certs, "soon"), 21, time.time(),
                                                ("/root/other.pem",))
    assert besides[0].endswith("; smtpd_tls_chain_files (/root/other.pem) is set too, and Postfix serves from it")
