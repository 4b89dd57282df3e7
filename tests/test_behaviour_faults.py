"""Every scenario is shown to fail on a host that lacks its behaviour, and to pass once restored.

Each case injects a fault into a real lab host, runs the scenario against it as an operator
would, checks it fails for the right reason, restores the host, and checks it passes again.
"""

from dataclasses import dataclass

import pytest

from conftest import output, run_mxspec_pytest
from faults import Fault, deferred_message_aged, edit, injected, postconf, service_stopped

DNS_CONF = "/etc/unbound/unbound.conf.d/lab.conf"
RESTART_DNS = "systemctl restart unbound"
AFTER_VIEW = "/after-cutover/,$"  # sed address: the new estate's view of the lab DNS
# The classic open relay: every network counted as the estate's own.
OPEN_RELAY = "0.0.0.0/0"
UNUSED_PARAMETER = "postconf: warning: /etc/postfix/main.cf: unused parameter: smtpd_tls_securty_level=may"
# Postfix warns of a compiled map older than its source when a program opens it, unless the source
# changed in the last 100 s; smtpd opens relay_recipients when it starts for a connection.
STALE_MAP_OPENED = ("touch -d '10 minutes ago' /etc/postfix/relay_recipients.db && "
                    "touch -d '5 minutes ago' /etc/postfix/relay_recipients && postfix reload && sleep 2 && "
                    "python3 -c \"import smtplib; smtplib.SMTP('127.0.0.1', 25, timeout=10).quit()\" && sleep 1")
APPLY = "/usr/local/sbin/lab-apply"  # the lab routers' pick-up mechanism
MTA_STS = "senders_can_require_tls_with_valid_certificates_to_every_mx_host_mtasts"


@dataclass(frozen=True)
class Case:
    scenario: str  # the scenario's test name (without test_)
    estate: str
    target: str  # host (or estate) the scenario runs on
    fault: Fault
    expected: str  # what the failure must say
    args: tuple = ()  # options the scenario needs (e.g. --mx-disruptive)
    variant: str = ""  # which of a scenario's faults, where it has more than one

    @property
    def id(self):
        return f"{self.scenario}[{self.target}]" + (f"-{self.variant}" if self.variant else "")


def change_case(scenario: str, fault: Fault, expected: str) -> Case:
    """A change scenario (opt-in) on the new router the fault breaks."""
    return Case(scenario, "new-mx", fault.host, fault, expected, ("--mx-change",))


CASES = [
    # Every mail host
    Case("the_mail_software_is_installed", "new-mx", "new-router-1",
         Fault("new-router-1", "mv /var/lib/dpkg/info/python3-milter.list /root/ && "
               "sed -i '/^Package: python3-milter$/,/^$/s/^Status: .*/Status: deinstall ok config-files/' /var/lib/dpkg/status",
               "mv /root/python3-milter.list /var/lib/dpkg/info/", "python3-milter marked removed",
               ("/var/lib/dpkg/status",)),
         "python3-milter: not installed"),
    Case("the_postfix_configuration_is_valid", "old-mx", "old-mx-1",
         # The check's own fatal message lands in the mail log: restarting Postfix starts a clean slate.
         Fault("old-mx-1", "chown root /var/spool/postfix/active",
               "chown postfix /var/spool/postfix/active && postfix stop && postfix start", "active queue owned by root"),
         "open directory active: Permission denied"),
    # A map's source edited and never compiled: the inbound MXs run no pick-up that would compile it.
    Case("the_lookup_tables_postfix_uses_are_compiled_from_their_current_source", "new-mx", "new-mx-in-2",
         Fault("new-mx-in-2", "sed -i 's/^bob@beta.test.*/bob@beta.test\tREJECT/' /etc/postfix/relay_recipients",
               "postmap /etc/postfix/relay_recipients", "relay_recipients edited without postmap",
               ("/etc/postfix/relay_recipients",)),
         "/etc/postfix/relay_recipients.db is older than its source"),
    # main.cf edited and never reloaded: the outbound MX runs no pick-up that would reload it.
    Case("postfix_runs_the_configuration_that_is_on_disk", "new-mx", "new-out-1",
         Fault("new-out-1", "postconf -e delay_warning_time=4h", "postfix reload", "main.cf edited without reload",
               ("/etc/postfix/main.cf",)),
         "/etc/postfix/main.cf changed at"),
    Case("postfix_runs_the_configuration_that_is_on_disk", "old-mx", "old-mx-1",
         # a comment only: the host's pick-up (cron) reloads on changed settings, not on this
         Fault("old-mx-1", "echo '# edited, never reloaded' >> /etc/postfix/main.cf", "postfix reload",
               "main.cf edited without reload", ("/etc/postfix/main.cf",)),
         "/etc/postfix/main.cf changed at"),
    # A misspelt parameter: Postfix runs on without it, and only postconf says so.
    Case("postfix_warns_about_nothing_in_its_configuration", "new-mx", "new-out-1",
         postconf("new-out-1", "smtpd_tls_securty_level", "may"), UNUSED_PARAMETER),
    Case("postfix_warns_about_nothing_in_its_configuration", "old-mx", "old-mx-1",
         postconf("old-mx-1", "smtpd_tls_securty_level", "may"), UNUSED_PARAMETER),
    # A warning only the mail log has; the restart in the restore starts the log afresh.
    Case("postfix_warns_about_nothing_in_its_configuration", "new-mx", "new-mx-in-1",
         Fault("new-mx-in-1", STALE_MAP_OPENED, "touch /etc/postfix/relay_recipients.db && systemctl restart postfix@-",
               "relay_recipients.db older than its source, opened by smtpd"),
         "warning: database /etc/postfix/relay_recipients.db is older than source file /etc/postfix/relay_recipients"),
    Case("postfix_listens_where_the_estate_expects", "new-mx", "new-mx-in-1",
         service_stopped("new-mx-in-1", "rspamd"), "not listening on tcp://127.0.0.1:11332"),
    Case("postfix_has_logged_no_fatal_error_since_it_last_started", "old-mx", "old-mx-1",
         Fault("old-mx-1", "logger -p mail.crit -t postfix/smtpd 'fatal: injected by the mxspec fault test'",
               "postfix stop && postfix start", "fatal line in the mail log"),
         "fatal: injected by the mxspec fault test"),
    Case("postfix_has_logged_no_fatal_error_since_it_last_started", "new-mx", "new-router-2",
         Fault("new-router-2", "logger -p mail.crit -t postfix/smtpd 'panic: injected by the mxspec fault test'",
               "systemctl restart postfix@-", "panic line in the journal"),
         "panic: injected by the mxspec fault test"),
    Case("the_mail_queue_is_short", "new-mx", "new-router-2",
         Fault("new-router-2", "postconf -e defer_transports=smtp && postfix reload && "
               "for i in $(seq 25); do echo probe | sendmail someone@elsewhere.example; done && sleep 2",
               "postsuper -d ALL >/dev/null 2>&1; postfix reload", "25 messages held", ("/etc/postfix/main.cf",)),
         "more than 20"),
    Case("no_mail_is_held_back_in_the_deferred_queue_for_long", "new-mx", "new-router-1",
         deferred_message_aged("new-router-1", 120), "to <someone@elsewhere.example> (deferred transport)"),
    Case("postfix_greets_a_client_at_once_in_its_own_name", "old-mx", "old-mx-1",
         postconf("old-mx-1", "smtpd_banner", "mail.example.com ESMTP"),
         "greeting '220 mail.example.com ESMTP' does not name old-mx-1.lab.test"),
    # Once per estate and role: one of the two inbound MXs given another size limit than the other.
    Case("the_hosts_of_one_role_are_configured_alike", "new-mx", "new-mx-inbound-mx",
         postconf("new-mx-in-2", "message_size_limit", "1234567"),
         "message_size_limit: new-mx-in-1 has 10240000; new-mx-in-2 has 1234567"),
    # A host-specific parameter is held to what the host's inventory implies: new-mx-in-2 made to listen
    # on loopback only (a restart applies inet_interfaces; the restore restarts it with main.cf put back).
    Case("the_hosts_of_one_role_are_configured_alike", "new-mx", "new-mx-inbound-mx",
         Fault("new-mx-in-2", "postconf -e inet_interfaces=loopback-only && systemctl restart postfix@-",
               "systemctl restart postfix@-", "inet_interfaces = loopback-only", ("/etc/postfix/main.cf",)),
         "inet_interfaces: new-mx-in-2 has loopback-only, where its inventory implies all", variant="host-specific"),
    # Inbound MX
    Case("mail_for_the_local_domains_users_and_postmaster_is_accepted", "new-mx", "new-mx-in-2",
         edit("new-mx-in-2", "/etc/postfix/relay_recipients", "/^alice@alpha.test/d",
              "postmap /etc/postfix/relay_recipients"),
         "alice@alpha.test: expected 250, got 550 5.1.1"),
    Case("mail_for_an_unknown_user_is_refused_as_such", "old-mx", "old-mx-1",
         postconf("old-mx-1", "relay_recipient_maps", ""), "expected 550 5.1.1, got 250"),
    Case("the_mx_is_not_an_open_relay", "new-mx", "new-mx-in-1",
         postconf("new-mx-in-1", "mynetworks", OPEN_RELAY),
         "someone@elsewhere.example: expected 554 5.7.1, got 250"),
    Case("a_message_over_the_size_limit_is_refused_before_it_is_sent", "old-mx", "old-mx-1",
         postconf("old-mx-1", "message_size_limit", "0"), "expected 552, got 250"),
    Case("starttls_is_offered_with_a_certificate_clients_can_verify", "new-mx", "new-mx-in-1",
         Fault("new-mx-in-1", "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=somebody-else "
               "-keyout /root/other.key -out /root/other.crt 2>/dev/null && postconf -e "
               "smtpd_tls_cert_file=/root/other.crt smtpd_tls_key_file=/root/other.key && postfix reload",
               "rm -f /root/other.* && postfix reload", "a self-signed certificate for another name",
               ("/etc/postfix/main.cf",)),
         "certificate verify failed: self-signed certificate"),
    Case("the_inbound_mxs_certificates_stay_valid_for_the_estates_margin_and_match_postfixs_key", "new-mx",
         "new-mx-in-1",
         # smtpd_tls_chain_files wins over smtpd_tls_key_file: another certificate is served than the key file's
         Fault("new-mx-in-1", "openssl req -x509 -newkey rsa:2048 -nodes -days 60 -subj /CN=new-mx-in-1.lab.test "
               "-keyout /root/other.key -out /root/other.crt 2>/dev/null && cat /root/other.key /root/other.crt "
               "> /root/other.pem && postconf -e smtpd_tls_chain_files=/root/other.pem && postfix reload",
               "rm -f /root/other.* && postfix reload", "a certificate served that is not the key file's",
               ("/etc/postfix/main.cf",)),
         "does not match the private key Postfix is configured with (/etc/ssl/lab/host.key)"),
    Case("outdated_tls_versions_are_refused_where_the_estate_requires_tls_12", "new-mx", "new-mx-in-2",
         # No OpenSSL baseline (Debian's says TLS 1.2 at least) and every protocol allowed.
         Fault("new-mx-in-2", "postconf -e tls_config_file=none 'smtpd_tls_protocols=>=TLSv1' "
               "'smtpd_tls_mandatory_protocols=>=TLSv1' 'tls_medium_cipherlist=DEFAULT:@SECLEVEL=0' && postfix reload",
               "postfix reload", "TLS 1.0 and 1.1 allowed", ("/etc/postfix/main.cf",)),
         "accepted a client limited to TLSv1_1"),
    Case("a_virus_is_refused_at_the_door", "new-mx", "new-mx-in-2",
         postconf("new-mx-in-2", "smtpd_milters", "inet:127.0.0.1:11332"),
         'expected the message to be refused with 5, got 250'),
    Case("spam_is_never_delivered_unmarked", "old-mx", "old-mx-1",
         postconf("old-mx-1", "smtpd_milters", "inet:127.0.0.1:9900, inet:127.0.0.1:7357, inet:127.0.0.1:8891"),
         "was delivered without 'X-Spam-Flag: YES'"),
    Case("a_clean_message_reaches_the_mailstore_scanned_and_stamped_by_the_router", "new-mx", "new-mx-in-1",
         postconf("new-mx-in-1", "smtpd_milters", "inet:127.0.0.1:11332"),
         "arrived without: X-Virus-Status: Clean"),
    Case("with_the_virus_scanner_down_senders_are_told_to_try_again_later", "new-mx", "new-mx-in-1",
         postconf("new-mx-in-1", "milter_default_action", "accept"),
         "expected the message to be refused with 4, got 250", ("--mx-disruptive",)),
    # SMTP router
    Case("the_inhouse_milter_runs_starts_at_boot_and_starts_before_postfix", "old-mx", "old-mx-1",
         Fault("old-mx-1", "mv /etc/rc2.d/S01lab-milter /etc/rc2.d/S09lab-milter",
               "true", "milter ordered after postfix", ("/etc/rc2.d",)),
         "lab-milter does not start before postfix at boot"),
    Case("the_inhouse_milter_runs_starts_at_boot_and_starts_before_postfix", "new-mx", "new-router-1",
         edit("new-router-1", "/etc/systemd/system/lab-milter.service", "/^Before=/d", "systemctl daemon-reload"),
         "lab-milter is not ordered before postfix"),
    Case("postfix_hands_every_message_to_the_milter_and_holds_mail_when_it_fails", "new-mx", "new-router-2",
         postconf("new-router-2", "milter_default_action", "accept"),
         "milter_default_action = accept; expected it to be tempfail"),
    Case("each_local_domain_is_routed_to_its_next_hop", "new-mx", "new-router-1",
         edit("new-router-1", "/etc/postfix/transport", "s/^beta.test.*/beta.test\\tsmtp:[lab-remote.lab.test]/",
              "postmap /etc/postfix/transport"),
         "beta.test: smtp:[lab-remote.lab.test], expected smtp:[lab-store.lab.test]"),
    Case("clients_outside_the_estate_cannot_relay_through_the_router", "new-mx", "new-router-2",
         postconf("new-router-2", "mynetworks", OPEN_RELAY), "expected 554 5.7.1, got 250"),
    Case("authorised_networks_can_relay_through_the_router", "new-mx", "new-router-1",
         postconf("new-router-1", "mynetworks", "127.0.0.0/8"), "expected 250, got 554 5.7.1"),
    Case("mail_for_each_local_domain_is_handed_to_its_next_hop", "new-mx", "new-router-2",
         # reload too: a Postfix process may serve one more message from the map it had open
         edit("new-router-2", "/etc/postfix/transport", "s/^alpha.test.*/alpha.test\tsmtp:[lab-remote.lab.test]/",
              "postmap /etc/postfix/transport && postfix reload"),
         "was not relayed to lab-store.lab.test with status=sent; the mail log shows:"),
    Case("routed_mail_carries_the_milters_stamp", "old-mx", "old-mx-1",
         postconf("old-mx-1", "smtpd_milters", "inet:127.0.0.1:7357, unix:/spamass/spamass.sock, inet:127.0.0.1:8891"),
         "arrived without: X-Lab-Routed-By: old-mx-1.lab.test"),
    Case("with_the_milter_down_mail_is_held_back_with_a_temporary_failure", "old-mx", "old-mx-1",
         postconf("old-mx-1", "milter_default_action", "accept"),
         "expected the message to be refused with 451 4.7.1, got 250", ("--mx-disruptive",)),
    # Outbound MX
    Case("clients_outside_the_estate_cannot_relay", "new-mx", "new-out-1",
         postconf("new-out-1", "mynetworks", OPEN_RELAY), "expected 554 5.7.1, got 250"),
    Case("authorised_networks_can_relay", "old-mx", "old-mx-1",
         postconf("old-mx-1", "mynetworks", "127.0.0.0/8"), "expected 250, got 554 5.7.1"),
    Case("passwords_are_asked_for_only_over_tls_and_a_wrong_one_is_refused", "new-mx", "new-out-1",
         Fault("new-out-1", "postconf -P submission/inet/smtpd_tls_security_level=may "
               "submission/inet/smtpd_tls_auth_only=no && postfix reload",
               "postfix reload", "AUTH offered in clear", ("/etc/postfix/master.cf",)),
         "port 587 offers AUTH before STARTTLS"),
    Case("the_outbound_mxs_certificates_stay_valid_for_the_estates_margin_and_match_postfixs_key", "new-mx", "new-out-1",
         Fault("new-out-1", "openssl req -x509 -newkey rsa:2048 -nodes -days 5 -subj /CN=new-out-1.lab.test "
               "-keyout /root/soon.key -out /root/soon.crt 2>/dev/null && postconf -e "
               "smtpd_tls_cert_file=/root/soon.crt smtpd_tls_key_file=/root/soon.key && postfix reload",
               "rm -f /root/soon.* && postfix reload", "a certificate that expires in 5 days",
               ("/etc/postfix/main.cf",)),
         "expires in 5.0 days (not after"),
    Case("mail_leaving_the_estate_is_signed_with_dkim", "new-mx", "new-out-1",
         service_stopped("new-out-1", "opendkim"), "the message arrived without a DKIM-Signature header"),
    # Configuration changes (opt-in): the router's pick-up mechanism, lab-apply, broken one way each
    change_case("a_new_route_in_the_transport_map_is_used_without_anyone_running_a_command",
                Fault("new-router-2", "systemctl stop lab-apply.path", "systemctl start lab-apply.path", "no pick-up"),
                "changes.test: no entry, expected smtp:[lab-store.lab.test]"),
    change_case("a_setting_postfix_can_reload_is_reloaded_and_in_effect_on_the_wire",
                edit("new-router-1", APPLY, "s/postfix reload >/true >/"), "has not reloaded since the change"),
    change_case("a_change_of_listening_addresses_restarts_postfix_which_then_listens_as_configured",
                edit("new-router-2", APPLY, 's/^RESTART_SETTINGS=.*/RESTART_SETTINGS=""/'), "postfix has not restarted"),
    change_case("a_change_to_the_milters_settings_restarts_the_milter_which_applies_it",
                edit("new-router-1", APPLY, "s/service lab-milter restart/true/"), "lab-milter has not restarted"),
    change_case("broken_milter_settings_are_refused_and_the_running_milter_keeps_stamping_mail",
                edit("new-router-2", APPLY, "s/if ! problem=$(python3 .*lab-milter --check 2>&1)/if false/"),
                "no mail log line with 'refused /etc/lab-milter.conf' since the change"),
    # IPv6, where the estate declares it (the new estate's inbound MXs; the old one declares none).
    # inet_protocols takes a restart, not a reload: Postfix keeps the sockets it has.
    Case("the_inbound_mx_answers_smtp_on_its_ipv6_address_where_it_has_one", "new-mx", "new-mx-in-2",
         Fault("new-mx-in-2", "postconf -e inet_protocols=ipv4 && systemctl restart postfix@-",
               "systemctl restart postfix@-", "Postfix on IPv4 only", ("/etc/postfix/main.cf",)),
         "host new-mx-in-2: does not answer SMTP over IPv6: [fd00:10:213::22]:25"),
    Case("every_inbound_mxs_ipv6_address_is_in_dns_where_the_estate_declares_ipv6", "new-mx", "new-mx",
         edit("lab-dns", DNS_CONF, "/AAAA fd00:10:213::22/d", RESTART_DNS),
         "new-mx-in-2.lab.test AAAA none, expected fd00:10:213::22"),
    Case("every_inbound_mx_is_who_its_ipv6_address_says_it_is", "new-mx", "new-mx",
         edit("lab-dns", DNS_CONF, "/local-data-ptr: \"fd00:10:213::22 /d", RESTART_DNS),
         "new-mx-in-2.lab.test -> fd00:10:213::22 -> no PTR"),
    # DNS, once per estate
    Case("mail_for_each_local_domain_goes_to_the_estates_inbound_mxs", "new-mx", "new-mx",
         edit("lab-dns", DNS_CONF, f"{AFTER_VIEW}{{/MX 20 new-mx-in-2/d}}", RESTART_DNS),
         "alpha.test: MX ['10 new-mx-in-1.lab.test'], expected"),
    Case("every_mx_host_is_who_its_address_says_it_is", "old-mx", "old-mx",
         edit("lab-dns", DNS_CONF, "/local-data-ptr: \"10.213.0.10 /d", RESTART_DNS),
         "old-mx-1.lab.test -> 10.213.0.10 -> no PTR"),
    Case("spf_names_the_estates_outbound_mxs_and_rejects_the_rest", "new-mx", "new-mx",
         edit("lab-dns", DNS_CONF, f"{AFTER_VIEW}{{s/ip4:10.213.0.41 -all/ip4:10.213.0.40 ~all/}}", RESTART_DNS),
         "does not cover 10.213.0.41"),
    Case("receivers_can_verify_the_estates_dkim_signatures", "old-mx", "old-mx",
         edit("lab-dns", DNS_CONF, "s/k=rsa; p=\" /k=rsa; \" /", RESTART_DNS),
         "no valid DKIM key for selector old2019"),
    Case("dmarc_asks_receivers_to_quarantine_or_reject_forgeries", "new-mx", "new-mx",
         edit("lab-dns", DNS_CONF, f"{AFTER_VIEW}{{s/p=quarantine/p=none/}}", RESTART_DNS),
         "DMARC policy p=none, not quarantine or reject"),
    # MTA-STS and TLS-RPT, declared by the new estate only: its policy host (lab-store) and the DNS after the cut-over
    Case(MTA_STS, "new-mx", "new-mx",
         edit("lab-store", "/etc/mta-sts/mta-sts.alpha.test.txt", "/^mx: new-mx-in-2/d"),
         "alpha.test: https://mta-sts.alpha.test/.well-known/mta-sts.txt (10.213.0.5): no mx pattern covers MX host "
         "new-mx-in-2.lab.test (mx: new-mx-in-1.lab.test)", variant="mx-host-not-covered"),
    Case(MTA_STS, "new-mx", "new-mx",
         edit("lab-dns", DNS_CONF, f"{AFTER_VIEW}{{/_mta-sts.alpha.test/d}}", RESTART_DNS),
         "alpha.test: no MTA-STS records (v=STSv1) at _mta-sts.alpha.test, expected one", variant="record-removed"),
    Case("senders_know_where_to_report_tls_failures_tlsrpt", "new-mx", "new-mx",
         edit("lab-dns", DNS_CONF, f"{AFTER_VIEW}{{s/rua=mailto:tls-reports@/rua=tls-reports@/}}", RESTART_DNS),
         "alpha.test: _smtp._tls.alpha.test: rua 'tls-reports@alpha.test' is not a mailto: or https: address"),
]


def test_the_ipv6_scenarios_pass_on_the_new_estate_and_are_not_applicable_on_the_old(lab):
    """The new estate's inbound MXs declare IPv6 and have it; the old estate declares none, and its
    IPv6 scenarios are skipped saying so rather than failed."""
    result = run_mxspec_pytest("--hosts=old-mx,new-mx", "features/test_features.py", "-k", "ipv6", "-rs",
                               "-p", "no:cacheprovider")
    text = output(result)
    assert result.returncode == 0, text
    # new-mx: SMTP over IPv6 on both inbound MXs, AAAA and reverse DNS; old-mx: the same three, skipped
    assert "4 passed, 3 skipped" in text, text
    assert "host old-mx-1 has no IPv6 address (ipv6_address not set)" in text
    assert "estate old-mx declares no IPv6 (no inbound MX sets ipv6_address)" in text


def run_scenario(case: Case):
    return run_mxspec_pytest(f"--hosts={case.estate}", f"features/test_features.py::test_{case.scenario}[{case.target}]",
                             "-p", "no:cacheprovider", *case.args)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_scenario_fails_without_its_behaviour_and_passes_once_restored(lab, case):
    with injected(case.fault):
        broken = run_scenario(case)
    text = output(broken)
    assert broken.returncode == 1 and "1 failed" in text, text
    assert case.expected in text, text
    assert "Traceback" not in text
    restored = run_scenario(case)
    assert restored.returncode == 0 and "1 passed" in restored.stdout, output(restored)


def test_every_scenario_has_a_fault():
    """A new scenario needs a fault here that shows it can fail."""
    result = run_mxspec_pytest("--hosts=old-mx,new-mx", "--collect-only", "-q")
    names = {line.split("::")[1].split("[")[0][len("test_"):] for line in result.stdout.splitlines() if "::" in line}
    covered = {case.scenario for case in CASES}
    # Fault cases kept elsewhere: the boot behaviour's in test_common_behaviours.py; the canary's, which judge a
    # canary's result rather than a host, in test_canary_lab.py (a fault injected during a canary, a split without SNAT
    # or a way back, a share that is not the split's).
    elsewhere = {"the_mail_services_run_now_and_start_again_at_boot",
                 "the_canary_sends_about_its_share_of_connections_to_the_new_estate",
                 "replies_reach_the_clients_through_the_old_mx", "the_new_estate_treats_mail_as_the_old_one_does"}
    uncovered = sorted(names - covered - elsewhere)
    assert not uncovered, f"scenarios without a fault case: {uncovered}"
