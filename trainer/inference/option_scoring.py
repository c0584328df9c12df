"""Scoring the options of multiple-choice rows with an option scorer: a `DHRDForMultipleChoice` checkpoint or its
native one-output export. Each option is one classifier input `[context, option]` (`options.option_input`), batched
by the same token budget as classification (`classify.classify_batches`); a row's options then compete through a
softmax, as in training. Rows are scored in chunks, so a caller can store finished rows as it goes (`dhrd predict`
resumes) and memory stays bounded on millions of rows."""

from collections.abc import Iterator, Sequence

import torch

from ..data.options import left_truncating, option_input
from ..jobs.progress import progress_bar
from .classify import classify_batches


def score_options(
    model,
    tokenizer,
    contexts: Sequence[str],
    option_lists: Sequence[Sequence[str]],
    max_input_length: int | None,
    max_batch_tokens: int = 16384,
    max_batch_size: int = 256,
    chunk_rows: int = 4096,
    progress: bool = True,
    desc: str = "Scoring options",
    padding_free: bool = False,
) -> Iterator[tuple[list[int], list[torch.Tensor]]]:
    """`(row positions, each row's option scores)` per chunk of rows, in row order. Long inputs lose the start of the
    context, never the option (as in training)."""
    tokenizer = left_truncating(tokenizer)
    with progress_bar(len(contexts), desc, unit="row", disable=not progress) as bar:
        for start in range(0, len(contexts), chunk_rows):
            rows = list(range(start, min(start + chunk_rows, len(contexts))))
            texts = [option_input(contexts[row], option) for row in rows for option in option_lists[row]]
            scores = torch.empty(len(texts))
            for positions, logits in classify_batches(
                model,
                tokenizer,
                texts,
                max_input_length,
                max_batch_tokens,
                max_batch_size,
                progress=False,
                padding_free=padding_free,
            ):
                scores[positions] = logits[:, 0]
            bar.update(len(rows))
            yield rows, list(scores.split([len(option_lists[row]) for row in rows]))
