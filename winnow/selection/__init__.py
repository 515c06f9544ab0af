"""Targeted selection: similarity of the pool to the query set, a selector's ordering, a budget's prefix.

The selectors are named in ``winnow.registry`` and live one per module (round_robin, greedy,
transport, knn, random); ``targeted.order_pool`` runs one over stored features, ``subset.select_subset``
writes the subset. This package file imports nothing, so importing one selector never imports the rest.
"""
