"""Mixture proportions over domains: TaskPGM (closed form from task affinities) and DUET (Bayesian search)."""
