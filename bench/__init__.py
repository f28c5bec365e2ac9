"""Benchmarks of fablab-gateway: ``python -m bench`` (see bench/README.md).

Timings live here and in docs/performance.md, never in the unit tests: a test that
fails because a CI machine is busy teaches people to ignore red tests.
"""
