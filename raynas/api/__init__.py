"""The Python API: what ``import raynas`` offers (``raynas.search``, ``raynas.train``, ``raynas.load`` and the
handles they return). :mod:`raynas.api.run` runs the commands' own code paths; :mod:`raynas.api.handles`
reads their folders. Importing it imports neither torch nor Ray.
"""

from raynas.api.handles import Evaluation, Experiment, Trial, load
from raynas.api.run import search, train

__all__ = ["Evaluation", "Experiment", "Trial", "load", "search", "train"]
