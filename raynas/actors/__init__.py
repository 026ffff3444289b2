"""Our Ray actors; this package is the only place that calls ``.remote()`` on them.

- :mod:`raynas.actors.shard_group`: :class:`ShardGroup`, one search run data-parallel over
  :class:`raynas.actors.shard.ShardActor` processes (a Tune trial drives it like a :class:`raynas.search.Search`).
- :mod:`raynas.actors.teacher`: :class:`TeacherGroup`, SD-DARTS teacher snapshots held in
  :class:`TeacherActor` processes (``objectives.sd.placement: actor``), answering with the vote sums of
  :mod:`raynas.actors.teacher_pool`.
- :mod:`raynas.actors.calls`: gathering results from a group of actors and stopping them.

The package itself imports nothing: the shard group sits above the search loop, the teachers below it (the
search's objectives use them), so each caller imports the module it needs and imports only go down.
"""
