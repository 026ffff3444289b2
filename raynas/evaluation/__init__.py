"""The evaluation stage (``raynas train``): derived architectures trained from scratch as a Ray Tune population.

:func:`plan_evaluation` turns sources (genotype texts, genotype files, search experiment folders) and seeds
into a checked :class:`EvaluationPlan`; :func:`run_evaluation` trains every (architecture, seed) as a Tune
trial with checkpoints, writing the evaluations table; :func:`resume_evaluation` continues an interrupted
run; :func:`load_trained_network` rebuilds a trained network from its checkpoint. Importing this package
imports neither torch nor Ray.
"""

from raynas.evaluation.plan import (Architecture, EvaluationPlan, PreparedEvaluation, plan_evaluation, read_plan,
                                    write_plan)
from raynas.evaluation.run import EvaluationOutcome, evaluation_summary, resume_evaluation, run_evaluation
from raynas.evaluation.trained import TrainedNetwork, load_trained_network

__all__ = ["Architecture", "EvaluationOutcome", "EvaluationPlan", "PreparedEvaluation", "evaluation_summary",
           "TrainedNetwork", "load_trained_network", "plan_evaluation", "read_plan", "resume_evaluation",
           "run_evaluation", "write_plan"]
