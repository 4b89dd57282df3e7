"""`mxspec diff`: the comparison on recorded outputs (no lab), the command end to end on this machine,
and on the lab: the healthy lab's differences as the baseline, each injected fault adding exactly its own.

The recorded outputs in tests/data/diff/ are `SURVEY_COMMAND`'s on the lab's old-mx-1 and new-router-1.
"""

import copy
import dataclasses
import json
import os
import stat
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import LAB, PROJECT, output, run_mxspec, run_mxspec_pytest
from faults import edit, injected, postconf
from mxspec.checks.postconf import parse_services
from mxspec.diff import render
from mxspec.diff.compare import Difference, compare, map_differences, milter_list, rule_differences
from mxspec.diff.survey import (
    SURVEY_COMMAND,
    LookupFailed,
    MapUse,
    Survey,
    look_up,
    lookup_commands,
    map_uses,
    maps_for,
    parse_sockets,
    parse_survey,
    rules,
    source_keys,
)
from mxspec.estate import contract
from mxspec.lab import baseline
from mxspec.lab.commands import running_lab, ssh_config_path
from mxspec.report import differences as report_differences
from mxspec.report.readiness import Item
from mxspec.report.results import Result, Results

DATA = Path(__file__).parent / "data" / "diff"
LAB_PACKAGES = {"python3-milter", "clamav-daemon", "clamav-milter", "rspamd", "opendkim", "sasl2-bin"}


def recorded(name: str) -> Survey:
    return parse_survey(name, (DATA / f"{name}.txt").read_text())


@pytest.fixture
def old() -> Survey:
    return recorded("old-mx-1")


@pytest.fixture
def new() -> Survey:
    return recorded("new-router-1")


def expected_of(name: str) -> dict[str, str]:
    return contract.host_parameters({"smtp_name": f"{name}.lab.test"}, name)


def differences(old: Survey, new: Survey) -> list[Difference]:
    return compare(old, new, expected_of(old.name), expected_of(new.name), LAB_PACKAGES)


def keyed(found: list[Difference]) -> set[tuple]:
    return {(d.kind, d.subject, d.old, d.new) for d in found}


def set_parameter(survey: Survey, name: str, value: str) -> None:
    """As `postconf -e name=value` leaves a host (a value without $names)."""
    survey.parameters[name] = survey.expanded[name] = survey.explicit[name] = value


# ---- reading what postconf, ss and dpkg-query print

def test_the_survey_is_read_in_sections_from_one_command(old):
    assert SURVEY_COMMAND.count("postconf") == 6 and "dpkg-query" in SURVEY_COMMAND and "ss -ltnp" in SURVEY_COMMAND
    assert old.version == "3.7.11" and old.compatibility_level == "3.6"
    assert old.explicit["message_size_limit"] == "10240000"
    assert old.defaults["compatibility_level"] == "0"
    assert old.packages["postfix"].startswith("3.7.11")
    assert len(old.parameters) > 1000 and set(old.explicit) < set(old.parameters)


def test_master_cf_services_leave_their_overrides_to_postconf_P(old):
    assert old.services["relay/unix"] == "- - y - - smtp"
    assert old.overrides["relay/unix/syslog_name"] == "postfix/$service_name"
    assert parse_services("submission inet n - n - - smtpd -o smtpd_tls_security_level=encrypt -o x=y")[
        "submission/inet"] == "n - n - - smtpd"


def test_sockets_are_compared_by_scope_and_port_not_by_the_hosts_own_addresses():
    sockets = parse_sockets('LISTEN 0 100 0.0.0.0:25 0.0.0.0:* users:(("master",pid=1,fd=13))\n'
                            'LISTEN 0 100 [::]:25 [::]:* users:(("master",pid=1,fd=14))\n'
                            "LISTEN 0 4096 [::1]:783 [::]:*\n"
                            "LISTEN 0 4096 10.213.0.10:8080 0.0.0.0:*\n")
    assert sockets == {"all addresses:25": "master", "loopback:783": "", "a host address:8080": ""}
    held = 'LISTEN 0 4096 127.0.0.1:783 0.0.0.0:* users:(("spamd child",pid=9,fd=5),("spamd",pid=8,fd=5))\n'
    assert parse_sockets(held + held.replace("127.0.0.1", "[::1]").replace("9", "7")) == {"loopback:783": "spamd, spamd child"}


def test_netstat_where_a_host_has_no_ss():
    assert parse_sockets("tcp 0 0 0.0.0.0:25 0.0.0.0:* LISTEN 812/master\n"
                         "tcp6 0 0 ::1:783 :::* LISTEN 900/spamd\n") == {"all addresses:25": "master", "loopback:783": "spamd"}


def test_milter_lists_split_on_commas_and_spaces_keeping_braced_milters_whole():
    assert milter_list("inet:127.0.0.1:9900, inet:127.0.0.1:7357 { unix:/x.sock, default_action=accept }") == [
        "inet:127.0.0.1:9900", "inet:127.0.0.1:7357", "{ unix:/x.sock, default_action=accept }"]


# ---- the comparison

def test_the_new_router_against_the_old_all_in_one_host(old, new):
    found = differences(old, new)
    assert keyed(found) >= {
        ("parameter", "relayhost", "", "[new-out-1.lab.test]"),
        ("parameter", "disable_vrfy_command", "yes", "no"),
        ("milter", "smtpd_milters", "unix:/spamass/spamass.sock", None),
        ("milter", "non_smtpd_milters", None, "inet:127.0.0.1:9900"),
        ("socket", "loopback:783", "listening", None),
        ("package", "spamassassin", "4.0.1-1~deb12u1", None),
    }
    assert [d.reason for d in found if d.subject == "loopback:783"] == ["listening on old-mx-1 only (spamd, spamd child)"]
    by_subject = {d.subject: d for d in found if d.kind == "parameter"}
    assert by_subject["relayhost"].reason == "set in main.cf on new-router-1 only; old-mx-1 keeps its default"
    assert by_subject["mynetworks"].reason == "both hosts set it in main.cf"
    # each host's own name: expected, and as the inventory says
    assert by_subject["myhostname"].expected and "each as its inventory says" in by_subject["myhostname"].reason
    assert [d.subject for d in found if d.expected] == ["myhostname"]
    # the same $names expanding differently (smtp_helo_name = $myhostname): said once, at myhostname
    assert "smtp_helo_name" not in by_subject and "smtpd_banner" not in by_subject
    # what postconf says of the process, not of the configuration
    assert "process_id" not in by_subject and "mail_version" not in by_subject


def test_a_host_against_itself_has_no_differences(old):
    assert differences(old, copy.deepcopy(old)) == []


def test_a_default_moved_by_compatibility_level_says_so(old, new):
    baseline = keyed(differences(old, new))
    set_parameter(old, "compatibility_level", "2")
    # as `postconf -o compatibility_level=2 -x` prints them on old-mx-1 (Postfix 3.7.11)
    old.expanded.update({"lmtp_tls_fingerprint_digest": "md5", "respectful_logging": "no",
                         "smtp_tls_fingerprint_digest": "md5", "smtpd_relay_before_recipient_restrictions": "no",
                         "smtpd_tls_fingerprint_digest": "md5", "tlsproxy_client_fingerprint_digest": "md5",
                         "tlsproxy_tls_fingerprint_digest": "md5"})
    found = differences(old, new)
    added = [d for d in found if (d.kind, d.subject, d.old, d.new) not in baseline]
    assert {d.subject for d in added} == {"compatibility_level", "lmtp_tls_fingerprint_digest", "respectful_logging",
                                          "smtp_tls_fingerprint_digest", "smtpd_relay_before_recipient_restrictions",
                                          "smtpd_tls_fingerprint_digest"}
    assert keyed(found) >= baseline
    for difference in added:
        if difference.subject != "compatibility_level":
            assert difference.reason == ("neither host sets it: the default depends on compatibility_level "
                                         "(2 on old-mx-1, 3.6 on new-router-1)"), difference


def test_a_default_moved_by_the_postfix_version_says_both_versions(old, new):
    new.parameters["mail_version"] = "3.9.1"
    new.defaults["smtpd_tls_protocols"] = new.parameters["smtpd_tls_protocols"] = ">=TLSv1.2"
    new.expanded["smtpd_tls_protocols"] = ">=TLSv1.2"
    found = [d for d in differences(old, new) if d.subject == "smtpd_tls_protocols"]
    assert [d.reason for d in found] == ["neither host sets it: the default moved (Postfix 3.7.11 on old-mx-1: "
                                         ">=TLSv1; Postfix 3.9.1 on new-router-1: >=TLSv1.2)"]


def test_a_parameter_one_postfix_does_not_know(old, new):
    new.parameters["mail_version"] = "3.9.1"
    new.parameters["smtpd_new_thing"] = new.expanded["smtpd_new_thing"] = "yes"
    found = [d for d in differences(old, new) if d.subject == "smtpd_new_thing"]
    assert found[0].old is None and found[0].reason == "only Postfix 3.9.1 (new-router-1) knows this parameter"


def test_a_different_size_limit_is_one_difference(old, new):
    baseline = keyed(differences(old, new))
    set_parameter(new, "message_size_limit", "20480000")
    added = [d for d in differences(old, new) if (d.kind, d.subject, d.old, d.new) not in baseline]
    assert [(d.subject, d.old, d.new, d.reason) for d in added] == [
        ("message_size_limit", "10240000", "20480000", "both hosts set it in main.cf")]


def test_a_milter_removed_is_one_difference(old, new):
    baseline = keyed(differences(old, new))
    set_parameter(new, "smtpd_milters", "")
    new.expanded["non_smtpd_milters"] = ""  # $smtpd_milters
    added = [d for d in differences(old, new) if (d.kind, d.subject, d.old, d.new) not in baseline]
    assert [(d.kind, d.subject, d.old, d.new) for d in added] == [("milter", "smtpd_milters", "inet:127.0.0.1:9900", None)]


def test_host_specific_parameters_are_expected_and_checked_against_the_inventory(old, new):
    assert {"myhostname", "inet_interfaces", "smtp_bind_address", "smtpd_tls_cert_file"} <= contract.HOST_SPECIFIC
    set_parameter(new, "smtpd_tls_cert_file", "/etc/ssl/new/host.crt")
    set_parameter(new, "smtp_bind_address", "10.213.0.31")
    found = {d.subject: d for d in differences(old, new)}
    assert found["smtpd_tls_cert_file"].expected and found["smtpd_tls_cert_file"].reason == "host-specific (each host's own)"
    # a host that strays from what its inventory implies: a real difference, said so
    assert not found["smtp_bind_address"].expected
    assert found["smtp_bind_address"].reason == "host-specific, but new-router-1 has '10.213.0.31', its inventory implies ''"
    assert not [d for d in differences(old, new) if d.subject in ("smtpd_tls_cert_file", "myhostname") and not d.expected]


def test_a_password_is_masked_in_the_differences_unless_it_only_names_a_table(old, new):
    set_parameter(new, "smtp_sasl_password_maps", "static:relay:s3cret")
    new.overrides["submission/inet/smtp_sasl_password_maps"] = "inline:{ relay.example.com = user:s3cret }"
    found = {d.subject: d.new for d in differences(old, new) if "password" in d.subject}
    assert found == {"smtp_sasl_password_maps": "(masked)", "submission/inet/smtp_sasl_password_maps (-o)": "(masked)"}
    set_parameter(new, "smtp_sasl_password_maps", "hash:/etc/postfix/sasl_passwd")  # where it is kept: no secret
    assert [d.new for d in differences(old, new) if d.subject == "smtp_sasl_password_maps"] == [
        "hash:/etc/postfix/sasl_passwd"]


def test_a_derived_myorigin_is_expected_a_set_one_is_not(old, new):
    set_parameter(new, "myorigin", "new-router-1.lab.test")  # what $myhostname gives: derived from the name
    assert [d.expected for d in differences(old, new) if d.subject == "myorigin"] == [True]
    set_parameter(new, "myorigin", "example.org")
    assert [d.expected for d in differences(old, new) if d.subject == "myorigin"] == [False]


def test_master_cf_services_and_overrides(old, new):
    new.services["submission/inet"] = "n - n - - smtpd"
    new.overrides["submission/inet/smtpd_tls_security_level"] = "encrypt"
    new.overrides["relay/unix/syslog_name"] = "postfix/relay"
    found = {(d.subject, d.old, d.new) for d in differences(old, new) if d.kind == "service"}
    assert found == {("submission/inet", None, "n - n - - smtpd"),
                     ("submission/inet/smtpd_tls_security_level (-o)", None, "encrypt"),
                     ("relay/unix/syslog_name (-o)", "postfix/$service_name", "postfix/relay")}


def test_packages_compared_are_the_mail_stack_and_those_the_inventories_name(old, new):
    new.packages["postfix"] = "3.9.1-1"
    new.packages["curl"] = "9"
    found = {d.subject: d for d in differences(old, new) if d.kind == "package"}
    assert found["postfix"].reason == "another version" and "curl" not in found


# ---- maps: old keys looked up on the new host

TRANSPORT = "# routes\nalpha.test\tsmtp:[lab-store.lab.test]\nbeta.test\tsmtp:[lab-store.lab.test]\n"


def test_the_maps_old_keys_come_from(old):
    uses = {use.parameter: use for use in map_uses(old)}
    assert set(uses) == {"alias_maps", "relay_recipient_maps", "transport_maps"}  # not alias_database
    assert uses["alias_maps"].aliases and not uses["transport_maps"].aliases
    assert source_keys(uses["transport_maps"], {"/etc/postfix/transport": TRANSPORT}) == ["alpha.test", "beta.test"]
    use = MapUse("transport_maps", ("regexp:/etc/postfix/transport.re", "texthash:/etc/postfix/t2"))
    assert use.keyed == [("texthash", "/etc/postfix/t2")]


def test_the_new_host_is_asked_through_its_own_tables_for_the_parameter(old, new):
    assert maps_for(new, "transport_maps") == ("hash:/etc/postfix/transport",)
    assert maps_for(new, "relay_recipient_maps") == ()
    new.overrides["submission/inet/smtpd_sender_login_maps"] = "lmdb:/etc/postfix/senders"
    assert maps_for(new, "submission/inet/smtpd_sender_login_maps") == ("lmdb:/etc/postfix/senders",)


def test_lookups_write_nothing_on_the_host_and_are_batched_within_one_argument_of_sh_c():
    keys = [f"key{n:05}@alpha.test" for n in range(4000)] + ["it's"]
    commands = lookup_commands(("hash:/etc/postfix/transport",), keys, aliases=False)
    assert len(commands) == 2 and all(len(command) < 65_000 for command in commands)
    assert "; printf '%s\\n' key00000@alpha.test key00001@alpha.test " in commands[0]
    # postmap is asked only once the table is known to open: a table it cannot open would leave a
    # fatal line in the host's mail log.
    assert commands[0].startswith("types=$(postconf -m); ")
    assert "[ -e /etc/postfix/transport.db ] || { echo \"postmap: fatal: open database /etc/postfix/transport.db" in commands[0]
    assert commands[1].endswith(" key03999@alpha.test 'it'\"'\"'s' | postmap -q - hash:/etc/postfix/transport")
    assert sum(command.count("@alpha.test") for command in commands) == 4000
    assert lookup_commands(("hash:/etc/aliases",), ["postmaster"], aliases=True)[0].endswith("postalias -q - hash:/etc/aliases")


def test_a_table_postmap_cannot_open_is_its_message_not_every_key_missing():
    class Answering:  # a connection whose postmap cannot open the table
        name = "new-router-1"

        def run(self, command):
            return SimpleNamespace(rc=1, stdout="", stderr="postmap: fatal: unsupported dictionary type: lmdb\n")

    with pytest.raises(LookupFailed, match="^postmap: fatal: unsupported dictionary type: lmdb$"):
        look_up(Answering(), ("lmdb:/etc/postfix/transport",), ["alpha.test"], aliases=False)


def test_map_keys_that_differ_or_are_missing(new):
    use = MapUse("transport_maps", ("hash:/etc/postfix/transport",))
    old_answers = {"alpha.test": "smtp:[lab-store.lab.test]", "beta.test": "smtp:[lab-store.lab.test]",
                   "gamma.test": "smtp:[x]"}
    new_answers = {"alpha.test": "smtp:[lab-remote.lab.test]", "gamma.test": "smtp:[x]"}
    found = map_differences(use, ["alpha.test", "Beta.test", "gamma.test", "stale.test"], old_answers, new_answers,
                            new, ("hash:/etc/postfix/transport",))
    assert [(d.subject, d.old, d.new, d.reason) for d in found] == [
        ("transport_maps alpha.test", "smtp:[lab-store.lab.test]", "smtp:[lab-remote.lab.test]",
         "answered otherwise by new-router-1's transport_maps: hash:/etc/postfix/transport"),
        ("transport_maps Beta.test", "smtp:[lab-store.lab.test]", None,
         "not found in new-router-1's transport_maps: hash:/etc/postfix/transport")]


def test_regexp_and_pcre_rules_are_compared_rule_by_rule_in_order(new):
    old_source = textwrap.dedent("""\
        # header checks
        /^Subject: .*viagra/i   REJECT spam
        /^X-Spam: yes$/         DISCARD
        if /^Received:/
        /from \\/evil/         REJECT
          continued
        endif
        """)
    old_rules = rules(("regexp:/etc/postfix/header_checks",), {"/etc/postfix/header_checks": old_source})
    assert old_rules == {"/^Subject: .*viagra/i": "REJECT spam", "/^X-Spam: yes$/": "DISCARD",
                         "if /^Received:/": "", "/from \\/evil/": "REJECT continued", "endif": ""}
    new_rules = {"/^X-Spam: yes$/": "HOLD", "/^Subject: .*viagra/i": "REJECT spam", "if /^Received:/": "", "endif": ""}
    use = MapUse("header_checks", ("regexp:/etc/postfix/header_checks",))
    found = rule_differences(use, old_rules, new_rules, new, ("pcre:/etc/postfix/header_checks.pcre",))
    where = "new-router-1's header_checks: pcre:/etc/postfix/header_checks.pcre"
    assert [(d.subject, d.old, d.new, d.reason) for d in found] == [
        ("header_checks rule /^X-Spam: yes$/", "DISCARD", "HOLD", f"answered otherwise by {where}"),
        ("header_checks rule /from \\/evil/", "REJECT continued", None, f"no such rule in {where}"),
        ("header_checks rule order", "/^Subject: .*viagra/i /^X-Spam: yes$/ if /^Received:/ endif",
         "/^X-Spam: yes$/ /^Subject: .*viagra/i if /^Received:/ endif",
         "the rules both have are tried in another order: the first match wins")]


# ---- what is written

def test_text_and_markdown_group_by_role_then_kind(old, new):
    pair = {"role": "smtp-router", "old": "old-mx-1", "new": "new-router-1", "old_postfix": "3.7.11",
            "new_postfix": "3.7.11", "differences": [d.as_dict() for d in differences(old, new)]}
    result = {"old": "old-mx", "new": "new-mx", "pairs": [pair], "unmatched_roles": [],
              "unreachable": {"new-out-1": "host new-out-1 unreachable: Connection refused"}}
    shown = render.text(result)
    assert "== role smtp-router\n-- new-router-1 against old-mx-1 (Postfix 3.7.11):" in shown
    assert shown.index("  Postfix parameters") < shown.index("  milters") < shown.index("  expected: host-specific")
    assert "not compared: host new-out-1 unreachable: Connection refused" in shown
    written = render.markdown(result)
    assert "## Role smtp-router" in written and "| relayhost | *(empty)* | `[new-out-1.lab.test]` |" in written


# ---- in the readiness report: a section, and beside each failing behaviour what may explain it

def _report_inputs(tmp_path: Path) -> tuple[Path, Path, Path]:
    """Results of a routing scenario failing on new-router-1, an SMTP size scenario passing, and a diff."""
    data = Results({"old-mx": ["smtp-router"], "new-mx": ["smtp-router"]},
                   {"old-mx": {"old-mx-1": ["smtp-router"]}, "new-mx": {"new-router-1": ["smtp-router"],
                                                                       "new-router-2": ["smtp-router"]}})
    for estate, host, scenario, outcome in (
            ("old-mx", "old-mx-1", "Mail for each local domain is routed to its next hop", "passed"),
            ("new-mx", "new-router-1", "Mail for each local domain is routed to its next hop", "failed"),
            ("new-mx", "new-router-2", "Mail for each local domain is routed to its next hop", "passed"),
            ("old-mx", "old-mx-1", "Oversize messages are refused", "passed"),
            ("new-mx", "new-router-1", "Oversize messages are refused", "passed"),
            ("new-mx", "new-router-2", "Oversize messages are refused", "passed")):
        data.results.append(Result(estate, host, ["smtp-router"], "Routing", scenario, "", outcome,
                                   "it failed" if outcome == "failed" else ""))
    route = Difference("map", "transport_maps beta.test", "smtp:[lab-store.lab.test]", "smtp:[lab-remote.lab.test]",
                       "answered otherwise by new-router-1's transport_maps: hash:/etc/postfix/transport")
    size = Difference("parameter", "message_size_limit", "10240000", "20480000", "both hosts set it in main.cf")
    name = Difference("parameter", "myhostname", "old-mx-1.lab.test", "new-router-1.lab.test", "host-specific", True)
    pairs = [{"role": "smtp-router", "old": "old-mx-1", "new": host, "old_postfix": "3.7.11", "new_postfix": "3.7.11",
              "differences": [d.as_dict() for d in ([route, size, name] if host == "new-router-1" else [size])]}
             for host in ("new-router-1", "new-router-2")]
    diff = tmp_path / "diff.json"
    diff.write_text(json.dumps({"old": "old-mx", "new": "new-mx", "pairs": pairs, "unreachable": {},
                                "unmatched_roles": [], "hosts": {}}))
    old, new = (Results({e: data.estates[e]}, {e: data.hosts[e]}) for e in ("old-mx", "new-mx"))
    old.results = [r for r in data.results if r.estate == "old-mx"]
    new.results = [r for r in data.results if r.estate == "new-mx"]
    old.write(tmp_path / "old.json")
    new.write(tmp_path / "new.json")
    return tmp_path / "old.json", tmp_path / "new.json", diff


def test_the_report_shows_the_differences_and_beside_a_failed_route_the_routes_that_differ(tmp_path):
    old, new, diff = _report_inputs(tmp_path)
    result = run_mxspec("report", str(old), str(new), "--old", "old-mx", "--new", "new-mx", "--out",
                        str(tmp_path / "out"), "--diff", str(diff), timeout=120)
    assert result.returncode == 1, output(result)
    row = next(line for line in result.stdout.splitlines() if "routed to its next hop" in line)
    assert ("plausibly explained by routing: transport_maps beta.test: smtp:[lab-store.lab.test] -> "
            "smtp:[lab-remote.lab.test] (new-router-1)") in row
    assert "message_size_limit" not in row  # not a routing difference
    assert "### Configuration differences (old-mx → new-mx, `mxspec diff`)" in result.stdout
    assert "smtp-router: new-router-2 against old-mx-1: 1 differences" in result.stdout
    assert "myhostname" not in result.stdout  # host-specific: left out
    written = json.loads((tmp_path / "out/readiness.json").read_text())
    routing = next(b for b in written["behaviours"] if b["scenario"].startswith("Mail for each"))
    assert [(d["topic"], d["subject"], d["new_host"]) for d in routing["plausible_differences"]] == [
        ("routing", "transport_maps beta.test", "new-router-1")]
    assert written["differences"]["old"] == "old-mx"
    page = (tmp_path / "out/readiness.html").read_text()
    assert "1 differences may explain it" in page and "id='differences'" in page


def test_a_relay_scenario_is_matched_to_who_may_relay_not_to_routes():
    failed = Result("new-mx", "new-router-1", ["smtp-router"], "SMTP router",
                    "Authorised networks can relay through the router", "", "failed", "it failed")
    item = Item("smtp-router", "SMTP router", failed.scenario, "", new=[failed], status="regression")
    route = Difference("map", "transport_maps beta.test", "smtp:[a]", "smtp:[b]", "answered otherwise")
    networks = Difference("parameter", "mynetworks", "127.0.0.0/8 10.0.0.1/32", "127.0.0.0/8", "both hosts set it")
    diff = {"pairs": [{"role": "smtp-router", "old": "old-mx-1", "new": "new-router-1",
                       "differences": [route.as_dict(), networks.as_dict()]}]}
    assert [(topic, d["subject"]) for topic, _pair, d in report_differences.explaining(item, diff)] == [
        ("who may relay, which recipients are accepted", "mynetworks")]
    item.status = "improvement"  # only failures are explained
    assert report_differences.explaining(item, diff) == []


def test_a_diff_of_other_estates_or_not_a_diff_is_one_line(tmp_path):
    old, new, diff = _report_inputs(tmp_path)
    diff.write_text(diff.read_text().replace('"new": "new-mx"', '"new": "other-mx"'))
    result = run_mxspec("report", str(old), str(new), "--old", "old-mx", "--new", "new-mx", "--out",
                        str(tmp_path / "out"), "--diff", str(diff), timeout=120)
    assert result.returncode == 2 and result.stderr.strip() == (
        f"mxspec: error: {diff}: compares old-mx -> other-mx, the report old-mx -> new-mx")
    diff.write_text("[]")
    result = run_mxspec("report", str(old), str(new), "--old", "old-mx", "--new", "new-mx", "--diff", str(diff))
    assert result.returncode == 2 and "not a differential" in result.stderr and "Traceback" not in output(result)


def test_mx_diff_goes_with_mx_report_and_must_be_a_diff_of_the_run_estates(tmp_path):
    alone = run_mxspec_pytest("--hosts=old-mx,new-mx", f"--mx-diff={tmp_path / 'd.json'}")
    assert alone.returncode == 4 and "--mx-diff goes with --mx-report" in output(alone), output(alone)
    (tmp_path / "d.json").write_text(json.dumps({"old": "old-mx", "new": "other-mx", "pairs": []}))
    other = run_mxspec_pytest("--hosts=old-mx,new-mx", f"--mx-report={tmp_path / 'r'}", f"--mx-diff={tmp_path / 'd.json'}")
    assert other.returncode == 4, output(other)
    assert f"{tmp_path / 'd.json'}: compares old-mx -> other-mx, the report old-mx -> new-mx" in output(other)
    assert "Traceback" not in output(other)


# ---- the command on this machine: Postfix's tools faked from the recording

FAKE_TOOL = """#!/bin/sh
# the recorded section for these arguments, as the host printed it
section() {{ awk -v want="@@mxspec-section $1" '/^@@mxspec-section /{{on = ($0 == want); next}} on' {recording}; }}
case "$(basename "$0") $*" in
  "postconf ") section main ;;
  "postconf -x") section main-expanded ;;
  "postconf -n") section main-explicit ;;
  "postconf -d") section main-defaults ;;
  "postconf -M") section master ;;
  "postconf -P") section master-overrides ;;
  "dpkg-query "*) section packages ;;
  "ss -ltnp") section sockets ;;
  *) cat >/dev/null ;;
esac
"""


def fake_postfix(folder: Path) -> dict[str, str]:
    """An environment whose PATH finds postconf, postmap, dpkg-query and ss answering as old-mx-1 did."""
    folder.mkdir()
    for tool in ("postconf", "postmap", "postalias", "dpkg-query", "ss"):
        path = folder / tool
        path.write_text(FAKE_TOOL.format(recording=DATA / "old-mx-1.txt"))
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return {**os.environ, "PATH": f"{folder}:{os.environ['PATH']}"}


def local_inventory(folder: Path, unreachable: bool = False) -> Path:
    folder.mkdir()
    for estate, name in (("old", "old-1"), ("new", "new-1")):
        (folder / f"{estate}.yml").write_text(textwrap.dedent(f"""\
            all:
              children:
                smtp-router:
                  hosts:
                    {name}: {{ansible_host: localhost, ansible_connection: local}}
            """))
    if unreachable:
        with open(folder / "new.yml", "a") as new:
            new.write("        new-2: {ansible_host: 127.0.0.1, ansible_port: 9, mxspec_ssh_config: /dev/null}\n")
    return folder


def test_the_command_compares_and_writes_json_and_markdown(tmp_path):
    inventories = local_inventory(tmp_path / "inventories")
    result = run_mxspec("diff", "old", "new", "--inventories", str(inventories), "--json", str(tmp_path / "d.json"),
                        "--markdown", str(tmp_path / "d.md"), env=fake_postfix(tmp_path / "bin"), timeout=120)
    assert result.returncode == 0, output(result)
    assert "-- new-1 against old-1 (Postfix 3.7.11): 0 differences" in result.stdout
    assert "[mxspec] read old-1: Postfix 3.7.11" in result.stderr
    written = json.loads((tmp_path / "d.json").read_text())
    assert written["pairs"][0]["differences"] == [] and written["unreachable"] == {}
    assert written["hosts"]["old-1"]["commands"] <= 2 + 2 * 3  # a check, the survey, the sources, one lookup per map
    assert "# mxspec diff: old → new" in (tmp_path / "d.md").read_text()


def test_an_unreachable_host_is_one_line_and_the_others_are_still_compared(tmp_path):
    inventories = local_inventory(tmp_path / "inventories", unreachable=True)
    result = run_mxspec("diff", "old", "new", "--inventories", str(inventories), env=fake_postfix(tmp_path / "bin"),
                        timeout=120)
    assert result.returncode == 1, output(result)
    assert "-- new-1 against old-1" in result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("mxspec:")]
    assert len(errors) == 1 and errors[0].startswith("mxspec: host new-2 unreachable: "), result.stderr
    assert "Traceback" not in output(result)


def test_an_unknown_estate_is_one_line_naming_the_inventory():
    result = run_mxspec("diff", "old-mx", "nosuch-mx", timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert "unknown estate 'nosuch-mx'" in result.stderr and "inventories" in result.stderr
    assert "Traceback" not in output(result)


def test_output_files_in_a_missing_folder_and_one_estate_twice_are_refused_before_any_host_is_read(tmp_path):
    result = run_mxspec("diff", "old-mx", "new-mx", "--json", str(tmp_path / "no" / "d.json"), timeout=60)
    assert result.returncode == 2
    assert result.stderr == f"mxspec: error: cannot write {tmp_path}/no/d.json: no folder {tmp_path}/no\n"
    result = run_mxspec("diff", "old-mx", "old-mx", timeout=60)
    assert result.returncode == 2 and "the old and the new estate are both 'old-mx'" in result.stderr


def test_the_command_is_documented():
    assert "mxspec diff OLD NEW" in (PROJECT / "README.md").read_text()
    assert "diff/" in (PROJECT / "ARCHITECTURE.md").read_text()


# ---- on the lab: the healthy lab's differences are the baseline, each fault adds exactly its own

PAIRS = [("inbound-mx", "old-mx-1", "new-mx-in-1"), ("inbound-mx", "old-mx-1", "new-mx-in-2"),
         ("smtp-router", "old-mx-1", "new-router-1"), ("smtp-router", "old-mx-1", "new-router-2"),
         ("outbound-mx", "old-mx-1", "new-out-1")]


def lab_diff(folder: Path, name: str) -> dict:
    path = folder / f"{name}.json"
    result = run_mxspec("diff", "old-mx", "new-mx", "--json", str(path), timeout=300)
    assert result.returncode == 0, output(result)
    return json.loads(path.read_text())


def entries(result: dict) -> dict[tuple, dict]:
    """Each difference by what it is (role, hosts, kind, subject, both values); its reason is what it says of it."""
    return {(pair["role"], pair["old"], pair["new"], d["kind"], d["subject"], d["old"], d["new"]): d
            for pair in result["pairs"] for d in pair["differences"]}


def test_lab_baseline_differences_are_real_and_explained(lab, tmp_path):
    result = lab_diff(tmp_path, "baseline")
    assert [(p["role"], p["old"], p["new"]) for p in result["pairs"]] == PAIRS
    assert result["unreachable"] == {} and result["unmatched_roles"] == []
    found = entries(result)
    router = ("smtp-router", "old-mx-1", "new-router-1")
    assert found[(*router, "parameter", "relayhost", "", "[new-out-1.lab.test]")]["reason"] == (
        "set in main.cf on new-router-1 only; old-mx-1 keeps its default")
    assert (*router, "milter", "smtpd_milters", "unix:/spamass/spamass.sock", None) in found
    assert (*router, "socket", "loopback:783", "listening", None) in found
    assert (*router, "package", "spamassassin", "4.0.1-1~deb12u1", None) in found
    # the routes of the old all-in-one host, which the new inbound and outbound hosts leave to the routers
    assert found[("inbound-mx", "old-mx-1", "new-mx-in-1", "map", "transport_maps alpha.test", "smtp:[lab-store.lab.test]",
                  None)]["reason"] == "not found in new-mx-in-1's transport_maps: no table"
    assert not [key for key in found if key[:3] == router and key[3] == "map" and key[4].startswith("transport_maps")]
    for role, old, new in PAIRS:  # the one expected difference: each host's own name, as its inventory says
        assert [(key[4], d["reason"]) for key, d in found.items() if key[:3] == (role, old, new) and d["expected"]] == [
            ("myhostname", "host-specific, each as its inventory says")]
    assert all(d["reason"] for d in found.values())
    # bounded: a check, the survey, the map sources, one lookup per map parameter (transport, relay recipients, aliases)
    assert result["hosts"]["old-mx-1"]["commands"] <= 6
    assert all(host["commands"] <= 5 for name, host in result["hosts"].items() if name != "old-mx-1")
    # read-only: every host's configuration as at boot after it (the lab fixture made it so before)
    running = running_lab(LAB)
    assert {host: baseline.differences(running, ssh_config_path(running), host) for host in result["hosts"]} == {
        host: {} for host in result["hosts"]}


def _faults() -> list:
    transport = "/etc/postfix/transport"
    router, inbound = ("smtp-router", "old-mx-1", "new-router-1"), ("inbound-mx", "old-mx-1", "new-mx-in-1")
    digests = ("compatibility_level", "lmtp_tls_fingerprint_digest", "respectful_logging", "smtp_tls_fingerprint_digest",
               "smtpd_relay_before_recipient_restrictions", "smtpd_tls_fingerprint_digest")
    return [
        pytest.param(edit("new-router-1", transport, r"s/^beta\.test\s.*/beta.test\tsmtp:[lab-remote.lab.test]/",
                          f"postmap {transport}"),
                     {(*router, "map", "transport_maps beta.test")}, "answered otherwise by new-router-1's transport_maps",
                     id="route-changed"),
        pytest.param(edit("new-router-1", transport, r"/^alpha\.test\s/d", f"postmap {transport}"),
                     {(*router, "map", "transport_maps alpha.test")}, "not found in new-router-1's transport_maps",
                     id="map-entry-missing"),
        pytest.param(postconf("new-mx-in-1", "smtpd_milters", "inet:127.0.0.1:11332"),
                     {(*inbound, "milter", "smtpd_milters")}, "not in new-mx-in-1's smtpd_milters", id="milter-removed"),
        # the old host at level 2: the new hosts' level (3.6) is the raised one, and the defaults it moved show.
        # Restored by a restart, not a reload: at level 2 Postfix logs that it uses older defaults, and
        # "Postfix warns about nothing" reads the mail log since the master last started.
        pytest.param(dataclasses.replace(postconf("old-mx-1", "compatibility_level", "2"),
                                         restore="service postfix restart"),
                     {(*pair, "parameter", name) for pair in PAIRS for name in digests}, "compatibility_level",
                     id="compatibility-level-raised"),
        pytest.param(postconf("new-router-1", "message_size_limit", "20480000"),
                     {(*router, "parameter", "message_size_limit")}, "both hosts set it in main.cf", id="size-limit"),
    ]


@pytest.mark.parametrize(("fault", "added", "reason"), _faults())
def test_lab_fault_adds_exactly_its_own_differences(lab, tmp_path, fault, added, reason):
    baseline = entries(lab_diff(tmp_path, "baseline"))
    with injected(fault):
        faulted = entries(lab_diff(tmp_path, "faulted"))
    assert not set(baseline) - set(faulted), f"gone with {fault.what}: {set(baseline) - set(faulted)}"
    new = {key: faulted[key] for key in set(faulted) - set(baseline)}
    assert {key[:5] for key in new} == added
    for key, difference in new.items():
        if key[4] == "compatibility_level":  # the level itself, set on both hosts; the defaults it moves say it
            assert difference["reason"] == "both hosts set it in main.cf", (key, difference)
        else:
            assert reason in difference["reason"], (key, difference)
