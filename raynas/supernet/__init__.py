"""Weight-sharing supernets for differentiable architecture search (Liu et al., DARTS, ICLR 2019).

Build one through ``raynas.spaces.get_space(name).build_supernet(...)``; this package holds the classes.
Importing it imports torch.
"""

from raynas.supernet.base import MixedOp, Supernet, discrete_weights
from raynas.supernet.darts import DartsSupernet
from raynas.supernet.nb201 import NB201Supernet

__all__ = ["DartsSupernet", "MixedOp", "NB201Supernet", "Supernet", "discrete_weights"]
