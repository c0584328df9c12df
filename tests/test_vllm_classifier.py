"""An exported DHRD classifier (real SmolLM2 backbone) served by vLLM's pooling runner gives transformers' answers."""

import json
import subprocess
import urllib.request

import pytest
import torch
from cli_helpers import dhrd
from conftest import DATA_DIR, PROJECT_ROOT, requires_data
from serving import VllmServer, serving_env, serving_python
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from modeling_dhrd import DHRDForSequenceClassification, export_classifier
from modeling_dhrd.input_contract import InputContract
from trainer.tasks import get_task

pytestmark = pytest.mark.serving

N_TEXTS = 64


@pytest.fixture(scope="module")
def exported(smollm2_path, tmp_path_factory):
    requires_data("superglue", "RTE")
    folder = tmp_path_factory.mktemp("vllm-export")
    torch.manual_seed(0)
    model = DHRDForSequenceClassification.from_backbone(str(smollm2_path), id2label=get_task("rte").id2label)
    export_classifier(model, folder / "rte-classifier", AutoTokenizer.from_pretrained(smollm2_path))
    texts = get_task("rte").load("val", DATA_DIR)["text"][:N_TEXTS]
    (folder / "texts.json").write_text(json.dumps(texts))
    return folder, texts


def _transformers_probs(folder, texts, dtype=torch.float32) -> torch.Tensor:
    model = AutoModelForSequenceClassification.from_pretrained(folder, dtype=dtype).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    with torch.no_grad():
        return torch.cat(
            [
                model(**tokenizer(texts[i : i + 16], padding=True, return_tensors="pt")).logits.float()
                for i in range(0, len(texts), 16)
            ]
        ).softmax(-1)


def _vllm_probs(folder, dtype: str) -> torch.Tensor:
    command = [
        serving_python(),
        str(PROJECT_ROOT / "examples" / "serving" / "vllm_classify.py"),
        str(folder / "rte-classifier"),
        str(folder / "texts.json"),
        "--dtype",
        dtype,
        "--output",
        str(folder / f"probs-{dtype}.json"),
    ]
    completed = subprocess.run(
        command, capture_output=True, text=True, env=serving_env(folder), cwd=folder, timeout=600
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    return torch.tensor(json.loads((folder / f"probs-{dtype}.json").read_text())["probs"])


def test_vllm_pooling_runner_matches_transformers_in_fp32(exported):
    folder, texts = exported
    expected = _transformers_probs(folder / "rte-classifier", texts)
    served = _vllm_probs(folder, "float32")
    assert served.shape == (N_TEXTS, 2)
    assert (served - expected).abs().max().item() <= 1e-3


def test_vllm_bf16_agrees_on_the_top_label(exported):
    folder, texts = exported
    expected = _transformers_probs(folder / "rte-classifier", texts)
    served = _vllm_probs(folder, "bfloat16")
    agreement = (served.argmax(-1) == expected.argmax(-1)).float().mean().item()
    print(f"bf16 top-label agreement with transformers fp32: {agreement:.3f}")
    assert agreement >= 0.9


@pytest.fixture(scope="module")
def pooling_server(exported):
    folder, _ = exported
    server = VllmServer(
        folder / "rte-classifier", folder, "rte-classifier", ("--runner", "pooling", "--dtype", "float32")
    ).start()
    yield server
    server.kill()


def test_vllm_server_classify_endpoint_over_http(exported, pooling_server):
    folder, texts = exported
    body = json.dumps({"model": "rte-classifier", "input": texts[:16]}).encode()
    request = urllib.request.Request(
        f"{pooling_server.base_url}/classify", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        payload = json.loads(response.read())
    served = torch.tensor([item["probs"] for item in payload["data"]])
    expected = _transformers_probs(folder / "rte-classifier", texts[:16])
    assert (served - expected).abs().max().item() <= 1e-3
    assert [item["label"] for item in payload["data"]] == [
        ["entailment", "not_entailment"][i] for i in expected.argmax(-1).tolist()
    ]


def test_dhrd_predict_through_the_server_matches_local_predict(exported, pooling_server, tmp_path):
    folder, texts = exported
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps({"pair": f"p{i}", "text": text}) + "\n" for i, text in enumerate(texts)))
    common = ("predict", "--model", str(folder / "rte-classifier"), "--test_file", str(rows), "--id_column", "pair")
    local = dhrd(*common, "--output_file", str(tmp_path / "local.jsonl"))
    assert local.returncode == 0, local.stderr[-3000:]
    served = dhrd(
        *common, "--output_file", str(tmp_path / "served.jsonl"), "--server_url", pooling_server.base_url,
        "--server_model", "rte-classifier", "--server_batch_size", "8", "--concurrency", "4",
    )  # fmt: skip
    assert served.returncode == 0, served.stderr[-3000:]
    by_server, by_local = (
        [json.loads(line) for line in (tmp_path / name).read_text().splitlines()]
        for name in ("served.jsonl", "local.jsonl")
    )
    assert [r["pair"] for r in by_server] == [r["pair"] for r in by_local] == [f"p{i}" for i in range(N_TEXTS)]
    server_probs = torch.tensor([list(r["probs"].values()) for r in by_server])
    local_probs = torch.tensor([list(r["probs"].values()) for r in by_local])
    assert (server_probs - local_probs).abs().max().item() <= 1e-3
    assert [r["label"] for r in by_server] == [r["label"] for r in by_local]


CUT = 16  # tokens: every RTE pair is longer


@pytest.fixture(scope="module")
def cut_server(exported, smollm2_path):
    """An export trained (its contract says) with `max_input_length` 16, served by the pooling runner."""
    folder, _ = exported
    torch.manual_seed(1)
    model = DHRDForSequenceClassification.from_backbone(str(smollm2_path), id2label=get_task("rte").id2label)
    model.config.input_contract = InputContract({"text_column": "text"}, max_input_length=CUT).to_dict()
    export_classifier(model, folder / "rte-cut", AutoTokenizer.from_pretrained(smollm2_path))
    server = VllmServer(folder / "rte-cut", folder, "rte-cut", ("--runner", "pooling", "--dtype", "float32")).start()
    yield folder / "rte-cut", server
    server.kill()


def test_the_server_cuts_long_inputs_where_local_predict_does(exported, cut_server, tmp_path):
    """Inputs longer than the trained limit: the server, told the contract's length and side, scores what
    `dhrd predict` scores on this machine."""
    _, texts = exported
    model, server = cut_server
    tokenizer = AutoTokenizer.from_pretrained(model)
    assert tokenizer.model_max_length == CUT  # the export's tokenizer carries the cut too
    assert all(len(tokenizer(text)["input_ids"]) > CUT for text in texts)
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps({"pair": f"p{i}", "text": text}) + "\n" for i, text in enumerate(texts)))
    common = ("predict", "--model", str(model), "--test_file", str(rows), "--id_column", "pair")
    runs = {
        "local": (),
        "whole": ("--max_input_length", "100000"),
        "served": ("--server_url", server.base_url, "--server_model", "rte-cut"),
    }
    probs, labels = {}, {}
    for name, flags in runs.items():
        completed = dhrd(*common, "--output_file", str(tmp_path / f"{name}.jsonl"), *flags)
        assert completed.returncode == 0, completed.stderr[-3000:]
        results = [json.loads(line) for line in (tmp_path / f"{name}.jsonl").read_text().splitlines()]
        probs[name] = torch.tensor([list(r["probs"].values()) for r in results])
        labels[name] = [r["label"] for r in results]
    assert (probs["served"] - probs["local"]).abs().max().item() <= 1e-3
    assert labels["served"] == labels["local"]
    assert (probs["whole"] - probs["local"]).abs().max().item() > 1e-2  # the cut mattered
