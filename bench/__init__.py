"""Benchmarks. Each prints measurements as ratios against a baseline measured in the same run, on the
same machine, interleaved with it; none asserts a timing (machines differ, ratios travel).

A benchmark is a module here (name not starting with ``_``) with ``main(argv) -> int``;
``python -m bench`` runs them all, ``python -m bench.<name> --help`` shows one's options.
"""
