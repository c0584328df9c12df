"""The one device rule (`trainer.device`): what `--device auto` picks on machines with and without a GPU, one-line
refusals of a device that is not there, and every subcommand loading its models onto the device it was given."""

import json

import pytest
import torch
from conftest import make_tokenizer, tiny_dhrd, write_rows
from transformers import PreTrainedModel

from trainer.cli import main
from trainer.data.description import DatasetArguments
from trainer.data.labelled import LabelledData
from trainer.device import default_batch_tokens, load_kwargs, resolve_device, resolve_dtype


def _gpus(monkeypatch, count: int, current: int = 0) -> None:
    """This process sees `count` CUDA GPUs (torch's own answers, patched: the choice logic is what is tested)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: count > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: current)


def test_auto_is_the_cpu_on_this_machine_and_cpu_names_it_too():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert resolve_device("auto") == resolve_device("cpu") == torch.device("cpu")
    assert default_batch_tokens(resolve_device("auto")) == 4096


def test_auto_prefers_cuda_then_mps_then_cpu(monkeypatch):
    _gpus(monkeypatch, 2, current=1)
    assert resolve_device("auto") == torch.device("cuda", 1)
    assert resolve_device("cuda") == torch.device("cuda", 1) and resolve_device("CUDA:0") == torch.device("cuda", 0)
    assert default_batch_tokens(resolve_device("auto")) == 16384
    with pytest.raises(ValueError, match=r"^--device cuda:2: this machine has 2 CUDA GPU\(s\), cuda:0 to cuda:1\.$"):
        resolve_device("cuda:2")
    _gpus(monkeypatch, 0)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("mps")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(ValueError, match="Apple MPS is not available here"):
        resolve_device("mps")


@pytest.mark.parametrize("spec, message", [("gpu", "not a device"), ("meta", "unsupported device type 'meta'")])
def test_nonsense_devices_are_refused(spec, message):
    with pytest.raises(ValueError, match=message):
        resolve_device(spec)


def test_loading_keywords_place_the_weights_at_load_time():
    assert load_kwargs(torch.device("cuda", 1), resolve_dtype("bfloat16")) == {
        "device_map": "cuda:1",
        "dtype": torch.bfloat16,
    }
    assert load_kwargs(torch.device("cpu")) == {"device_map": "cpu"}
    with pytest.raises(ValueError, match="--dtype half: choose from auto, float32, bfloat16, float16"):
        resolve_dtype("half")


@pytest.fixture
def workspace(tmp_path, tiny_backbone_dir):
    """A DHRD checkpoint (its reasoning head included), a causal LM, and labelled rows."""
    model = tiny_dhrd("qwen2", num_labels=2, id2label={0: "wet", 1: "dry"}, label2id={"wet": 0, "dry": 1})
    model.save_pretrained(tmp_path / "dhrd")
    make_tokenizer().save_pretrained(tmp_path / "dhrd")
    write_rows(tmp_path / "rows.jsonl", 6, ("wet", "dry"))
    return {"dhrd": str(tmp_path / "dhrd"), "lm": str(tiny_backbone_dir), "rows": str(tmp_path / "rows.jsonl")}


def _subcommands(paths: dict, out) -> dict[str, list[str]]:
    evaluate = ["evaluate", "--eval_file", paths["rows"], "--max_new_tokens", "3"]
    return {
        "predict": [
            "predict",
            "--model",
            paths["dhrd"],
            "--test_file",
            paths["rows"],
            "--output_file",
            f"{out}.jsonl",
        ],
        "evaluate": [*evaluate, "--model", paths["dhrd"]],
        "evaluate reasoning_head": [*evaluate, "--model", paths["dhrd"], "--method", "reasoning_head"],
        "evaluate cot": [*evaluate, "--model", paths["lm"], "--method", "cot"],
        "rationales": [
            "rationales",
            "--train_file",
            paths["rows"],
            "--teacher_model",
            paths["lm"],
            "--limit",
            "2",
            "--max_new_tokens",
            "4",
            "--output_dir",
            str(out),
            "--rationale_column",
            "teacher_rationale",
        ],  # fmt: skip
        "demo": ["demo", "--quick", "--output_dir", str(out)],
    }


SUBCOMMANDS = ["predict", "evaluate", "evaluate reasoning_head", "evaluate cot", "rationales"]


@pytest.mark.parametrize("name", [*SUBCOMMANDS, "demo"])
def test_a_device_that_is_not_here_is_one_line_before_anything_loads(name, workspace, tmp_path, capsys, monkeypatch):
    _gpus(monkeypatch, 0)
    argv = [*_subcommands(workspace, tmp_path / "out")[name], "--device", "cuda"]
    assert main(argv) == 1
    error = capsys.readouterr().err.strip().splitlines()
    assert error == [f"dhrd {name.split()[0]}: error: --device cuda: this machine has {_no_cuda()}; use --device cpu "
                     "(or auto)."]  # fmt: skip
    assert not list(tmp_path.glob("out*"))  # nothing written


def _no_cuda() -> str:
    return "a CPU-only build of torch" if torch.version.cuda is None else "no CUDA GPU visible"


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_every_subcommand_loads_its_models_onto_the_device_in_the_dtype(name, workspace, tmp_path, monkeypatch):
    """Every `from_pretrained` a subcommand makes gets the device and dtype asked for (no loader left behind)."""
    calls = []
    original = PreTrainedModel.from_pretrained.__func__

    def recording(cls, *args, **kwargs):
        calls.append((cls.__name__, kwargs.get("device_map"), kwargs.get("dtype")))
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(PreTrainedModel, "from_pretrained", classmethod(recording))
    argv = [*_subcommands(workspace, tmp_path / "out")[name], "--device", "cpu", "--dtype", "bfloat16"]
    assert main(argv) == 0
    assert calls and all(call[1:] == ("cpu", torch.bfloat16) for call in calls), calls


def test_the_demo_measures_on_the_device_it_was_given(workspace, tmp_path, monkeypatch):
    """The demo's speed measurement loads the export and the causal LM through the same rule."""
    from modeling_dhrd import DHRDForSequenceClassification, export_classifier
    from trainer.cli.demo import DemoArguments, measure_qps
    from trainer.device import DeviceArguments
    from trainer.tasks import get_task

    dhrd = DHRDForSequenceClassification.from_pretrained(workspace["dhrd"])
    export_classifier(dhrd, tmp_path / "export", make_tokenizer())
    calls = []
    original = PreTrainedModel.from_pretrained.__func__

    def recording(cls, *args, **kwargs):
        calls.append(kwargs.get("device_map"))
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(PreTrainedModel, "from_pretrained", classmethod(recording))
    speed = measure_qps(
        tmp_path / "export",
        workspace["lm"],
        ["it rains"] * 4,
        ["it rains"],
        get_task("synthetic"),
        DemoArguments(quick=True),
        DeviceArguments(device="cpu"),
    )
    assert calls == ["cpu", "cpu"] and speed["classifier_qps"] > 0


def test_explicit_cpu_predicts_exactly_what_auto_predicts(workspace, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("auto is a GPU here")
    base = ["predict", "--model", workspace["dhrd"], "--test_file", workspace["rows"]]
    assert main([*base, "--output_file", str(tmp_path / "auto.jsonl")]) == 0
    assert main([*base, "--output_file", str(tmp_path / "cpu.jsonl"), "--device", "cpu"]) == 0
    auto, cpu = ((tmp_path / f"{name}.jsonl").read_text() for name in ("auto", "cpu"))
    assert auto == cpu and len(auto.splitlines()) == 6 and "probs" in json.loads(auto.splitlines()[0])


def test_a_launched_rank_takes_its_own_gpu(monkeypatch):
    """Under torchrun / accelerate launch, `auto` and a bare `cuda` name the rank's GPU (`LOCAL_RANK`), not the current
    one: N processes on N GPUs, none opening a context on the first."""
    _gpus(monkeypatch, 4, current=0)
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert resolve_device("auto") == resolve_device("cuda") == torch.device("cuda", 3)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)  # a GPU named by the user stays named
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert resolve_device("auto") == torch.device("cuda", 0)


def test_auto_precision_is_bf16_where_the_device_computes_it_else_as_saved(monkeypatch):
    """`--dtype auto` (the default): bfloat16 on a device with native bf16, the weights as saved elsewhere; an explicit
    dtype always wins; `$DHRD_DTYPE` says what auto means on a machine (the suite pins float32)."""
    from trainer import device as rule

    monkeypatch.delenv("DHRD_DTYPE")
    monkeypatch.setattr(rule, "native_bf16", lambda device=None: True)
    native = rule.DeviceArguments("cpu")
    assert native.torch_dtype == torch.bfloat16 and native.precision == "bfloat16"
    assert native.describe() == "cpu, bfloat16 (native here; --dtype float32 for exact float32)"
    exact = rule.DeviceArguments("cpu", "float32")
    assert exact.torch_dtype == torch.float32 and exact.describe() == "cpu, float32"
    monkeypatch.setattr(rule, "native_bf16", lambda device=None: False)
    emulated = rule.DeviceArguments("cpu")
    assert emulated.torch_dtype is None and emulated.describe() == "cpu, as saved"
    monkeypatch.setenv("DHRD_DTYPE", "float16")
    assert rule.DeviceArguments("cpu").torch_dtype == torch.float16
    monkeypatch.setenv("DHRD_DTYPE", "auto")  # the rule itself
    assert rule.DeviceArguments("cpu").torch_dtype is None
    monkeypatch.setenv("DHRD_DTYPE", "half")
    with pytest.raises(ValueError, match=r"^\$DHRD_DTYPE=half: choose from auto, float32, bfloat16, float16\.$"):
        rule.DeviceArguments("cpu")


@pytest.mark.parametrize(
    "avx512_bf16, amx, speedup, native",
    [(True, False, 1.9, True), (False, True, 3.0, True), (True, False, 0.66, False), (False, False, 2.0, False)],
)
def test_a_cpu_computes_bf16_natively_with_the_flags_and_a_measured_gain(
    monkeypatch, avx512_bf16, amx, speedup, native
):
    """The flags are necessary, not sufficient: a CPU that flags AVX512-BF16 but computes bf16 slower than float32
    (an Intel Xeon measured 0.66x) keeps float32."""
    from trainer import device as rule

    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    monkeypatch.setattr(rule, "cpu_bf16_speedup", lambda: speedup)
    assert rule.native_bf16(torch.device("cpu")) is native
    assert rule.native_bf16(torch.device("mps")) is False


def test_the_bf16_gain_is_measured_once_per_process():
    from trainer.device import cpu_bf16_speedup

    first = cpu_bf16_speedup()
    assert first > 0 and cpu_bf16_speedup() == first  # cached: a process never changes its mind


@pytest.mark.parametrize("capability, native", [((7, 5), False), ((8, 0), True), ((9, 0), True)])
def test_a_gpu_computes_bf16_natively_from_ampere_on(monkeypatch, capability, native):
    """`torch.cuda.is_bf16_supported()` counts emulation too (a T4 says yes): the rule reads the architecture."""
    from trainer.device import native_bf16

    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    assert native_bf16(torch.device("cuda", 0)) is native


def test_predict_says_its_precision_and_records_it_in_its_manifest(workspace, tmp_path, monkeypatch, caplog):
    """The log line that names the device names the precision `auto` chose; the parts of a bf16 run are not
    resumed in float32 (the manifest records the precision chosen, not the flag)."""
    from trainer import device as rule
    from trainer.cli import predict

    monkeypatch.delenv("DHRD_DTYPE")
    monkeypatch.setattr(rule, "native_bf16", lambda device=None: True)
    caplog.set_level("INFO")
    output = tmp_path / "p.jsonl"
    base = ["predict", "--model", workspace["dhrd"], "--test_file", workspace["rows"], "--device", "cpu"]
    assert main([*base, "--output_file", str(output)]) == 0
    assert "Predicting on cpu, bfloat16 (native here; --dtype float32 for exact float32)" in caplog.text
    assert len(output.read_text().splitlines()) == 6
    args = predict.PredictArguments(model=workspace["dhrd"], output_file=str(tmp_path / "q.jsonl"))
    data = LabelledData(DatasetArguments(test_file=workspace["rows"]))
    bf16, fp32 = (predict._manifest(args, data, rule.DeviceArguments("cpu", dtype)) for dtype in ("auto", "float32"))
    assert (bf16["dtype"], fp32["dtype"]) == ("bfloat16", "float32")  # the parts of one are refused by the other
