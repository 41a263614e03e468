"""Benchmarks of the lab, run together by ``python -m bench`` (``make bench``)."""
