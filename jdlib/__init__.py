"""jdlib: does pruning small pre-trained weights impair difficult downstream tasks first?

The public API keeps the paper's vocabulary (dense and sparse transfer, N:M, normalised drop).
"""
from . import compress, config, plots, report, stats
from .data import Task, load_task
from .evaluate import evaluate
from .models import load_model
from .sweep import sweep
from .train import finetune

__all__ = ["compress", "config", "evaluate", "finetune", "load_model", "load_task", "plots", "report", "stats",
           "sweep", "Task"]
