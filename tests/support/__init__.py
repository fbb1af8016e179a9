"""Reusable test doubles and real-server helpers (redis-server, a Bot API double)."""
