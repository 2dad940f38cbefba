"""Alerts: TaskLens watches failure rates, queue ages, workers and its own log losses and
says so by webhook, without Prometheus rules a team must write.

rules.py (the file) → engine.py (one evaluator per cluster, ../lease.py) → measures.py (each
kind's value) → firings.py (the history table) → webhooks.py (delivery with retries).
"""
