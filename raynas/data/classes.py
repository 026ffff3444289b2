"""How many classes a data set has, from its config alone: for plots' chance level (1 / classes).

Nothing here loads data or imports torch: the named data sets have fixed counts, ``synthetic`` takes its
count from the config, and ``imagefolder`` counts the class subfolders under its root (``train/`` when
present), as its builder does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Optional

FIXED_CLASSES = {"digits": 10, "cifar10": 10, "cifar100": 100, "imagenet16": 120}
"""Data set name -> classes, for the data sets whose count is fixed."""


def class_count(data: Optional[Mapping[str, Any]]) -> Optional[int]:
    """The number of classes of the data a config's ``data`` mapping names; None when it cannot be told
    (no mapping, an unknown data set, an imagefolder root that is not there)."""
    if not isinstance(data, Mapping):
        return None
    name = data.get("name", "digits")
    if name in FIXED_CLASSES:
        return FIXED_CLASSES[name]
    if name == "synthetic":
        count = data.get("num_classes", 10)
        return count if isinstance(count, int) and count > 0 else None
    if name == "imagefolder" and isinstance(data.get("root"), str):
        root = Path(data["root"]).expanduser()
        folder = root / "train" if (root / "train").is_dir() else root
        try:
            count = sum(1 for entry in folder.iterdir() if entry.is_dir())
        except OSError:
            return None
        return count or None
    return None
