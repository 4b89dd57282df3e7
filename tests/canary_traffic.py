"""Synthetic canary traffic for the canary's tests: connections to one side, their outcomes dealt
from a mix (exactly, or drawn at random like real traffic), with Postfix-like log lines as evidence."""

import math
import random

from mxspec.canary.attempts import (
    ACCEPTED,
    BOUNCED,
    DEFERRED,
    DELIVERED,
    IN_FLIGHT,
    REFUSED_POLICY,
    SPAM_STOPPED,
    TEMPORARY,
    TOO_BIG,
    UNKNOWN_USER,
    VIRUS_STOPPED,
    Attempt,
    Message,
)

# What a healthy inbound MX's door does with the mail offered to it, and what becomes of what it accepts.
DOOR = {ACCEPTED: 0.80, SPAM_STOPPED: 0.08, VIRUS_STOPPED: 0.01, UNKNOWN_USER: 0.04, TOO_BIG: 0.01,
        REFUSED_POLICY: 0.03, TEMPORARY: 0.03}
FATE = {DELIVERED: 0.95, DEFERRED: 0.02, BOUNCED: 0.01, IN_FLIGHT: 0.02}
REPLY = {SPAM_STOPPED: "554 5.7.1", VIRUS_STOPPED: "554 5.7.0", UNKNOWN_USER: "550 5.1.1", TOO_BIG: "552 5.3.4",
         REFUSED_POLICY: "554 5.7.1", TEMPORARY: "450 4.7.1", ACCEPTED: ""}
WHY = {SPAM_STOPPED: "Spam message rejected", VIRUS_STOPPED: "Infected: Eicar-Test-Signature",
       UNKNOWN_USER: "Recipient address rejected: User unknown in virtual mailbox table",
       TOO_BIG: "Message size exceeds fixed limit", REFUSED_POLICY: "Client host rejected: cannot find your hostname",
       TEMPORARY: "Recipient address rejected: Greylisted"}


def _deal(mix: dict[str, float], n: int, rng: random.Random, exact: bool) -> list[str]:
    """n outcomes in the proportions of `mix`: exactly so (shuffled), or drawn at random like real traffic."""
    if not exact:
        return rng.choices(list(mix), weights=list(mix.values()), k=n)
    rest, *others = mix
    dealt = [name for name in others for _ in range(round(mix[name] * n))]
    dealt += [rest] * (n - len(dealt))
    rng.shuffle(dealt)
    return dealt


def _message(i: int, host: str, outcome: str, fate: str, delay: float, signed: bool | None) -> Message:
    client = f"client{i}.example.net[198.51.100.{i % 250}]"
    if outcome != ACCEPTED:
        line = (f"Nov 22 10:{i // 60 % 60:02d}:{i % 60:02d} {host} postfix/smtpd[{1000 + i}]: NOQUEUE: reject: RCPT from "
                f"{client}: {REPLY[outcome]} <user{i}@example.org>: {WHY[outcome]}; from=<s{i}@example.com> "
                f"to=<user{i}@example.org> proto=ESMTP helo=<client{i}.example.net>")
        return Message(f"s{i}@example.com", (f"user{i}@example.org",), outcome, REPLY[outcome], evidence=(line,))
    queued = f"Nov 22 10:00:00 {host} postfix/cleanup[{2000 + i}]: Q{i:05X}: message-id=<{i}@example.com>"
    status = {DELIVERED: "sent (250 2.0.0 Ok)", DEFERRED: "deferred (connect to mailstore: Connection refused)",
              BOUNCED: "bounced (user over quota)", IN_FLIGHT: "queued"}[fate]
    last = f"Nov 22 10:00:{int(delay) % 60:02d} {host} postfix/lmtp[{3000 + i}]: Q{i:05X}: to=<user{i}@example.org>, " \
           f"delay={delay:.2f}, status={status}"
    return Message(f"s{i}@example.com", (f"user{i}@example.org",), ACCEPTED, fate=fate,
                   delay=delay if fate == DELIVERED else None, dkim_signed=signed, evidence=(queued, last))


def connections(side: str, n: int, seed: int = 1, door: dict[str, float] = DOOR, fate: dict[str, float] = FATE,
                lost: float = 0.03, tls: float = 0.7, extra_delay: float = 0.0, exact: bool = True) -> list[Attempt]:
    """n connections to one side: `lost` of them lost after EHLO without mail, the rest one message each,
    its outcome dealt from `door`, an accepted one's fate from `fate`; delays around 2 s (plus `extra_delay`);
    a quarter of the accepted mail leaves the estate's own domains, signed."""
    rng = random.Random(f"{side}-{seed}")
    host = f"{side}-mx-1"
    lost_ones = set(rng.sample(range(n), round(lost * n))) if exact else {i for i in range(n) if rng.random() < lost}
    doors = _deal(door, n - len(lost_ones), rng, exact)
    fates = iter(_deal(fate, doors.count(ACCEPTED), rng, exact))
    outcomes = iter(doors)
    tls_ones = _deal({True: tls, False: 1 - tls}, n, rng, exact)
    made = []
    for i in range(n):
        connect = f"Nov 22 10:00:00 {host} postfix/smtpd[{1000 + i}]: connect from client{i}.example.net"
        if i in lost_ones:
            made.append(Attempt(side, host, f"198.51.100.{i % 250}", 1_700_000_000.0 + i, tls=False, completed=True,
                                lost_at="EHLO", evidence=(connect, f"Nov 22 10:00:01 {host} postfix/smtpd[{1000 + i}]: "
                                                          f"lost connection after EHLO from client{i}.example.net")))
            continue
        delay = rng.lognormvariate(math.log(2.0), 0.5) + extra_delay
        outcome = next(outcomes)
        message = _message(i, host, outcome, next(fates) if outcome == ACCEPTED else "", delay, True if i % 4 == 0 else None)
        made.append(Attempt(side, host, f"198.51.100.{i % 250}", 1_700_000_000.0 + i, tls=tls_ones[i], completed=True,
                            messages=(message,), evidence=(connect,)))
    return made


def refusing(share: float, of: str = REFUSED_POLICY) -> dict[str, float]:
    """The healthy door, refusing `share` more of the mail it would have accepted."""
    return {**DOOR, ACCEPTED: DOOR[ACCEPTED] - share, of: DOOR[of] + share}
