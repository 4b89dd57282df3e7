"""The canary judged: each metric's old and new figures, its test, and the verdict GO, HOLD or ROLLBACK.

A metric deviates only when the new estate differs from the old by more than its tolerance (a
difference an operator would care about) AND the difference is significant after Holm's
adjustment over every metric tested (a difference the traffic shows, not noise). A deviation for
the worse is a ROLLBACK; one for the better is a HOLD (behaviour changed: a person looks); too few
connections is a HOLD too, said as such, never a guess. Differences the operator declared in the
policy are shown with their reason and left out of the verdict.

Pure: attempts in, a Verdict of plain values out (JSON as it is); no hosts, no files.
"""

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, ClassVar

import numpy
from scipy import stats

from mxspec.canary.attempts import (
    ACCEPTED,
    BOUNCED,
    DEFERRED,
    DELIVERED,
    NEW,
    OLD,
    REFUSED_POLICY,
    SPAM_STOPPED,
    TEMPORARY,
    TOO_BIG,
    UNKNOWN_USER,
    VIRUS_STOPPED,
    Attempt,
    Message,
)
from mxspec.core.errors import MxspecError

GO, HOLD, ROLLBACK = "GO", "HOLD", "ROLLBACK"

# What a metric counts in: each connection, each message attempt, or each message the door accepted.
CONNECTION, MESSAGE, ACCEPTED_MESSAGE = "connection", "message attempt", "accepted message"
SHARE, DELAY = "share", "delay"       # the kinds of metric: a share of events, or a distribution of delays
HIGHER, LOWER = "higher", "lower"     # which way a metric is worse
WORSE, BETTER = "worse", "better"     # which way the new estate moved

# A metric's status, in the order they are decided.
ACCEPTED_STATUS = "accepted"                         # the operator declared this difference (figures still shown)
NOT_OBSERVED = "not observed"                        # no events on either side
NOT_ENOUGH = "not enough traffic"                    # fewer than min_events on a side, while the other has some
WITHIN = "within tolerance"
NOT_SIGNIFICANT = "beyond tolerance, not significant"
DEVIATES = "deviates"                                # beyond tolerance and significant: counts

EVIDENCE_EVENTS = 5  # events shown per side as evidence: one telling log line each
PERCENTILES = tuple(range(101))  # what a delay's distribution is kept as: small in JSON, enough for a plot
CONFIDENCE = 0.95
BOOTSTRAPS, BOOTSTRAP_SEED = 4000, 20261205  # a delay quantile's resamples: p-values down to 1/4000, reproducible
# The split's check: a misconfigured split is tens of points off, and a 99.9% interval still sees that at a few
# hundred connections, while a healthy canary falls outside it once in a thousand (a 95% one: once in twenty).
SPLIT_CONFIDENCE = 0.999


@dataclass(frozen=True)
class ShareTolerance:
    """How far a share may move, in absolute terms (0.05: five percentage points), before it matters."""
    points: float

    def exceeded(self, old: float, new: float) -> bool:
        return abs(new - old) > self.points

    def __str__(self) -> str:
        return f"±{self.points * 100:g} pp"


@dataclass(frozen=True)
class DelayTolerance:
    """How far a delay quantile may move before it matters: by more than `ratio` times AND more than
    `seconds` (the floor keeps a 0.2 s delay becoming 0.4 s from counting as doubled)."""
    ratio: float
    seconds: float

    def exceeded(self, old: float, new: float) -> bool:
        slow, fast = max(old, new), min(old, new)
        return slow > fast * self.ratio and slow - fast > self.seconds

    def __str__(self) -> str:
        return f"×{self.ratio:g}, {self.seconds:g} s"


@dataclass(frozen=True)
class Observation:
    """One side's events for one metric. `higher` and `lower` are evidence: log lines of events that
    raise the figure (hits; the slowest deliveries) and that lower it (events not hits; the fastest)."""
    events: int
    hits: int = 0
    values: tuple[float, ...] = ()
    higher: tuple[str, ...] = ()
    lower: tuple[str, ...] = ()


def _messages(attempts: Iterable[Attempt]) -> Iterator[Message]:
    return (message for attempt in attempts for message in attempt.messages)


def _accepted(attempts: Iterable[Attempt]) -> Iterator[Message]:
    return (message for message in _messages(attempts) if message.outcome == ACCEPTED)


def _items(attempts: Iterable[Attempt], unit: str) -> Iterable[Attempt | Message]:
    """What a metric of `unit` counts in."""
    if unit == CONNECTION:
        return attempts
    return _messages(attempts) if unit == MESSAGE else _accepted(attempts)


def _telling_line(item: Attempt | Message) -> list[str]:
    """The one log line that says most about an event: a refusal's (the line with its code), else its last."""
    reply = item.reply if isinstance(item, Message) else ""
    return [line for line in item.evidence if reply and reply in line][:1] or list(item.evidence[-1:])


def _evidence(items: Iterable[Attempt | Message]) -> tuple[str, ...]:
    return tuple(line for item in list(items)[:EVIDENCE_EVENTS] for line in _telling_line(item))


@dataclass(frozen=True)
class Share:
    """A share of events that are hits, compared with Fisher's exact test (two-sided)."""
    name: str
    unit: str
    worse: str
    tolerance: ShareTolerance
    hit: Callable[[Any], bool | None]  # an item of `unit`: True a hit, False an event not a hit, None not an event
    kind: ClassVar[str] = SHARE

    def observe(self, attempts: Iterable[Attempt]) -> Observation:
        hits: list[Attempt | Message] = []
        misses: list[Attempt | Message] = []
        for item in _items(attempts, self.unit):
            counted = self.hit(item)
            if counted is not None:
                (hits if counted else misses).append(item)
        return Observation(len(hits) + len(misses), hits=len(hits), higher=_evidence(hits), lower=_evidence(misses))

    def figure(self, seen: Observation) -> float:
        return seen.hits / seen.events

    def effect(self, old: Observation, new: Observation) -> float:
        """The new share less the old (0.15: fifteen points more on the new estate)."""
        return self.figure(new) - self.figure(old)

    def p_value(self, old: Observation, new: Observation) -> float:
        table = [[new.hits, new.events - new.hits], [old.hits, old.events - old.hits]]
        return float(stats.fisher_exact(table, alternative="two-sided").pvalue)


@dataclass(frozen=True)
class Delay:
    """A quantile of delivery delays (accepted mail, from the door to the last hop's delivery), the
    quantile itself compared by a percentile bootstrap (two-sided). Higher is worse.

    Not Mann-Whitney: it compares whole distributions, so a tail that grows (p95 two minutes instead of
    two seconds, for one message in twelve) passes it while the median stays put."""
    name: str
    quantile: float
    tolerance: DelayTolerance
    unit: ClassVar[str] = ACCEPTED_MESSAGE
    worse: ClassVar[str] = HIGHER
    kind: ClassVar[str] = DELAY

    def observe(self, attempts: Iterable[Attempt]) -> Observation:
        timed = sorted((m for m in _accepted(attempts) if m.fate == DELIVERED and m.delay is not None),
                       key=lambda m: m.delay or 0.0)
        return Observation(len(timed), values=tuple(m.delay or 0.0 for m in timed),
                           higher=_evidence(reversed(timed)), lower=_evidence(timed))

    def figure(self, seen: Observation) -> float:
        return float(numpy.quantile(seen.values, self.quantile))

    def effect(self, old: Observation, new: Observation) -> float | None:
        """The new quantile over the old (1.5: half as long again); None when the old one is zero."""
        return self.figure(new) / self.figure(old) if self.figure(old) > 0 else None

    def p_value(self, old: Observation, new: Observation) -> float:
        """How often resampled estates put the new quantile on the other side of the old one (twice the
        smaller tail, at least one resample's worth): seeded, so the same logs give the same verdict."""
        rng = numpy.random.default_rng(BOOTSTRAP_SEED)
        resampled = {side: numpy.quantile(rng.choice(numpy.asarray(seen.values), (BOOTSTRAPS, seen.events)),
                                          self.quantile, axis=1) for side, seen in (("old", old), ("new", new))}
        moved = resampled["new"] - resampled["old"]
        tail = min(float(numpy.mean(moved <= 0)), float(numpy.mean(moved >= 0)))
        return min(1.0, max(2 * tail, 1 / BOOTSTRAPS))


Metric = Share | Delay


def _door(outcome: str) -> Callable[[Message], bool]:
    return lambda message: message.outcome == outcome


def _fate(fate: str) -> Callable[[Message], bool | None]:
    # None: accepted moments before the logs were read, too soon to say (outcomes.attempts' settled_before)
    return lambda message: None if message.fate is None else message.fate == fate


# The default tolerances: 2 points where the base rate is small or each event costs much (a bounce,
# a refusal of a real recipient, a lost signature, a virus let in), 3 for refusals and fates that
# vary a little by nature, 5 where the rate is large and noisy by nature (TLS, spam, greylisting,
# lost connections). Which way is worse is which way hurts the senders or the estate's users: for
# spam and viruses stopping less is worse (stopping more than the old estate shows as mail accepted
# going down, which is worse there).
METRICS: tuple[Metric, ...] = (
    Share("connections lost before QUIT", CONNECTION, HIGHER, ShareTolerance(0.05),
          lambda attempt: attempt.lost_at is not None),
    Share("TLS used", CONNECTION, LOWER, ShareTolerance(0.05),
          lambda attempt: attempt.tls if attempt.completed else None),  # no STARTTLS before EHLO
    Share("mail accepted", MESSAGE, LOWER, ShareTolerance(0.05), _door(ACCEPTED)),
    Share("spam stopped", MESSAGE, LOWER, ShareTolerance(0.05), _door(SPAM_STOPPED)),
    Share("virus stopped", MESSAGE, LOWER, ShareTolerance(0.02), _door(VIRUS_STOPPED)),
    Share("refused: unknown user", MESSAGE, HIGHER, ShareTolerance(0.03), _door(UNKNOWN_USER)),
    Share("refused: too big", MESSAGE, HIGHER, ShareTolerance(0.02), _door(TOO_BIG)),
    Share("refused by policy (5xx)", MESSAGE, HIGHER, ShareTolerance(0.03), _door(REFUSED_POLICY)),
    Share("refused for now (4xx)", MESSAGE, HIGHER, ShareTolerance(0.05), _door(TEMPORARY)),
    # Mail still in flight when the window closed stays in the denominator: mail stuck without a
    # word in the log is mail not delivered.
    Share("accepted mail delivered", ACCEPTED_MESSAGE, LOWER, ShareTolerance(0.03), _fate(DELIVERED)),
    Share("accepted mail deferred", ACCEPTED_MESSAGE, HIGHER, ShareTolerance(0.03), _fate(DEFERRED)),
    Share("accepted mail bounced", ACCEPTED_MESSAGE, HIGHER, ShareTolerance(0.02), _fate(BOUNCED)),
    Share("DKIM-signed (outgoing)", ACCEPTED_MESSAGE, LOWER, ShareTolerance(0.02),
          lambda message: message.dkim_signed),  # None: not mail the estate signs
    # The new estate may take a second longer at the median, a few at the tail, before it matters.
    Delay("delivery delay p50", 0.5, DelayTolerance(1.5, 2.0)),
    Delay("delivery delay p95", 0.95, DelayTolerance(1.5, 5.0)),
)
BY_NAME: dict[str, Metric] = {metric.name: metric for metric in METRICS}


def _known(names: Iterable[str], where: str) -> None:
    unknown = [name for name in names if name not in BY_NAME]
    if unknown:
        raise MxspecError(f"canary policy: {where} names an unknown metric {unknown[0]!r}; the metrics are: "
                          + ", ".join(repr(name) for name in BY_NAME))


@dataclass(frozen=True)
class Policy:
    """What the operator decides: tolerances other than the defaults, how much traffic is enough, the
    significance level, and the differences they declared and accept ({metric name: why})."""
    tolerances: Mapping[str, ShareTolerance | DelayTolerance] = field(default_factory=dict)
    min_events: int = 30
    alpha: float = 0.05
    accepted: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _known(self.tolerances, "a tolerance")
        _known(self.accepted, "an accepted difference")
        for name, tolerance in self.tolerances.items():
            wanted = ShareTolerance if BY_NAME[name].kind == SHARE else DelayTolerance
            if not isinstance(tolerance, wanted):
                raise MxspecError(f"canary policy: the tolerance of {name!r} is a {wanted.__name__}, not {tolerance!r}")
        if self.min_events < 1:
            raise MxspecError(f"canary policy: min_events must be at least 1, not {self.min_events}")
        if not 0 < self.alpha < 1:
            raise MxspecError(f"canary policy: alpha must lie between 0 and 1, not {self.alpha}")

    def tolerance(self, metric: Metric) -> ShareTolerance | DelayTolerance:
        return self.tolerances.get(metric.name, metric.tolerance)


@dataclass(frozen=True)
class Side:
    """One side's figures for one metric, as the verdict shows them."""
    events: int
    hits: int | None = None                 # shares
    share: float | None = None
    ci: tuple[float, float] | None = None   # the share's 95% interval (Wilson)
    quantile: float | None = None           # delays: the metric's quantile, in seconds
    percentiles: tuple[float, ...] = ()     # delays: the distribution, 0th to 100th percentile


@dataclass(frozen=True)
class Result:
    """One metric judged."""
    metric: str
    unit: str
    kind: str
    worse: str
    tolerance: ShareTolerance | DelayTolerance  # JSON: {"points": ...} or {"ratio": ..., "seconds": ...}
    old: Side
    new: Side
    status: str
    effect: float | None = None      # shares: new less old; delays: new quantile over old
    direction: str | None = None     # WORSE or BETTER: which way the new estate moved, if it did
    p: float | None = None
    p_holm: float | None = None
    reason: str | None = None        # why the operator accepts it, when they declared it
    evidence: dict[str, tuple[str, ...]] = field(default_factory=dict)  # {side: lines}: the way it moved

    @property
    def deviates(self) -> bool:
        """Beyond tolerance and significant: what the verdict counts."""
        return self.status == DEVIATES


@dataclass(frozen=True)
class Split:
    """The share of connections that reached the new estate, against the share configured."""
    configured: float
    connections: int
    new: int
    status: str                          # "within", "outside" or NOT_ENOUGH
    observed: float | None = None
    ci: tuple[float, float] | None = None


@dataclass(frozen=True)
class Reason:
    """What drives the verdict: a metric's deviation with its figures and evidence, or too little traffic."""
    subject: str
    text: str
    evidence: tuple[str, ...] = ()


@dataclass(frozen=True)
class Verdict:
    decision: str                        # GO, HOLD or ROLLBACK
    reasons: tuple[Reason, ...]
    connections: dict[str, int]
    metrics: tuple[Result, ...]
    split: Split | None
    min_events: int
    alpha: float

    def as_dict(self) -> dict:
        return asdict(self)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values, in the order given: the k-th smallest times (m - k + 1),
    never less than the one before it, at most 1."""
    adjusted = [1.0] * len(p_values)
    highest = 0.0
    for rank, index in enumerate(sorted(range(len(p_values)), key=lambda i: p_values[i])):
        highest = max(highest, min(1.0, (len(p_values) - rank) * p_values[index]))
        adjusted[index] = highest
    return adjusted


def _interval(hits: int, events: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    ci = stats.binomtest(hits, events).proportion_ci(confidence, method="wilson")
    return float(ci.low), float(ci.high)


def _side(metric: Metric, seen: Observation) -> Side:
    if not seen.events:
        return Side(0)
    if isinstance(metric, Share):
        return Side(seen.events, hits=seen.hits, share=metric.figure(seen), ci=_interval(seen.hits, seen.events))
    return Side(seen.events, quantile=metric.figure(seen),
                percentiles=tuple(float(v) for v in numpy.percentile(seen.values, PERCENTILES)))


def _direction(metric: Metric, moved: float) -> str | None:
    """WORSE or BETTER for the new estate, which `moved` its figure by that much (None: not at all)."""
    if moved == 0:
        return None
    return WORSE if (moved > 0) == (metric.worse == HIGHER) else BETTER


def _observed(metric: Metric, old: Observation, new: Observation, policy: Policy) -> Result:
    """A metric's figures, and its status where no test is needed; `_tested` gives the tested ones theirs."""
    tolerance = policy.tolerance(metric)
    result = Result(metric.name, metric.unit, metric.kind, metric.worse, tolerance, _side(metric, old),
                    _side(metric, new), NOT_OBSERVED)
    if old.events and new.events:
        moved = metric.figure(new) - metric.figure(old)
        evidence = {OLD: old.higher, NEW: new.higher} if moved > 0 else {OLD: old.lower, NEW: new.lower}
        result = replace(result, effect=metric.effect(old, new), direction=_direction(metric, moved),
                         p=metric.p_value(old, new), evidence=evidence if moved else {})
    if metric.name in policy.accepted:
        return replace(result, status=ACCEPTED_STATUS, reason=policy.accepted[metric.name])
    if not old.events and not new.events:
        return result
    if min(old.events, new.events) < policy.min_events:
        return replace(result, status=NOT_ENOUGH)
    beyond = tolerance.exceeded(metric.figure(old), metric.figure(new))
    return replace(result, status=NOT_SIGNIFICANT if beyond else WITHIN)


def _tested(results: list[Result], alpha: float) -> list[Result]:
    """Holm's adjustment over the metrics tested (enough traffic both sides, not declared); a metric
    beyond tolerance whose adjusted p is below alpha deviates."""
    tested = [i for i, r in enumerate(results) if r.status in (WITHIN, NOT_SIGNIFICANT)]
    adjusted = holm([results[i].p or 0.0 for i in tested])
    judged = list(results)
    for i, p_holm in zip(tested, adjusted, strict=True):
        significant = results[i].status == NOT_SIGNIFICANT and p_holm < alpha
        judged[i] = replace(results[i], p_holm=p_holm, status=DEVIATES if significant else results[i].status)
    return judged


def split_check(attempts: Sequence[Attempt], share: float, min_events: int) -> Split:
    """Whether the configured share P lies in the 99.9% interval of the share of connections seen on the new side."""
    new = sum(1 for a in attempts if a.side == NEW)
    if len(attempts) < min_events:
        return Split(share, len(attempts), new, NOT_ENOUGH)
    ci = _interval(new, len(attempts), SPLIT_CONFIDENCE)
    return Split(share, len(attempts), new, "within" if ci[0] <= share <= ci[1] else "outside",
                 observed=new / len(attempts), ci=ci)


def _figures(result: Result) -> str:
    """A metric's old and new figures and effect, in one phrase (for reasons and the table alike)."""
    return f"{shown(result, result.old)} → {shown(result, result.new)}, {effect_shown(result)}"


def shown(result: Result, side: Side) -> str:
    if not side.events:
        return "none"
    if result.kind == SHARE:
        return f"{(side.share or 0.0) * 100:.1f}% ({side.events})"
    return f"{side.quantile:.3g} s ({side.events})"


def effect_shown(result: Result) -> str:
    if result.kind == SHARE:
        return "" if result.effect is None else f"{result.effect * 100:+.1f} pp"
    if result.effect is None:
        return "" if result.new.quantile is None or result.old.quantile is None else "from 0 s"
    return f"×{result.effect:.2f}"


def _reason(result: Result, alpha: float) -> Reason:
    text = (f"{result.direction} on the new estate: {_figures(result)}, beyond {result.tolerance}, "
            f"p(Holm) {result.p_holm:.2g} < {alpha:g}")
    return Reason(result.metric, text, result.evidence.get(NEW, ()))


def _decide(results: Sequence[Result], connections: dict[str, int], split: Split | None,
            policy: Policy) -> tuple[str, tuple[Reason, ...]]:
    worse = [_reason(r, policy.alpha) for r in results if r.deviates and r.direction == WORSE]
    if worse:
        return ROLLBACK, tuple(worse)
    reasons = [_reason(r, policy.alpha) for r in results if r.deviates and r.direction == BETTER]
    if min(connections.values()) < policy.min_events:
        reasons.append(Reason("connections", f"not enough traffic to judge: {connections[OLD]} connections on the old "
                              f"estate, {connections[NEW]} on the new, {policy.min_events} needed on each"))
    if split is not None and split.status == "outside" and split.observed is not None:
        # Not the share configured: a DNAT rule not there, a new MX refusing connections, a host's log not read.
        reasons.append(Reason("split", f"the new estate took {split.observed:.1%} of {split.connections} connections, "
                              f"the split is configured to send {split.configured:.0%}: outside the 99.9% interval"))
    return (HOLD, tuple(reasons)) if reasons else (GO, ())


def judge(attempts: list[Attempt], share: float | None, policy: Policy, split_host: str | None = None) -> Verdict:
    """The canary's verdict on the attempts both estates logged over its window. `split_host`: the old inbound
    MX that runs the split, when the old estate has others: only its connections share with the new estate's."""
    sides = {side: [a for a in attempts if a.side == side] for side in (OLD, NEW)}
    results = _tested([_observed(metric, metric.observe(sides[OLD]), metric.observe(sides[NEW]), policy)
                       for metric in METRICS], policy.alpha)
    connections = {side: len(found) for side, found in sides.items()}
    split_from = [a for a in attempts if a.side == NEW or split_host is None or a.host == split_host]
    split = None if share is None else split_check(split_from, share, policy.min_events)
    decision, reasons = _decide(results, connections, split, policy)
    return Verdict(decision, reasons, connections, tuple(results), split, policy.min_events, policy.alpha)
