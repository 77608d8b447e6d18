"""Benchmarks: each module runs on its own embedded PostgreSQL and returns its figures."""
