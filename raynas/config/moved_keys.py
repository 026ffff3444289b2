"""Config keys that moved to a subsection, so configs written before the move still load.

DARTS-PT's and random sampling's settings were flat keys of ``selection`` (``selection.proj_intv``,
``selection.samples``) until each selection got its own subsection, as each objective term has one
(``selection.perturbation.proj_intv``, ``selection.sampling.samples``). Every stored experiment's
``config.yaml`` and every trial's overrides name the old keys, and resuming, reporting or training from such an
experiment must read them as they are, so the old names stay accepted wherever a dotted key or a section's key
is read: in a YAML mapping, ``--set``, ``tune.grid``, ``tune.params`` and ``tune.variants``. Configs written
now (``config_to_dict``) use the new places only. Pure data: nothing here imports the schema.
"""

from __future__ import annotations

_PERTURBATION = ("criterion", "proj_intv", "edge_order", "topology", "finetune_lr_factor", "finetune_lr_schedule",
                 "topology_drop")

#: old dotted key -> where the setting is now
MOVED_KEYS: dict[str, str] = {
    **{f"selection.{key}": f"selection.perturbation.{key}" for key in _PERTURBATION},
    "selection.samples": "selection.sampling.samples",
}


def current_key(dotted: str) -> str:
    """``dotted`` with a moved key's new place (``selection.proj_intv`` -> ``selection.perturbation.proj_intv``);
    any other key, including one already in its new place, unchanged."""
    for old, new in MOVED_KEYS.items():
        if dotted == old or dotted.startswith(old + "."):
            return new + dotted[len(old):]
    return dotted


def same_setting(key: str, other: str) -> bool:
    """Whether the dotted keys set the same field, old or new names alike (equal, or one a section of the other)."""
    key, other = current_key(key), current_key(other)
    return key == other or key.startswith(other + ".") or other.startswith(key + ".")
