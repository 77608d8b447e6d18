"""Benchmarks: ``python -m bench`` prints the figures and writes docs/benchmarks.md.

Every target is a ratio against a baseline measured in the same run on the same machine, never
an absolute time: these machines are shared and noisy.
"""
