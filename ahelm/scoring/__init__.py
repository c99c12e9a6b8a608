"""Scorers (pure functions of instance and output) and the statistics that aggregate them."""
