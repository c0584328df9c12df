"""Export drops the reasoning head: native checkpoints for last-token/linear, remote code otherwise."""

import json
import subprocess
import sys
import textwrap

import pytest
import torch
from conftest import ARCHITECTURES, TOKENIZER_SIZE, tiny_dhrd
from peft import LoraConfig, get_peft_model
from safetensors import safe_open
from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

from modeling_dhrd import ExportVerificationError, export_classifier
from modeling_dhrd.export import DHRD_PAD_TOKEN

TEXTS = ["a short one", "a much longer input sentence with many more bytes in it", "mid length text"]


def _tensor_names(folder) -> set[str]:
    names = set()
    for file in folder.glob("*.safetensors"):
        with safe_open(file, "pt") as handle:
            names |= set(handle.keys())
    return names


def _dhrd_logits(model, tokenizer, texts):
    tokenizer.padding_side = "right"
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        return model(**batch).logits


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_native_export_loads_without_remote_code_and_in_pipeline(tmp_path, tokenizer, architecture):
    model = tiny_dhrd(architecture, num_labels=3, id2label={0: "yes", 1: "no", 2: "maybe"})
    result = export_classifier(model, tmp_path / "out", tokenizer)
    assert result.native and result.max_abs_diff <= 1e-4
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    native_name = {
        "llama": "LlamaForSequenceClassification",
        "qwen2": "Qwen2ForSequenceClassification",
        "gpt2": "GPT2ForSequenceClassification",
    }[architecture]
    assert config["architectures"] == [native_name] and "auto_map" not in config
    assert config["id2label"] == {"0": "yes", "1": "no", "2": "maybe"}
    assert not list((tmp_path / "out").glob("*.py")) and not list((tmp_path / "out").glob("*.bin"))

    reloaded = AutoModelForSequenceClassification.from_pretrained(tmp_path / "out")
    assert type(reloaded).__name__ == native_name
    exported_tokenizer = AutoTokenizer.from_pretrained(tmp_path / "out")
    # pad == eos in the source tokenizer: the export must pick a pad that cannot end an input.
    assert reloaded.config.pad_token_id != tokenizer.eos_token_id
    assert exported_tokenizer.pad_token_id == reloaded.config.pad_token_id
    expected = _dhrd_logits(model, tokenizer, TEXTS)
    batch = exported_tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**batch).logits, expected, atol=1e-4, rtol=0)

    classifier = pipeline("text-classification", model=str(tmp_path / "out"), top_k=None)
    scores = classifier(TEXTS, batch_size=3, function_to_apply="none")
    for row, logits in zip(scores, expected):
        by_label = {item["label"]: item["score"] for item in row}
        torch.testing.assert_close(
            torch.tensor([by_label["yes"], by_label["no"], by_label["maybe"]]), logits, atol=1e-4, rtol=0
        )


def test_untied_export_is_smaller_by_the_lm_head(tmp_path, tokenizer):
    model = tiny_dhrd("qwen2")
    assert not model.config.tie_word_embeddings
    model.save_pretrained(tmp_path / "dhrd")
    export_classifier(model, tmp_path / "out", tokenizer)
    assert "lm_head.weight" in _tensor_names(tmp_path / "dhrd")
    assert not any(name.startswith("lm_head") for name in _tensor_names(tmp_path / "out"))
    size = lambda folder: sum(f.stat().st_size for f in folder.glob("*.safetensors"))  # noqa: E731
    lm_head_bytes = model.lm_head.weight.numel() * 4
    assert size(tmp_path / "dhrd") - size(tmp_path / "out") == pytest.approx(lm_head_bytes, rel=0.02)


def test_pad_token_gets_its_own_embedding_row_when_the_vocabulary_is_full(tmp_path, tokenizer):
    model = tiny_dhrd("llama", vocab_size=TOKENIZER_SIZE)  # no spare rows past the tokenizer
    export_classifier(model, tmp_path / "out", tokenizer)
    reloaded = AutoModelForSequenceClassification.from_pretrained(tmp_path / "out")
    exported_tokenizer = AutoTokenizer.from_pretrained(tmp_path / "out")
    assert exported_tokenizer.pad_token == DHRD_PAD_TOKEN
    assert reloaded.config.pad_token_id == TOKENIZER_SIZE
    assert reloaded.get_input_embeddings().num_embeddings == TOKENIZER_SIZE + 1


def test_lora_merged_export_reproduces_the_peft_model(tmp_path, tokenizer):
    model = tiny_dhrd("llama").train()
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], modules_to_save=["score"])
    peft_model = get_peft_model(model, lora)
    with torch.no_grad():  # make the adapters non-trivial
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)
    peft_model.eval()
    expected = _dhrd_logits(peft_model, tokenizer, TEXTS)
    result = export_classifier(peft_model, tmp_path / "out", tokenizer)
    assert result.native
    assert any("lora" in name for name, _ in peft_model.named_parameters())  # caller's model untouched
    reloaded = AutoModelForSequenceClassification.from_pretrained(tmp_path / "out")
    batch = AutoTokenizer.from_pretrained(tmp_path / "out")(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**batch).logits, expected, atol=1e-4, rtol=0)
    without_adapters = _dhrd_logits(tiny_dhrd("llama"), tokenizer, TEXTS)
    assert (expected - without_adapters).abs().max() > 1e-3  # the adapters really changed the logits


@pytest.mark.parametrize("pooling, head", [("mean", "linear"), ("last", "mlp")])
def test_non_native_settings_export_as_remote_code_without_reasoning_head(tmp_path, tokenizer, pooling, head):
    model = tiny_dhrd("gpt2", pooling=pooling, head=head)
    result = export_classifier(model, tmp_path / "out", tokenizer)
    assert not result.native and result.max_abs_diff <= 1e-4
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config["has_reasoning_head"] is False and config["model_type"] == "dhrd"
    assert "AutoModelForSequenceClassification" in config["auto_map"]
    assert not any(name.startswith("lm_head") for name in _tensor_names(tmp_path / "out"))
    script = f"""
        import sys, torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
        model = AutoModelForSequenceClassification.from_pretrained({str(tmp_path / "out")!r}, trust_remote_code=True)
        tok = AutoTokenizer.from_pretrained({str(tmp_path / "out")!r}, trust_remote_code=True)
        with torch.no_grad():
            print(model(**tok({TEXTS!r}, padding=True, return_tensors="pt")).logits.tolist())
    """
    logits = json.loads(_run_isolated(script, tmp_path).strip().splitlines()[-1])
    torch.testing.assert_close(torch.tensor(logits), _dhrd_logits(model, tokenizer, TEXTS), atol=1e-4, rtol=0)


def test_failed_verification_writes_nothing(tmp_path, tokenizer):
    with pytest.raises(ExportVerificationError, match="nothing was written"):
        export_classifier(tiny_dhrd("llama"), tmp_path / "out", tokenizer, atol=-1.0)
    assert list(tmp_path.iterdir()) == []


def test_existing_folder_is_not_overwritten_by_default(tmp_path, tokenizer):
    (tmp_path / "out").mkdir()
    with pytest.raises(FileExistsError):
        export_classifier(tiny_dhrd("llama"), tmp_path / "out", tokenizer)
    export_classifier(tiny_dhrd("llama"), tmp_path / "out", tokenizer, overwrite=True)
    assert (tmp_path / "out" / "config.json").is_file()


BLOCK_PROJECT = """
import importlib.abc, sys
class _BlockProject(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"modeling_dhrd", "configuration_dhrd", "trainer"}:
            raise ModuleNotFoundError(f"project module {name} is blocked")
sys.meta_path.insert(0, _BlockProject())
try:
    import modeling_dhrd  # noqa: F401
    raise SystemExit("the project is importable")
except ModuleNotFoundError:
    pass
"""


def _run_isolated(script: str, cwd) -> str:
    """Run `script` in a fresh interpreter where this project can be neither imported nor found on `sys.path`."""
    code = BLOCK_PROJECT + textwrap.dedent(script)
    env = {"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "HF_HOME": str(cwd / "hf_home")}
    completed = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed.stdout


def test_saved_dhrd_checkpoint_loads_as_remote_code_in_a_fresh_process(tmp_path, tokenizer):
    model = tiny_dhrd("qwen2", head="mlp")
    model.save_pretrained(tmp_path / "ckpt")
    for code_file in (tmp_path / "ckpt").glob("*.py"):
        imports = {
            line.split()[1].split(".")[0]
            for line in code_file.read_text().splitlines()
            if line.startswith(("import ", "from ")) and not line.startswith("from .")
        }
        # the standard library, and huggingface_hub (the `@strict` config validation): a dependency of transformers
        third_party = imports - set(sys.stdlib_module_names)
        assert third_party <= {"torch", "transformers", "huggingface_hub"}, (code_file.name, imports)
    ids = torch.randint(1, 200, (2, 9), generator=torch.Generator().manual_seed(0))
    script = f"""
        import torch
        from transformers import AutoModelForSequenceClassification
        model = AutoModelForSequenceClassification.from_pretrained({str(tmp_path / "ckpt")!r}, trust_remote_code=True)
        assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
        with torch.no_grad():
            print(model(input_ids=torch.tensor({ids.tolist()})).logits.tolist())
    """
    logits = json.loads(_run_isolated(script, tmp_path).strip().splitlines()[-1])
    with torch.no_grad():
        torch.testing.assert_close(torch.tensor(logits), model(input_ids=ids).logits, atol=1e-6, rtol=0)


def test_a_model_just_trained_with_bf16_mixed_precision_exports_in_the_same_process(tmp_path, tokenizer):
    """transformers' Trainer leaves accelerate's autocast wrapper on the model's forward after bf16 training; the
    export (full precision) is checked against the model's own forward, not the bf16-rounded wrapped one."""
    from datasets import Dataset

    from modeling_dhrd.unwrap import full_precision_forward
    from trainer import DHRDTrainer, DHRDTrainingArguments

    rows = Dataset.from_list(
        [{"text": f"row {i} " * (1 + i % 4), "label": i % 3, "rationale": "so"} for i in range(8)]
    )
    args = DHRDTrainingArguments(
        output_dir=str(tmp_path / "run"),
        max_steps=1,
        per_device_train_batch_size=4,
        report_to=[],
        use_cpu=True,
        bf16=True,
        save_strategy="no",
    )
    trainer = DHRDTrainer(
        model=tiny_dhrd("llama", num_labels=3), args=args, train_dataset=rows, processing_class=tokenizer
    )
    trainer.train()
    model = trainer.model.eval()
    assert "_original_forward" in model.__dict__  # the wrapper is really there: the situation this test is about
    batch = tokenizer(["row 1 row 1", "row 7"], padding=True, return_tensors="pt")
    with torch.no_grad():
        wrapped, own = model(**batch).logits, full_precision_forward(model)(**batch).logits
    assert wrapped.dtype == torch.float32 and (wrapped - own).abs().max() > 1e-4  # bf16-rounded vs full precision

    result = export_classifier(model, tmp_path / "exported", tokenizer)
    assert result.max_abs_diff <= 1e-4
    reloaded = AutoModelForSequenceClassification.from_pretrained(tmp_path / "exported").eval()
    exported_batch = AutoTokenizer.from_pretrained(tmp_path / "exported")(
        ["row 1 row 1", "row 7"], padding=True, return_tensors="pt"
    )  # the export's own pad token, which cannot end an input
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**exported_batch).logits, own, atol=1e-4, rtol=0)
