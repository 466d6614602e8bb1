"""Benchmarks: run as scripts (`python benchmarks/run.py`); a package so tests can reuse the data generator."""
