"""Keyed random generators: one stream per (seed, purpose, song), independent of processing order."""

from __future__ import annotations

import hashlib

import numpy as np


def keyed_rng(seed: int, *keys: str) -> np.random.Generator:
    """A generator seeded by ``sha256("seed:key1:key2...")``: each song's draws depend only on its
    own keys, never on which songs came before it or how many processes drew them."""
    digest = hashlib.sha256(":".join([str(seed), *keys]).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))
