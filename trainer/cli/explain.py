"""`dhrd explain`: rationales on demand, decoded with the trained reasoning head for the rows asked for.

DHRD's classifier answers without reasoning; its reasoning head learned the teacher's rationales and can still
write one for a row, at CoT cost, only where someone wants to read it: `--least_confident N` picks the N rows the
classifier is least sure of (lowest top probability), else every row (or the first `--limit`). A DHRD checkpoint
decodes with its own LM head; a native export decodes too when its backbone ties the LM head to the input
embeddings (SmolLM2, Gemma, Llama-3.2-1B...): those embeddings *are* the trained reasoning head. Each output line
holds the row id, the classifier's label and confidence, the rationale, the label the rationale states after the
answer marker, and whether the two agree. The id is named as in `dhrd predict`'s output (the data's id column, else
`idx`), so the two join on it.
"""

import heapq
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from modeling_dhrd.atomic import atomic_file

from ..data.description import DatasetArguments
from ..device import DeviceArguments
from ..inference.classify import classifier_data, classify_batches, load_classifier, max_input_length
from ..inference.reasoning_decode import decode_with_reasoning_head, reasoning_head
from ..jobs.ranks import launched
from ..kinds.base import ProblemKind
from .checks import model_argument, require_positive

logger = logging.getLogger(__name__)


@dataclass
class ExplainArguments:
    model: str = model_argument("A DHRD checkpoint, or a native export of a backbone with tied embeddings.")
    output_file: str = field(metadata={"help": "Where the explanations go (.jsonl), one line per explained row."})
    split: str = field(default="test", metadata={"help": "Split to explain: train, validation or test."})
    least_confident: int | None = field(
        default=None,
        metadata={"help": "Explain the N rows the classifier is least sure of (default: every row read)."},
    )
    limit: int | None = field(default=None, metadata={"help": "Only the first N rows of the split."})
    batch_size: int = field(default=8, metadata={"help": "Rows decoded together."})
    max_new_tokens: int = field(default=128, metadata={"help": "Token cap per rationale (with the answer)."})
    max_input_length: int | None = field(
        default=None, metadata={"help": "Input truncation. Default: what the model was trained with."}
    )

    def __post_init__(self) -> None:
        require_positive(self, "least_confident", "limit", "batch_size", "max_new_tokens", "max_input_length")
        if Path(self.output_file).suffix.lower() != ".jsonl":
            raise ValueError(f"--output_file {self.output_file}: explanations are written as .jsonl.")


def run_explain(args: ExplainArguments, data_args: DatasetArguments, device: DeviceArguments | None = None) -> str:
    """Under `torchrun` / `accelerate launch` each rank classifies every N-th row, the ranks agree on the least
    confident rows of the whole split, each decodes every N-th of those, and rank 0 writes them in order."""
    ranks = launched()
    device = device or DeviceArguments()  # a launched rank's own GPU (`LOCAL_RANK`)
    saved, data = classifier_data(args.model, data_args)
    data.kind.require_one_label("dhrd explain")
    rows = data.rows(args.split, limit=args.limit, labelled=False)
    id_column = data.id_column(data.require(args.split)) or "idx"  # the id named as `dhrd predict` names it
    model, tokenizer = load_classifier(args.model, device.torch_device, device.torch_dtype, saved.contract)
    shell, reason_marker, answer_marker = reasoning_head(model, args.model)  # refused before any work
    logger.info("Explaining on %s", device.describe())
    length = max_input_length(args.max_input_length, tokenizer)
    names = data.label_names
    start = time.perf_counter()
    count, mine = args.least_confident or len(rows), ranks.mine(range(len(rows)))
    texts = rows.select(mine)["text"] if ranks.several else rows["text"]
    found = _least_confident(model, tokenizer, texts, length, count, data.kind)  # by position among this rank's rows
    chosen = _fewest(ranks.all_gather({mine[p]: choice for p, choice in found.items()}), count)
    classified = time.perf_counter() - start
    positions = sorted(chosen)
    share = [positions[i] for i in ranks.mine(range(len(positions)))]  # this rank decodes every N-th chosen row
    start = time.perf_counter()
    decoded = decode_with_reasoning_head(
        shell, tokenizer, [rows["text"][p] for p in share], names, reason_marker, answer_marker,
        args.batch_size, args.max_new_tokens, length,
    )  # fmt: skip
    per_row = zip(decoded.predictions, decoded.texts, decoded.generated_tokens)
    gathered = ranks.gather_rows(list(per_row), len(positions))
    if gathered is None:
        return f"rank {ranks.rank} of {ranks.world_size}: its rows are explained; rank 0 writes {args.output_file}"
    stated_labels, rationales, generated = zip(*gathered) if gathered else ((), (), ())
    seconds = time.perf_counter() - start
    agree = 0
    with atomic_file(Path(args.output_file), "w") as handle:
        for position, stated, text in zip(positions, stated_labels, rationales):
            label, confidence = chosen[position]
            agree += stated == label
            record = {
                id_column: rows["idx"][position],
                "label": names[label],
                "confidence": round(confidence, 6),
                "rationale": text.split(answer_marker, 1)[0].strip(),
                "stated_label": names[stated] if stated >= 0 else None,
                "agrees": stated == label,
            }
            handle.write(json.dumps(record) + "\n")
    explained = len(positions)
    return (
        f"explained {explained} of {len(rows)} rows ({'least confident' if args.least_confident else 'all'}): the "
        f"rationale states the classifier's label in {agree}/{explained}; {seconds / max(1, explained):.3f} s a row "
        f"to explain, {classified / max(1, len(rows)):.4f} s a row to classify; "
        f"{sum(generated) / max(1, explained):.0f} tokens a rationale\nwrote {args.output_file}"
    )


def _fewest(parts: list[dict[int, tuple[int, float]]], count: int) -> dict[int, tuple[int, float]]:
    """The `count` least confident rows of the ranks' own choices (`_least_confident` of each rank's rows, keyed by
    the rows' positions in the split), ordered as one process orders them."""
    items = [(-confidence, position, label) for part in parts for position, (label, confidence) in part.items()]
    return {position: (label, -negative) for negative, position, label in heapq.nlargest(count, items)}


def _least_confident(
    model, tokenizer, texts, length: int | None, count: int, kind: ProblemKind
) -> dict[int, tuple[int, float]]:
    """`{position: (label, its probability)}` of the `count` rows whose decided label (the kind's decision: the
    argmax, or the median of ordered classes, as `dhrd predict` decides) is least probable, kept in a bounded heap
    while the rows are classified (memory follows `count`, not the split)."""
    heap: list[tuple[float, int, int]] = []  # (-probability, position, label): the most confident on top
    for positions, logits in classify_batches(model, tokenizer, texts, length, desc="Classifying"):
        labels = torch.from_numpy(kind.decide(logits.float().numpy())).long()
        top = torch.softmax(logits.float(), dim=-1).gather(-1, labels[:, None])[:, 0]
        for position, probability, label in zip(positions, top.tolist(), labels.tolist()):
            item = (-probability, position, label)
            if len(heap) < count:
                heapq.heappush(heap, item)
            elif item > heap[0]:
                heapq.heapreplace(heap, item)
    return {position: (label, -negative) for negative, position, label in heap}
