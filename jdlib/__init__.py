"""jdlib: does pruning small pre-trained weights impair difficult downstream tasks first?

The public API keeps the paper's vocabulary (dense and sparse transfer, N:M, normalised drop).
"""
from . import analysis, compress, config, plots
from .analysis import stats
from .data import Task, load_task
from .evaluate import evaluate
from .models import load_model
from .settings import load as load_config
from .sweep import sweep
from .train import finetune

__all__ = ["analysis", "compress", "config", "evaluate", "finetune", "load_config", "load_model", "load_task", "plots", "stats",
           "sweep", "Task"]
