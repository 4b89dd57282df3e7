"""Shards: which hosts of the selected estates one of N runners checks (`--mx-shard=K/N`).

A shard holds whole hosts (an estate's own scenarios, `@estate`, count as one more "host"), so a
host's scenarios never split across runners. The assignment is a pure function of the set of
names and N: every runner of a matrix computes the same one, whatever order the inventory lists
hosts in. Names are ranked by a hash (so neighbours in an inventory spread over the shards) and
dealt out in turn, so shard sizes differ by one at most.
"""

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from mxspec.core.errors import BadInput

USAGE = "K/N: this runner's shard K of N (1 <= K <= N), e.g. --mx-shard=2/3"


@dataclass(frozen=True)
class Shard:
    index: int  # 1..count
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def select(self, units: Iterable[str]) -> set[str]:
        """The units (see `unit`) of this shard."""
        return {name for name, index in assign(units, self.count).items() if index == self.index}


def parse(text: str) -> Shard:
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not match:
        raise BadInput(f"--mx-shard={text}: not a shard; expected {USAGE}")
    index, count = int(match[1]), int(match[2])
    if count < 1:
        raise BadInput(f"--mx-shard={text}: the number of shards N must be at least 1; expected {USAGE}")
    if not 1 <= index <= count:
        raise BadInput(f"--mx-shard={text}: shard {index} does not exist, shards count from 1 to {count}; "
                       f"expected {USAGE}")
    return Shard(index, count)


def unit(estate: str, target: str) -> str:
    """What is assigned to a shard: a host of an estate, or the estate itself (target = estate's name)."""
    return f"{estate}/{target}"


def assign(units: Iterable[str], count: int) -> dict[str, int]:
    """Each unit's shard, 1..count: stable, disjoint, covering, balanced, independent of order."""
    ranked = sorted(set(units), key=lambda name: (hashlib.sha256(name.encode()).hexdigest(), name))
    return {name: rank % count + 1 for rank, name in enumerate(ranked)}
