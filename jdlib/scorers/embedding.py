"""Score with the pre-trained sentence embedding itself: no task head, no fine-tuning.

An input and each of its options are embedded (mean pooling over the tokens, the sentence
embedding convention of all-MiniLM-L6-v2, then L2 normalisation) and the option with the
highest cosine similarity to the input is the prediction. For k-shot classification, the k
demonstrations of each class are embedded and averaged into a class prototype that replaces
the class's label text; with k = 0 the input is scored against the label texts themselves.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ..models import LoadedModel


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The mean of the token states over the real (unpadded) tokens of each row."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


class Embedder:
    """Normalised sentence embeddings of texts, each distinct text embedded once.

    The memo belongs to the weights the model holds while it is filled: make a new Embedder
    (or call `clear`) after the weights change. Texts are embedded in batches padded to their
    longest item, sorted by length so that a batch holds texts of similar length.
    """

    def __init__(self, loaded: LoadedModel, batch_size: int = 64, max_length: int = 128):
        self.loaded = loaded
        self.batch_size = batch_size
        self.max_length = max_length
        self.memo: dict[str, torch.Tensor] = {}
        self.forward_texts = 0  # how many texts went through the model (for tests and benchmarks)

    def clear(self) -> None:
        self.memo.clear()

    @torch.no_grad()
    def _embed(self, texts: list[str]) -> None:
        model, tok = self.loaded.model, self.loaded.tokenizer
        model.eval()
        device = next(model.parameters()).device
        lengths = [len(ids) for ids in tok(texts, truncation=True, max_length=self.max_length)["input_ids"]]
        order = sorted(range(len(texts)), key=lambda i: -lengths[i])
        for start in range(0, len(order), self.batch_size):
            batch = [texts[i] for i in order[start:start + self.batch_size]]
            enc = tok(batch, padding="longest", truncation=True, max_length=self.max_length, return_tensors="pt")
            enc = {k: v.to(device) for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
            out = model(**enc)
            hidden = out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]
            vectors = F.normalize(mean_pool(hidden.float(), enc["attention_mask"]), dim=-1).cpu()
            self.memo.update(zip(batch, vectors))
            self.forward_texts += len(batch)

    def __call__(self, texts: Sequence[str]) -> torch.Tensor:
        """The embeddings of `texts` (n x d), rows in the order given."""
        missing = list(dict.fromkeys(t for t in texts if t not in self.memo))
        if missing:
            self._embed(missing)
        if not texts:
            return torch.empty(0, 0)
        return torch.stack([self.memo[t] for t in texts])


def choose(queries: torch.Tensor, options: Sequence[torch.Tensor] | torch.Tensor) -> list[int]:
    """Per query, the index of the option with the highest cosine similarity.

    `queries` is n x d; `options` is either one k x d tensor shared by every query (class
    labels or prototypes) or a list of n tensors, one k_i x d tensor per query.
    """
    if isinstance(options, torch.Tensor):
        return (queries @ options.T).argmax(-1).tolist()
    return [int((opts @ q).argmax()) for q, opts in zip(queries, options)]


def choose_among(embedder: Embedder, queries: Sequence[str], options: Sequence[Sequence[str]]) -> list[int]:
    """Embed every query and every distinct option text once, then choose per query."""
    distinct = list(dict.fromkeys(o for opts in options for o in opts))
    table = embedder(distinct)
    index = {text: i for i, text in enumerate(distinct)}
    return choose(embedder(list(queries)), [table[[index[o] for o in opts]] for opts in options])


def class_prototypes(embedder: Embedder, labels: Sequence[str], demonstrations: Sequence[Sequence[str]]) -> torch.Tensor:
    """One normalised vector per class: the mean embedding of its demonstrations, or, for a
    class without any (k = 0), the embedding of its label text."""
    if len(labels) != len(demonstrations):
        raise ValueError(f"{len(labels)} labels but {len(demonstrations)} lists of demonstrations")
    embedder([t for label, demos in zip(labels, demonstrations) for t in (demos or [label])])  # one batched pass
    rows = [embedder(list(demos)).mean(0) if demos else embedder([label])[0] for label, demos in zip(labels, demonstrations)]
    return F.normalize(torch.stack(rows), dim=-1)
