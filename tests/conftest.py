"""Shared fixtures: tiny randomly initialised Llama / Qwen2 / GPT-2 backbones and a byte-level tokenizer, all
built in code so the unit tests are fast and offline."""

import os
from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import GPT2Config, LlamaConfig, PreTrainedTokenizerFast, Qwen2Config

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
# `--dtype auto` is bfloat16 on a CPU with AVX512-BF16 or AMX: the suite pins float32 so its results (exact
# comparisons with transformers, one process against two) do not depend on the machine; tests of the rule unset it.
os.environ.setdefault("DHRD_DTYPE", "float32")
if os.environ.get("PYTEST_XDIST_WORKER"):  # `make test` runs two workers side by side: one thread each (and their
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # `dhrd` subprocesses), so two cores are not oversubscribed
    torch.set_num_threads(1)
else:
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("DHRD_DATA_DIR", PROJECT_ROOT.parent / "shared" / "data"))
ARCHITECTURES = ("llama", "qwen2", "gpt2")
EOS = "<|endoftext|>"


def make_tokenizer() -> PreTrainedTokenizerFast:
    """Byte-level tokenizer (every text encodes) whose pad token is its eos, like SmolLM2's."""
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {EOS: 0, **{char: index + 1 for index, char in enumerate(sorted(alphabet))}}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=backend, eos_token=EOS, pad_token=EOS)


TOKENIZER_SIZE = len(make_tokenizer())


def tiny_text_config(architecture: str, vocab_size: int = TOKENIZER_SIZE + 3):
    common = {"vocab_size": vocab_size, "eos_token_id": 0, "pad_token_id": 0, "bos_token_id": 0}
    if architecture == "llama":
        return LlamaConfig(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            tie_word_embeddings=True,
            **common,
        )
    if architecture == "qwen2":
        return Qwen2Config(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            tie_word_embeddings=False,
            **common,
        )
    if architecture == "gpt2":
        return GPT2Config(n_embd=32, n_layer=2, n_head=4, n_positions=256, **common)
    raise ValueError(architecture)


def tiny_dhrd(architecture: str = "llama", num_labels: int = 3, seed: int = 0, vocab_size: int | None = None, **kw):
    from modeling_dhrd import DHRDConfig, DHRDForSequenceClassification

    torch.manual_seed(seed)
    text_config = tiny_text_config(architecture, **({"vocab_size": vocab_size} if vocab_size else {}))
    config = DHRDConfig(text_config=text_config, num_labels=num_labels, **kw)
    return DHRDForSequenceClassification(config).eval()


@pytest.fixture
def tokenizer() -> PreTrainedTokenizerFast:
    return make_tokenizer()


def _embedded(name: str) -> Path:
    from trainer.embedded import EmbeddedModelUnavailable, embedded_backbone_path

    try:
        return embedded_backbone_path(name=name)
    except EmbeddedModelUnavailable as error:
        pytest.skip(f"embedded {name} unavailable: {error}")


@pytest.fixture(scope="session")
def smollm2_path() -> Path:
    return _embedded("smollm2-135m-instruct")


@pytest.fixture(scope="session")
def gemma_path() -> Path:
    """Gemma-3-270M (base): a second real architecture, 262k vocabulary, pad != eos; ~80 s to build once."""
    return _embedded("gemma-3-270m")


@pytest.fixture
def tiny_backbone_dir(tmp_path) -> Path:
    """A local folder holding a tiny random Qwen2 causal LM and the byte-level tokenizer (like a Hub checkpoint)."""
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(tiny_text_config("qwen2")).save_pretrained(tmp_path / "backbone")
    make_tokenizer().save_pretrained(tmp_path / "backbone")
    return tmp_path / "backbone"


def write_rows(path: Path, n: int, labels: tuple[str, ...], seed: int = 0) -> Path:
    """`n` jsonl rows of random words with `text`, a string `label` and a `rationale`, like a user's file."""
    import json
    import random

    words = "sun rain wind snow cloud storm fog hail frost heat".split()
    rng = random.Random(seed)
    with open(path, "w") as handle:
        for _ in range(n):
            row = {
                "text": " ".join(rng.choices(words, k=rng.randint(2, 8))),
                "label": rng.choice(labels),
                "rationale": " ".join(rng.choices(words, k=rng.randint(1, 10))),
            }
            handle.write(json.dumps(row) + "\n")
    return path


def requires_data(*relative: str) -> Path:
    path = DATA_DIR.joinpath(*relative)
    if not path.exists():
        pytest.skip(f"{path} is absent (set DHRD_DATA_DIR)")
    return path
