"""What one connection to an estate's entry MX, and each message sent in it, became.

The canary compares estates per connection and per message attempt, never per Message-ID:
a message deferred and retried later may reach the other estate and hide the failure.
Outcomes are named by what they mean for the sender: spam refused at the door and spam
accepted but marked are both "spam stopped".
"""

import time
from dataclasses import dataclass, field

OLD, NEW = "old", "new"  # the two sides of a canary

# What became of one message attempt at the estate's door (the answer to its end of DATA, or the
# refusal of every recipient): one of these.
ACCEPTED = "accepted"                 # 250 after DATA, not marked as spam
SPAM_STOPPED = "spam stopped"         # refused as spam, or accepted marked as spam
VIRUS_STOPPED = "virus stopped"       # refused as carrying a virus
UNKNOWN_USER = "unknown user"         # 5xx: the recipient does not exist
TOO_BIG = "too big"                   # 5xx: over the size limit
REFUSED_POLICY = "refused by policy"  # any other 5xx (sender, client, relay, HELO restrictions)
TEMPORARY = "refused for now"         # any 4xx: the sender will try again
DOOR_OUTCOMES = (ACCEPTED, SPAM_STOPPED, VIRUS_STOPPED, UNKNOWN_USER, TOO_BIG, REFUSED_POLICY, TEMPORARY)

# What became of an accepted message inside the estate, as far as the window shows.
DELIVERED = "delivered"   # handed out of the estate (mailstore or remote), status=sent at the last hop
DEFERRED = "deferred"     # a hop said deferred and no later hop delivered it within the window
BOUNCED = "bounced"       # a hop bounced or expired it
IN_FLIGHT = "in flight"   # still queued when the window closed
FATES = (DELIVERED, DEFERRED, BOUNCED, IN_FLIGHT)


@dataclass(frozen=True)
class Message:
    """One message attempt inside a connection."""
    sender: str
    recipients: tuple[str, ...]
    outcome: str                      # one of DOOR_OUTCOMES
    reply: str = ""                   # the refusal's code, e.g. "550 5.1.1" ("" when accepted)
    fate: str | None = None           # one of FATES when accepted, else None
    delay: float | None = None        # seconds from the door to the last hop's delivery, when delivered
    dkim_signed: bool | None = None   # for mail the estate sends out of its own domains; None otherwise
    evidence: tuple[str, ...] = ()    # the log lines this was read from, in order


@dataclass(frozen=True)
class Attempt:
    """One SMTP connection a client made to an estate's entry MX."""
    side: str                         # OLD or NEW
    host: str                         # the entry MX that logged it
    client: str                       # the client's address, as the MX saw it (no SNAT: the real one)
    started: float                    # epoch seconds, the connect line's time
    tls: bool                         # STARTTLS completed
    completed: bool                   # the client got past the greeting (EHLO/HELO answered)
    lost_at: str | None = None        # "CONNECT", "EHLO", "DATA"...: the stage a lost connection ended in
    messages: tuple[Message, ...] = field(default_factory=tuple)
    evidence: tuple[str, ...] = ()


@dataclass(frozen=True)
class Window:
    """When the judged connections began: from `since` up to `until` (epoch seconds)."""
    since: float
    until: float

    def describe(self) -> str:
        return (f"{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(self.since))} to "
                f"{time.strftime('%H:%M:%S', time.gmtime(self.until))} UTC ({self.until - self.since:.0f} s)")
