"""Representations of examples: LESS gradient features, base-model hidden states, sentence embeddings.

The names live here once; ``shards.featurize_range`` dispatches on them, and the experiment grid, the compare
flow and the CLI take their choices from ``REPRESENTATIONS``.
"""
from typing import Literal, get_args

Representation = Literal["gradients", "hidden", "embedding"]
REPRESENTATIONS: tuple[str, ...] = get_args(Representation)
