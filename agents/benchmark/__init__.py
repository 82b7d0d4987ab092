"""The benchmark suite that regenerates BENCHMARKS.md (``scripts/benchmark.py``).

``suite`` runs the sections and records machine facts, ``page`` renders the
page and its figures from the results JSON, ``latency`` and ``dagger_seeds``
are the sections written for the suite, and ``ablations`` runs the training
ablations.
"""
