"""Representations of examples: LESS gradient features, base-model hidden states, sentence embeddings.

They are named in ``winnow.registry`` (one class per representation, in the module of its maths);
``shards`` computes any of them row range by row range. This package file imports nothing.
"""
