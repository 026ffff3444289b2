"""Ray Tune integration: the search trainable, progress output and config -> Tune objects.

Importing this package does not import Ray; the submodules do.
"""
