"""The canary's judge on synthetic traffic: a real difference is a ROLLBACK or a HOLD, noise and
small differences are not, too little traffic is said as such, and healthy canaries rarely alarm."""

import dataclasses
import json
import random
import time

import pytest

from canary_traffic import DOOR, connections, refusing
from mxspec.canary import render
from mxspec.canary.attempts import ACCEPTED, NEW, OLD, REFUSED_POLICY, Attempt
from mxspec.canary.judge import (
    ACCEPTED_STATUS,
    DEVIATES,
    GO,
    HOLD,
    METRICS,
    NOT_ENOUGH,
    NOT_SIGNIFICANT,
    ROLLBACK,
    WITHIN,
    WORSE,
    DelayTolerance,
    Policy,
    ShareTolerance,
    holm,
    judge,
    split_check,
)
from mxspec.core.errors import MxspecError


def result(verdict, name):
    return next(r for r in verdict.metrics if r.metric == name)


def test_the_same_behaviour_on_both_sides_is_a_go():
    verdict = judge(connections(OLD, 200) + connections(NEW, 90), 0.3, Policy())
    assert verdict.decision == GO and verdict.reasons == ()
    assert not [r.metric for r in verdict.metrics if r.status == DEVIATES]
    # A quarter of ~72 accepted messages on the new side are signed: too few to test, said so.
    assert result(verdict, "DKIM-signed (outgoing)").status == NOT_ENOUGH


def test_refusing_valid_mail_by_policy_is_a_rollback_with_the_refusals_as_evidence():
    verdict = judge(connections(OLD, 200) + connections(NEW, 90, door=refusing(0.15)), 0.3, Policy())
    assert verdict.decision == ROLLBACK
    policy = result(verdict, "refused by policy (5xx)")
    assert policy.status == DEVIATES and policy.direction == WORSE and policy.effect == pytest.approx(0.15, abs=0.02)
    reasons = {reason.subject: reason for reason in verdict.reasons}
    assert "refused by policy (5xx)" in reasons and set(reasons) <= {"refused by policy (5xx)", "mail accepted"}
    evidence = reasons["refused by policy (5xx)"].evidence
    assert 1 <= len(evidence) <= 5
    assert all("new-mx-1" in line and "554 5.7.1" in line and "cannot find your hostname" in line for line in evidence)
    assert "+15" in reasons["refused by policy (5xx)"].text and "p(Holm)" in reasons["refused by policy (5xx)"].text


def test_a_difference_beyond_tolerance_without_the_traffic_to_show_it_does_not_count():
    """4 refusals in 40 against none in 40: ten points, beyond the 3-point tolerance, but Fisher's
    exact test gives p = 0.12 before any adjustment: noise cannot be ruled out."""
    verdict = judge(connections(OLD, 40, lost=0, door={ACCEPTED: 1.0}) +
                    connections(NEW, 40, lost=0, door={ACCEPTED: 0.9, REFUSED_POLICY: 0.1}), None, Policy())
    policy = result(verdict, "refused by policy (5xx)")
    assert (policy.old.hits, policy.new.hits) == (0, 4) and policy.effect == pytest.approx(0.10)
    assert policy.status == NOT_SIGNIFICANT and policy.p == pytest.approx(0.116, abs=0.001)
    assert result(verdict, "mail accepted").status == NOT_SIGNIFICANT
    assert verdict.decision == GO and verdict.reasons == ()


def test_a_significant_difference_within_tolerance_does_not_count():
    """20 000 connections a side: one point more refused is certainly real, and too small to matter."""
    old_door = {**DOOR, ACCEPTED: 0.81, REFUSED_POLICY: 0.01}
    new_door = {**DOOR, ACCEPTED: 0.80, REFUSED_POLICY: 0.02}
    verdict = judge(connections(OLD, 20_000, door=old_door) + connections(NEW, 20_000, door=new_door), 0.5, Policy())
    policy = result(verdict, "refused by policy (5xx)")
    assert policy.status == WITHIN and policy.p_holm is not None and policy.p_holm < 1e-6
    assert verdict.decision == GO


def test_too_few_connections_on_a_side_is_a_hold_that_says_so():
    verdict = judge(connections(OLD, 200) + connections(NEW, 20), None, Policy())
    assert verdict.decision == HOLD
    [reason] = verdict.reasons
    assert reason.subject == "connections" and "not enough traffic" in reason.text and "20 on the new" in reason.text
    assert result(verdict, "mail accepted").status == NOT_ENOUGH


def test_a_declared_delay_difference_is_reported_and_left_out_of_the_verdict():
    """An extra hop adds 3 s to every delivery: the median more than doubles, the tail moves within its floor."""
    attempts = connections(OLD, 200) + connections(NEW, 90, extra_delay=3.0)
    undeclared = judge(attempts, 0.3, Policy())
    assert undeclared.decision == ROLLBACK
    assert [r.subject for r in undeclared.reasons] == ["delivery delay p50"]
    assert result(undeclared, "delivery delay p95").status == WITHIN
    declared = judge(attempts, 0.3, Policy(accepted={"delivery delay p50": "the new estate has an extra hop"}))
    assert declared.decision == GO
    p50 = result(declared, "delivery delay p50")
    assert p50.status == ACCEPTED_STATUS and p50.reason == "the new estate has an extra hop" and p50.p_holm is None
    assert p50.effect is not None and p50.effect > 1.5
    assert "delivery delay p50: the new estate has an extra hop" in render.table(declared)


def test_holm_against_a_hand_computed_example():
    # sorted: 0.005×4 = 0.02, 0.01×3 = 0.03, 0.03×2 = 0.06, 0.04×1 = 0.04 → raised to 0.06 (never below the one before)
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.6, 0.5]) == [1.0, 1.0]  # 0.5×2 = 1.0, capped; 0.6 raised to it
    assert holm([]) == []


def test_the_verdict_adjusts_over_the_metrics_tested_only():
    verdict = judge(connections(OLD, 200) + connections(NEW, 90, door=refusing(0.15)), 0.3, Policy())
    tested = [r for r in verdict.metrics if r.p_holm is not None]
    assert NOT_ENOUGH not in {r.status for r in tested} and len(tested) < len(METRICS)
    assert [r.p_holm for r in tested] == pytest.approx(holm([r.p for r in tested]))


def _split(new: int, total: int) -> list[Attempt]:
    return connections(NEW, new, lost=0) + connections(OLD, total - new, lost=0)


def test_the_split_seen_against_the_share_configured():
    within = split_check(_split(186, 600), 0.3, 30)
    assert within.status == "within" and within.observed == pytest.approx(0.31)
    assert within.ci is not None and within.ci[0] < 0.3 < within.ci[1]
    outside = split_check(_split(60, 600), 0.3, 30)
    assert outside.status == "outside" and outside.ci is not None and outside.ci[1] < 0.3
    assert split_check(_split(5, 20), 0.3, 30).status == NOT_ENOUGH
    verdict = judge(_split(60, 600), 0.3, Policy())
    assert verdict.split == outside and "OUTSIDE its 99.9% interval" in render.table(verdict)
    # A split that is not the one configured cannot be judged as it is: a person looks first.
    assert verdict.decision == HOLD and [r.subject for r in verdict.reasons] == ["split"]
    assert "10.0% of 600 connections" in verdict.reasons[0].text
    assert judge(_split(60, 600), None, Policy()).split is None


@pytest.mark.parametrize("policy, named", [
    (lambda: Policy(accepted={"delivery delay p99": "why not"}), "'delivery delay p99'"),
    (lambda: Policy(tolerances={"mail refused": ShareTolerance(0.1)}), "'mail refused'"),
    (lambda: Policy(tolerances={"mail accepted": DelayTolerance(2, 1)}), "'mail accepted' is a ShareTolerance"),
])
def test_a_policy_naming_an_unknown_metric_or_the_wrong_tolerance_is_refused_with_the_valid_ones(policy, named):
    with pytest.raises(MxspecError) as refused:
        policy()
    assert named in str(refused.value)
    if "unknown" in str(refused.value):
        assert all(repr(metric.name) in str(refused.value) for metric in METRICS)


def test_a_tolerance_in_the_policy_replaces_the_default():
    attempts = connections(OLD, 200) + connections(NEW, 90, door=refusing(0.15))
    lenient = judge(attempts, 0.3, Policy(tolerances={"refused by policy (5xx)": ShareTolerance(0.2),
                                                     "mail accepted": ShareTolerance(0.2)}))
    assert lenient.decision == GO and result(lenient, "refused by policy (5xx)").status == WITHIN


def _no_nan(constant):
    raise AssertionError(f"{constant} in the JSON")


def test_the_verdict_round_trips_through_json_without_nan(tmp_path):
    attempts = connections(OLD, 200) + connections(NEW, 90, door=refusing(0.15), extra_delay=3.0)
    verdict = judge(attempts, 0.3, Policy(accepted={"delivery delay p50": "an extra hop"}))
    loaded = json.loads(render.to_json(verdict), parse_constant=_no_nan)
    assert loaded["decision"] == ROLLBACK and loaded["headline"].startswith("ROLLBACK")
    assert loaded["format"] == "mxspec-canary/1"  # what its readers check
    assert {k: v for k, v in loaded.items() if k not in ("headline", "format")} == json.loads(json.dumps(verdict.as_dict()))
    by_name = {m["metric"]: m for m in loaded["metrics"]}
    assert set(by_name) == {metric.name for metric in METRICS}
    assert by_name["refused by policy (5xx)"]["tolerance"] == {"points": 0.03}
    assert by_name["delivery delay p50"]["tolerance"] == {"ratio": 1.5, "seconds": 2.0}
    assert by_name["delivery delay p50"]["status"] == "accepted"
    assert len(by_name["delivery delay p95"]["new"]["percentiles"]) == 101
    assert loaded["split"]["status"] == "within"
    # Nothing judged on both sides empty, and nothing declared: not observed, still plain JSON.
    empty = json.loads(render.to_json(judge([], 0.3, Policy())), parse_constant=_no_nan)
    assert empty["decision"] == HOLD and {m["status"] for m in empty["metrics"]} == {"not observed"}
    assert set(render.write_all(verdict, tmp_path)) == {"json", "html", "text"}


def test_the_table_shows_the_verdict_first_and_fits_120_columns():
    verdict = judge(connections(OLD, 200) + connections(NEW, 90, door=refusing(0.15)), 0.3, Policy())
    text = render.table(verdict)
    lines = text.splitlines()
    assert lines[0] == "ROLLBACK: the new estate does worse than the old"
    assert lines[1].startswith("  - ")
    assert max(len(line) for line in lines) <= 120, max(lines, key=len)
    header = next(line for line in lines if line.startswith("metric"))
    assert header.split() == ["metric", "old", "new", "effect", "p", "(Holm)", "tolerance", "status"]
    evidence_at = lines.index("refused by policy (5xx): worse on the new estate; its log lines:")
    assert lines[evidence_at + 1].startswith("    Nov 22") and "cannot find your hostname" in lines[evidence_at + 2]


def test_fifty_healthy_canaries_rarely_raise_an_alarm():
    """Same traffic both sides, a share of 0.3 of 600 connections, drawn at random: each verdict other
    than GO must name a deviation, and there may be at most 3 of them in 50."""
    started = time.monotonic()
    alarms = []
    for seed in range(50):
        rng = random.Random(seed)
        new = sum(1 for _ in range(600) if rng.random() < 0.3)
        attempts = (connections(OLD, 600 - new, seed=seed, exact=False) +
                    connections(NEW, new, seed=seed, exact=False))
        verdict = judge(attempts, 0.3, Policy())
        if verdict.decision != GO:
            alarms.append((seed, verdict.decision, [(r.subject, r.text) for r in verdict.reasons]))
            assert verdict.reasons and all(result(verdict, r.subject).status == DEVIATES for r in verdict.reasons)
    assert len(alarms) <= 3, alarms
    assert time.monotonic() - started < 10


def test_a_tail_that_grows_while_the_median_stays_is_a_rollback_on_p95():
    """One delivered message in twelve takes two minutes instead of two seconds: the median barely moves, the
    95th percentile does, and its own test sees it (a test of whole distributions would not)."""
    import itertools

    delivered = itertools.count()

    def slow_tail(attempt):
        messages = tuple(dataclasses.replace(m, delay=120.0) if m.delay is not None and next(delivered) % 12 == 0
                         else m for m in attempt.messages)
        return dataclasses.replace(attempt, messages=messages)

    new = [slow_tail(attempt) for attempt in connections(NEW, 300)]
    verdict = judge(connections(OLD, 600) + new, None, Policy())
    assert verdict.decision == ROLLBACK, render.table(verdict)
    assert [r.subject for r in verdict.reasons] == ["delivery delay p95"]
    assert result(verdict, "delivery delay p50").status == WITHIN


def test_the_split_counts_the_connections_of_the_old_mx_that_splits():
    """Two old inbound MXs, the split on one: the share is of that MX's connections, not of the estate's."""
    other = [dataclasses.replace(attempt, host="old-mx-2") for attempt in connections(OLD, 200, seed=2)]
    attempts = _split(180, 600) + other
    assert judge(attempts, 0.3, Policy()).split.status == "outside"
    assert judge(attempts, 0.3, Policy(), split_host="old-mx-1").split.status == "within"
