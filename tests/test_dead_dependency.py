"""A dead dependency costs the run one bound, not one per probe, and shows as one root cause.

On the lab: the new estate's DNS server made silent (it drops every query), the whole DNS server
stopped (the hosts' mail is deferred), one host's SSH out of reach while its SMTP answers.
"""

import json
import re

import yaml

from conftest import PROJECT, lab_ssh, output, run_mxspec_pytest
from faults import QUEUE_DELIVERED, edit, injected, service_stopped

DNS_CONF = "/etc/unbound/unbound.conf.d/lab.conf"
# unbound drops, without a word, every query that reaches the new estate's address of the lab DNS.
NEW_DNS_SILENT = edit("lab-dns", DNS_CONF, "s/interface-action: 10.213.0.3 allow/interface-action: 10.213.0.3 deny/",
                      "systemctl restart unbound")
BOUND = 5


def test_a_silent_dns_server_is_waited_for_once_and_is_the_one_root_cause_of_the_no_go(lab, tmp_path):
    with injected(NEW_DNS_SILENT):
        result = run_mxspec_pytest("--hosts=old-mx,new-mx", f"--mx-report={tmp_path}", f"--mx-timeout={BOUND}")
    text = output(result)
    assert result.returncode == 1, text
    report = json.loads((tmp_path / "readiness.json").read_text())
    failures = [message for behaviour in report["behaviours"] for message in behaviour["failures"].values()]
    remembered = [m for m in failures if "DNS server 10.213.0.3 did not answer earlier in this run (at " in m]
    waited = [m for m in failures if m not in remembered
              and re.search(rf"DNS server 10\.213\.0\.3 did not answer \S+ \w+ within {BOUND} s", m)]
    # One bound per process that met the silence (each xdist worker learns it once), the rest at once.
    assert 1 <= len(waited) <= 2 and len(remembered) >= 3, text
    # The old estate asks the lab DNS's other address, which answers: it passes everything it runs.
    assert all(outcome != "failed" for behaviour in report["behaviours"] for outcome in behaviour["old"].values()), text
    [cause] = report["root_causes"]
    assert cause["cause"] == "DNS server 10.213.0.3 did not answer"
    assert len(cause["behaviours"]) == len({(b["role"], b["scenario"], b["example"]) for b in report["behaviours"]
                                            if b["blocks"]}), text
    assert f"{len(cause['behaviours'])} blocking behaviours share one cause: DNS server 10.213.0.3 did not answer" in text


def test_with_the_dns_server_stopped_a_delivery_ends_at_the_deferral(lab):
    with injected(service_stopped("lab-dns", "unbound")):
        result = run_mxspec_pytest("--hosts=new-mx", "-k", "clean_message_reaches_the_mailstore and new-mx-in-1")
    lab_ssh("new-mx-in-1", QUEUE_DELIVERED)  # the deferred probe goes on its way now, not at Postfix's next retry
    text = output(result)
    assert result.returncode == 1, text
    assert re.search(r"host new-mx-in-1: message <[^>]+> was deferred there; the mail log shows:\n.*status=deferred",
                     text), text
    assert "within 60 s" not in text, text  # not the end of the wait for delivery


def test_a_host_whose_ssh_is_out_of_reach_still_gets_its_outside_in_scenarios(lab, tmp_path):
    inventory = yaml.safe_load((PROJECT / "inventories/new-mx.yml").read_text())
    inventory["all"]["children"]["inbound-mx"]["hosts"]["new-mx-in-2"]["ansible_port"] = 2  # no sshd there
    (tmp_path / "new-mx.yml").write_text(yaml.safe_dump(inventory))
    results = tmp_path / "results.json"
    result = run_mxspec_pytest("--hosts=new-mx", f"--inventories={tmp_path}", "-k", "new-mx-in-2",
                               f"--mx-results={results}")
    text = output(result)
    assert result.returncode == 1, text
    outcomes = {r["scenario"]: (r["outcome"], r["message"]) for r in json.loads(results.read_text())["results"]}
    passed = [scenario for scenario, (outcome, _) in outcomes.items() if outcome == "passed"]
    failed = {scenario: message for scenario, (outcome, message) in outcomes.items() if outcome == "failed"}
    assert "Postfix greets a client at once, in its own name" in passed, text
    assert "The MX is not an open relay" in passed, text
    assert "The mail software is installed" in failed, text
    assert all("host new-mx-in-2 unreachable" in message for message in failed.values()), text
