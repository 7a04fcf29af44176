"""jdlib: does pruning small pre-trained weights impair difficult downstream tasks first?

The public API keeps the paper's vocabulary (dense and sparse transfer, N:M, normalised drop).
"""
import os
import warnings

from tqdm import TqdmWarning

# huggingface_hub imports tqdm.auto, which in a notebook kernel without ipywidgets falls back to the
# text bar with this warning on every chapter's first cell. The text bar is what the book wants (jdlib
# itself uses plain tqdm): the warning is dropped, not the bar, and no widget package is needed.
warnings.filterwarnings("ignore", message="IProgress not found", category=TqdmWarning)

# cuBLAS reads this before its first call: with it, deterministic algorithms cover matrix products
# on CUDA (jdlib.train.deterministic), so the same key gives the same metrics on a GPU.
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

from . import analysis, compress, config, plots  # noqa: E402
from .analysis import stats  # noqa: E402
from .data import Task, load_task  # noqa: E402
from .evaluate import evaluate  # noqa: E402
from .models import load_model  # noqa: E402
from .settings import load as load_config  # noqa: E402
from .sweep import sweep  # noqa: E402
from .train import finetune  # noqa: E402

__all__ = ["analysis", "compress", "config", "evaluate", "finetune", "load_config", "load_model", "load_task", "plots", "stats",
           "sweep", "Task"]
