"""The paper's human and model scores, from which it measures across-task difficulty by the
human-model gap, (human - model) / human x 100 (`jdlib.difficulty.human_model_gap`).

- Appendix B: RoBERTa-Large on six GLUE tasks, WinoGrande and CommonsenseQA (the across-task
  difficulty of the true-gem ablation). The human scores are the published human baselines:
  GLUE's from Nangia and Bowman (2019) (CoLA as Matthews correlation, STS-B as Pearson
  correlation, QQP as accuracy; the others accuracy), WinoGrande's from Sakaguchi et al.
  (2020), CommonsenseQA's from Talmor et al. (2019), who report 88.9 (the paper prints 89.0).
  The paper does not say where its RoBERTa-Large scores come from; they are not the dev-set
  scores of RoBERTa's release (fairseq's README: SST-2 96.4, CoLA 68.0, QQP 92.2, STS-B 92.4,
  QNLI 94.7, RTE 86.6).
- Table 3: Vicuna-13B (zero-shot) on PIQA, HellaSwag and OpenBookQA (Setting 5); the human
  scores are those reported with each data set: Bisk et al. (2020), Zellers et al. (2019),
  Mihaylov et al. (2018).

The numbers are copied from the paper (Yin et al., ICML 2024, arXiv 2310.02277) as printed.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..difficulty import human_model_gap


@dataclass(frozen=True)
class PaperScores:
    """A task's human and model scores (0-100) as the paper prints them; `metric` is what both measure."""

    human: float
    model: float
    metric: str = "accuracy"

    @property
    def gap(self) -> float:
        """The human-model gap, unrounded (the paper prints it to two decimals)."""
        return human_model_gap(self.human, self.model)


APPENDIX_B_MODEL = "roberta-large"
APPENDIX_B = {
    "glue/sst2": PaperScores(97.8, 96.2),
    "glue/cola": PaperScores(66.4, 64.9, "matthews_correlation"),
    "glue/qqp": PaperScores(80.4, 91.8),
    "glue/stsb": PaperScores(92.7, 92.2, "pearson"),
    "glue/qnli": PaperScores(91.2, 94.4),
    "glue/rte": PaperScores(93.6, 84.3),
    "winogrande": PaperScores(94.0, 78.1),
    "commonsense_qa": PaperScores(89.0, 72.1),
}

TABLE_3_MODEL = "lmsys/vicuna-13b-v1.3"
TABLE_3 = {
    "piqa": PaperScores(95.0, 78.35),
    "hellaswag": PaperScores(95.6, 59.68),
    "openbookqa": PaperScores(92.0, 36.40),
}

# The human rater score that Setting 5 and the true gem compare with the accuracy they measure:
# only tasks whose human score is an accuracy, so CoLA (Matthews correlation) and STS-B (a
# regression scored by Pearson correlation) stay out until jdlib measures those metrics.
HUMAN = {task: {"average": s.human} for table in (APPENDIX_B, TABLE_3) for task, s in table.items()
         if s.metric == "accuracy"}


def paper_gaps(table: dict[str, PaperScores]) -> dict[str, float]:
    """Each task's human-model gap, computed from the scores of one of the paper's tables."""
    return {task: scores.gap for task, scores in table.items()}
