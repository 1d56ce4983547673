"""Readable random run names (``brisk-heron-42``), so runs are easy to tell apart."""

from __future__ import annotations

import random

__all__ = ["random_run_name"]

_ADJECTIVES = [
    "amber",
    "agile",
    "bold",
    "brisk",
    "calm",
    "clever",
    "crisp",
    "daring",
    "eager",
    "fair",
    "fleet",
    "gentle",
    "glad",
    "grand",
    "hardy",
    "keen",
    "lively",
    "lucid",
    "merry",
    "nimble",
    "noble",
    "plucky",
    "quick",
    "quiet",
    "rapid",
    "serene",
    "sharp",
    "shy",
    "sleek",
    "smooth",
    "snappy",
    "steady",
    "sunny",
    "swift",
    "tidy",
    "vivid",
    "warm",
    "wise",
    "zesty",
]
_NOUNS = [
    "badger",
    "bee",
    "bison",
    "crane",
    "deer",
    "dove",
    "eagle",
    "falcon",
    "finch",
    "fox",
    "gecko",
    "hare",
    "hawk",
    "heron",
    "ibis",
    "jay",
    "koala",
    "lark",
    "lemur",
    "lynx",
    "marten",
    "mole",
    "moose",
    "newt",
    "orca",
    "otter",
    "owl",
    "panda",
    "puffin",
    "quail",
    "raven",
    "robin",
    "seal",
    "shrike",
    "sloth",
    "swan",
    "tern",
    "toad",
    "vole",
    "wren",
    "yak",
]


def random_run_name(rng: random.Random | None = None) -> str:
    """An adjective, an animal and a number.

    >>> random_run_name(random.Random(0))
    'rapid-owl-6'
    """
    pick = rng or random
    return f"{pick.choice(_ADJECTIVES)}-{pick.choice(_NOUNS)}-{pick.randint(1, 99)}"
