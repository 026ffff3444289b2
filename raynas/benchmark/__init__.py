"""Ground truth on the embedded data: NB201 cells trained from scratch under one calibrated protocol.

:mod:`raynas.benchmark.cells` reduces NB201's 15,625 arch strings to its unique cells (isomorphism).
Imports neither torch nor Ray.
"""
