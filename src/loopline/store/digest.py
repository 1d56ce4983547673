"""Content digests as a tiny value object.

>>> d = Digest.of_bytes(b"hello")
>>> d.algo, len(d.hex)
('blake3', 64)
>>> Digest.parse(str(d)) == d
True
>>> d.shard
('ea', '8f163db38682925e4491c5e58d4bb3506ef8c14eb78a86e908c5624a67200f')
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from loopline.errors import InvalidArgumentError

__all__ = ["ALGO", "Digest", "Hasher"]

ALGO = "blake3"
_HEX = re.compile(r"^[0-9a-f]{64}$")


def Hasher() -> Any:
    """A fresh incremental blake3 hasher (imported lazily)."""
    import blake3

    return blake3.blake3(max_threads=blake3.blake3.AUTO)


@dataclass(frozen=True, slots=True, order=True)
class Digest:
    """``algo:hex`` of some content; blobs are stored under it."""

    algo: str
    hex: str

    def __post_init__(self) -> None:
        if self.algo != ALGO or not _HEX.match(self.hex):
            raise InvalidArgumentError(
                f"not a valid digest: {self.algo}:{self.hex}",
                hint="digests look like blake3:<64 lowercase hex characters>",
            )

    def __str__(self) -> str:
        return f"{self.algo}:{self.hex}"

    @property
    def shard(self) -> tuple[str, str]:
        """(first two hex characters, the rest): the sharded storage path."""
        return self.hex[:2], self.hex[2:]

    @classmethod
    def parse(cls, text: str) -> Digest:
        algo, sep, hexpart = text.partition(":")
        if not sep:
            algo, hexpart = ALGO, text
        return cls(algo, hexpart.lower())

    @classmethod
    def of_bytes(cls, data: bytes) -> Digest:
        hasher = Hasher()
        hasher.update(data)
        return cls(ALGO, hasher.hexdigest())

    def to_dict(self) -> dict[str, str]:
        return {"algo": self.algo, "hex": self.hex}

    @classmethod
    def from_dict(cls, data: dict[str, str]) -> Digest:
        return cls(data["algo"], data["hex"])
