"""Adapters that run other projects' reference code in place, from a checkout outside this repository, for
side-by-side benchmarks (peer_cpu.py). None of their code is copied here."""
