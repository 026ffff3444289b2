"""Where ImageNet16's official files lie and what is missing: light (no torch), for config checks too.

The 16x16 downsampled ImageNet in pickle format (image-net.org) is ``train_data_batch_1`` ..
``train_data_batch_10`` and ``val_data``, all in one folder (``data.root``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

TRAIN_FILES = tuple(f"train_data_batch_{i}" for i in range(1, 11))
TEST_FILE = "val_data"
ALL_FILES = (*TRAIN_FILES, TEST_FILE)

#: the files, as messages name them
EXPECTED_FILES = f"{TRAIN_FILES[0]} .. {TRAIN_FILES[-1]} and {TEST_FILE}"
WHERE_FROM = "the 16x16 downsampled ImageNet in pickle format from image-net.org, unzipped into one folder"


def missing_files(root: Path) -> list[str]:
    """The names of the official files that are not regular files in ``root``, in order."""
    return [name for name in ALL_FILES if not (root / name).is_file()]


def layout_problem(root: Path) -> Optional[str]:
    """What is wrong with ``root`` as the folder of the files (it is not a folder, files are missing), or None."""
    if not root.is_dir():
        return f"not a folder; imagenet16 reads {EXPECTED_FILES} there ({WHERE_FROM})"
    missing = missing_files(root)
    if len(missing) == len(ALL_FILES):
        return f"no ImageNet16 files there; expected {EXPECTED_FILES} ({WHERE_FROM})"
    if missing:
        return f"ImageNet16 files missing there: {', '.join(missing)}; expected {EXPECTED_FILES} ({WHERE_FROM})"
    return None
