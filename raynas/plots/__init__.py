"""Pictures of search results (matplotlib, PNG and SVG): cell diagrams, architecture weights, learning curves,
ground truth over epochs and population comparisons.

``plot_experiment`` writes all of them for an experiment folder (``raynas plot DIR``); the ``draw_*`` /
``plot_*`` functions return one :class:`matplotlib.figure.Figure` each and ``save_figure`` writes it.
Figures live on their own Agg canvas: no display and no pyplot state are used. Importing this package
imports neither torch nor ray.
"""

from __future__ import annotations

from raynas.plots.alphas import alphas_size, grid_shape, plot_alphas
from raynas.plots.cells import DARTS_CELL_SIZE, NB201_CELL_SIZE, cell_edges, draw_cell
from raynas.plots.curves import CURVES_SIZE, plot_curves
from raynas.plots.experiment import plot_experiment
from raynas.plots.ground_truth import GROUND_TRUTH_SIZE, has_ground_truth, plot_ground_truth
from raynas.plots.population import (POPULATION_SIZE, SPREAD_KEY, PopulationFigure, is_seed_key, plot_population,
                                     plot_spread, population_figures, varying_keys)
from raynas.plots.style import DPI, FORMATS, OP_COLORS, op_color, save_figure

__all__ = ["CURVES_SIZE", "DARTS_CELL_SIZE", "DPI", "FORMATS", "GROUND_TRUTH_SIZE", "NB201_CELL_SIZE", "OP_COLORS",
           "POPULATION_SIZE", "SPREAD_KEY", "PopulationFigure", "alphas_size", "cell_edges", "draw_cell", "grid_shape",
           "has_ground_truth", "is_seed_key", "op_color", "plot_alphas", "plot_curves", "plot_experiment",
           "plot_ground_truth", "plot_population", "plot_spread", "population_figures", "save_figure", "varying_keys"]
