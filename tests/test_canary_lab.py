"""The canary on the lab: the split on the old inbound MX, the traffic generator, `mxspec canary`, the
canary's Gherkin and the readiness report's link; a healthy canary is GO, a fault no static behaviour
sees is caught with the metric that moved and its log lines, too little traffic is said, and a
stopped canary leaves both hosts' network and firewall state as it was."""

import contextlib
import json
import time

import pytest

from conftest import PROJECT, lab_ssh, output, run_mxspec, run_mxspec_pytest
from faults import QUEUE_DELIVERED, Fault, injected

# Everything of a host's network the canary could touch, and more: read by the test itself, not by
# the product's own comparison.
NETWORK_STATE = ("nft list ruleset; ip rule; ip -6 rule; ip route show table all; ip -6 route show table all; "
                 "grep -r . /proc/sys/net/ipv4/ /proc/sys/net/ipv6/conf/ 2>/dev/null | sort")
SPLIT_HOSTS = ("old-mx-1", "new-mx-in-1")
POLICY = str(PROJECT / "canary-policy.yml")


def network_state() -> dict[str, str]:
    return {host: lab_ssh(host, NETWORK_STATE).stdout for host in SPLIT_HOSTS}


@contextlib.contextmanager
def canary(share: str = "0.3"):
    """The split started, and stopped whatever happens; stopping must find both hosts as before (said after
    the body's own failure, never instead of it). Gives the canary window's start: a moment after anything
    earlier, since the logs' stamps are to the second."""
    time.sleep(1.5)
    since = time.time()
    started = run_mxspec("lab", "canary", "start", "--share", share)
    assert started.returncode == 0, output(started)
    try:
        yield since
    except BaseException:
        run_mxspec("lab", "canary", "stop")
        raise
    stopped = run_mxspec("lab", "canary", "stop")
    assert stopped.returncode == 0, output(stopped)
    for host in SPLIT_HOSTS:
        assert f"{host}: network and firewall state as before the canary" in stopped.stdout


def traffic(tmp_path, count: int, seed: int, *extra: str) -> dict:
    sent = tmp_path / f"traffic-{seed}.json"
    result = run_mxspec("lab", "traffic", "--count", str(count), "--seed", str(seed), "--json", str(sent), *extra)
    assert result.returncode == 0, output(result)
    return json.loads(sent.read_text())


def judged(tmp_path, since: float, share: str = "0.3", name: str = "canary"):
    out = tmp_path / name
    result = run_mxspec("canary", "--old", "old-mx", "--new", "new-mx", "--since", f"@{int(since)}", "--share", share,
                        "--policy", POLICY, "--out", str(out))
    verdict = json.loads((out / "canary.json").read_text()) if (out / "canary.json").exists() else {}
    return result, verdict, out / "canary.json"


def canary_behaviours(result_file, *extra: str):
    return run_mxspec_pytest("--hosts=old-mx,new-mx", f"--mx-canary={result_file}", "-m", "canary",
                             "-p", "no:cacheprovider", "-rfEs", *extra)


def test_a_healthy_canary_is_go_its_behaviours_pass_and_both_hosts_are_left_as_before(lab, tmp_path):
    before = network_state()
    with canary() as since:
        sent = traffic(tmp_path, 600, 11)
    assert network_state() == before
    result, verdict, result_file = judged(tmp_path, since)
    assert result.returncode == 0, output(result)
    assert verdict["decision"] == "GO" and verdict["split"]["status"] == "within"
    # Every connection a client saw the new MX answer (by its banner, through the old MX's address) is in the
    # new estate's log, and every other one in the old's: nothing lost, nothing counted twice.
    answered_new = sum(c["banner"].startswith("new-mx-in-1") for c in sent["connections"])
    assert verdict["connections"] == {"old": len(sent["connections"]) - answered_new, "new": answered_new}
    assert verdict["path"]["new_from_old_mx_address"] == 0
    page = (result_file.parent / "canary.html").read_text()
    assert "id='verdict' class='verdict GO'" in page and page.count("<svg") >= 14

    report = tmp_path / "report"
    behaviours = canary_behaviours(result_file, f"--mx-report={report}")
    assert behaviours.returncode == 0, output(behaviours)
    assert "3 passed" in behaviours.stdout and "not applicable: the canary" in behaviours.stdout
    assert "href='../canary/canary.html'" in (report / "readiness.html").read_text()
    assert "Canary (old-mx → new-mx, `mxspec canary`): **GO**" in (report / "readiness.md").read_text()

    # The same traffic judged against a split said to send 60%: the share behaviour fails, and says why.
    result, verdict, wrong_share = judged(tmp_path, since, share="0.6", name="wrong-share")
    assert result.returncode == 3 and verdict["decision"] == "HOLD", output(result)
    behaviours = canary_behaviours(wrong_share)
    assert behaviours.returncode == 1, output(behaviours)
    assert "the share of connections is not the split's" in behaviours.stdout and "the split sends 60%" in behaviours.stdout


REFUSES_A_SENDER_DOMAIN = Fault(
    "new-mx-in-1", "postconf -e 'smtpd_sender_restrictions = check_sender_access inline:{ shop.test=REJECT }' "
                   "&& postfix reload", "postfix reload", "the new inbound MX refuses mail from shop.test",
    files=("/etc/postfix/main.cf",))


def test_a_new_mx_refusing_one_sender_domain_passes_the_static_behaviours_and_the_canary_catches_it(lab, tmp_path):
    with injected(REFUSES_A_SENDER_DOMAIN):
        static = run_mxspec_pytest("--hosts=new-mx", "-m", "inbound_mx", "-p", "no:cacheprovider", timeout=600)
        assert static.returncode == 0, output(static)  # no static behaviour sends from shop.test
        with canary() as since:  # the window begins after the last of those probes
            traffic(tmp_path, 300, 12)
    result, verdict, result_file = judged(tmp_path, since)
    assert result.returncode == 1 and verdict["decision"] == "ROLLBACK", output(result)
    # What moved: refusals by policy (and with them, perhaps, the share of mail accepted), with the lines behind it.
    reasons = {reason["subject"]: reason for reason in verdict["reasons"]}
    assert set(reasons) <= {"refused by policy (5xx)", "mail accepted"}, reasons
    reason = reasons["refused by policy (5xx)"]
    assert reason["text"].startswith("worse on the new estate")
    assert reason["evidence"] and all("Sender address rejected" in line and "@shop.test>" in line
                                      for line in reason["evidence"])
    assert "refused by policy (5xx)" in result.stdout and "Sender address rejected" in result.stdout
    behaviours = canary_behaviours(result_file)
    assert behaviours.returncode == 1, output(behaviours)
    assert "FAILED features/test_features.py::test_the_new_estate_treats_mail_as_the_old_one_does[new-mx]" in behaviours.stdout
    assert "canary verdict ROLLBACK" in behaviours.stdout


def test_a_canary_with_too_little_traffic_says_so_and_the_split_refuses_bad_input(lab, tmp_path):
    for share in ("1.5", "0", "-0.2"):
        refused = run_mxspec("lab", "canary", "start", f"--share={share}")
        assert refused.returncode == 2 and "--share must be between 0 and 1" in refused.stderr, output(refused)
        assert "Traceback" not in output(refused)
    with canary() as since:
        again = run_mxspec("lab", "canary", "start")
        assert again.returncode == 2 and "a canary already runs in the lab" in again.stderr
        traffic(tmp_path, 20, 13)
    result, verdict, _ = judged(tmp_path, since)
    assert result.returncode == 3 and verdict["decision"] == "HOLD", output(result)
    assert "not enough traffic to judge" in result.stdout
    assert run_mxspec("lab", "canary", "stop").stderr.strip() == "mxspec: error: no canary runs in the lab"


def test_the_split_uses_only_what_is_free_and_stop_names_what_it_did_not_put_back(lab):
    before = network_state()
    # A routing table the canary would use already holds a route: start refuses, and changes nothing.
    lab_ssh("new-mx-in-1", "ip route add 10.213.0.0/24 dev host0 table 125")
    try:
        refused = run_mxspec("lab", "canary", "start")
        assert refused.returncode == 2 and "new-mx-in-1: routing table 125 is not empty" in refused.stderr, output(refused)
        assert "nothing was changed" in refused.stderr
    finally:
        lab_ssh("new-mx-in-1", "ip route flush table 125")
    assert network_state() == before
    # Something changed beside the canary while it ran: stop removes the canary's own, says what else differs.
    started = run_mxspec("lab", "canary", "start")
    assert started.returncode == 0, output(started)
    try:
        lab_ssh("old-mx-1", "nft add table ip someone_else")
        stopped = run_mxspec("lab", "canary", "stop")
        assert stopped.returncode == 2, output(stopped)
        assert "old-mx-1: not as before the canary: new: table ip someone_else" in stopped.stderr, output(stopped)
        assert "canary.failed.json" in stopped.stderr
    finally:
        lab_ssh("old-mx-1", "nft delete table ip someone_else")
    assert network_state() == before  # the canary's own part was removed all the same


ROUTERS_DEFER_BETA = [Fault(
    router, "sed -i 's/^beta[.]test[[:space:]].*/beta.test smtp:[10.213.0.5]:2525/' /etc/postfix/transport && "
            "postmap /etc/postfix/transport && postfix reload",
    f"postmap /etc/postfix/transport && postfix reload && {QUEUE_DELIVERED}",
    "the router defers mail for beta.test (its next hop refuses)",
    files=("/etc/postfix/transport",)) for router in ("new-router-1", "new-router-2")]


def test_a_new_estate_deferring_a_share_of_mail_is_caught_by_the_canary(lab, tmp_path):
    """The new routers hand mail for one of the two domains to a port nothing listens on (a lab host's): it is
    accepted at the door and deferred behind it. The canary sees it in the fates of accepted mail."""
    with injected(ROUTERS_DEFER_BETA[0]), injected(ROUTERS_DEFER_BETA[1]):
        with canary() as since:
            traffic(tmp_path, 300, 16)
        result, verdict, _ = judged(tmp_path, since)
    assert result.returncode == 1 and verdict["decision"] == "ROLLBACK", output(result)
    reasons = {reason["subject"]: reason for reason in verdict["reasons"]}
    assert {"accepted mail deferred", "accepted mail delivered"} <= set(reasons), reasons
    assert all("status=deferred" in line and "@beta.test>" in line for line in reasons["accepted mail deferred"]["evidence"])


def test_a_split_that_hides_the_client_or_sends_replies_no_way_back_fails_the_reply_behaviours(lab, tmp_path):
    # The old MX rewrites the client's address (SNAT): the new MX sees every client as the old MX.
    with canary("0.5") as since:
        lab_ssh("old-mx-1", "nft 'add chain ip mxspec_canary hide { type nat hook postrouting priority srcnat; }' && "
                            "nft add rule ip mxspec_canary hide tcp dport 25 masquerade")
        traffic(tmp_path, 40, 14)
    _, verdict, hidden = judged(tmp_path, since, share="0.5", name="hidden")
    assert verdict["path"]["new_from_old_mx_address"] == verdict["path"]["new_connections"] > 0
    behaviours = canary_behaviours(hidden, "-k", "replies")
    assert behaviours.returncode == 1 and "the split rewrites the client's address (SNAT)" in behaviours.stdout

    # The new MX's replies go straight to the client, not back through the old MX: no connection completes.
    with canary("0.5") as since:
        lab_ssh("new-mx-in-1", "ip rule del priority 1025")
        sent = traffic(tmp_path, 30, 15, "--timeout", "4")
    assert any(c["error"] for c in sent["connections"])  # the clients sent to the new MX gave up
    _, verdict, no_way_back = judged(tmp_path, since, share="0.5", name="no-way-back")
    behaviours = canary_behaviours(no_way_back, "-k", "replies")
    assert behaviours.returncode == 1, output(behaviours)
    assert "its replies find no way back through the old MX" in behaviours.stdout


@pytest.fixture(autouse=True)
def no_canary_left_running():
    """A failed test must not leave the lab splitting traffic for the tests after it."""
    yield
    if run_mxspec("lab", "canary", "status").stdout.startswith("canary:"):
        run_mxspec("lab", "canary", "stop")
