"""Scoring a pre-trained model without fine-tuning (Settings 2, 3, 4 and 6).

- `embedding`: an encoder's own sentence embedding (cosine similarity, class prototypes).
- `loglik`: a decoder's log-likelihood of each option (lm-evaluation-harness conventions).
- `generation`: a decoder's greedy answer, scored by exact match, lenient containment and F1.

Each scorer is bound to the weights the model holds when it is made and remembers what it
has computed, so a sweep asks for each distinct text once per compressed model.
"""
from .embedding import Embedder, choose, class_prototypes
from .generation import Generator, answer_metrics, answer_outcomes, exact_match, f1_score, lenient_match, normalize_answer
from .loglik import LoglikScorer

__all__ = ["Embedder", "choose", "class_prototypes", "LoglikScorer", "Generator", "answer_metrics", "answer_outcomes",
           "exact_match", "f1_score", "lenient_match", "normalize_answer"]
