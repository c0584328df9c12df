"""The arms a DHRD gain is measured against: the pooled baseline, the teacher-free LM objective on the input, DHRD on
rationales shuffled across rows, and DHRD. `dhrd compare` trains any of them over seeds; `dhrd demo` trains the
baseline and DHRD (the controls with `--input_lm_control` / `--shuffled_control`) and shows each arm's reference
spread over three seeds."""

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Arm:
    """How one arm trains, relative to the training flags given (`lm_weight`: None keeps the given weight)."""

    key: str
    title: str
    lm_weight: float | None = None
    lm_loss_scope: str | None = None
    shuffled: bool = False
    uses_rationales: bool = True

    def training_settings(self) -> dict[str, Any]:
        """The `DHRDTrainingArguments` fields this arm sets over the flags given."""
        settings: dict[str, Any] = {}
        if self.lm_weight is not None:
            settings["lm_weight"] = self.lm_weight
        if self.lm_loss_scope is not None:
            settings["lm_loss_scope"] = self.lm_loss_scope
        return settings


ARMS = {
    arm.key: arm
    for arm in (
        Arm("pooled", "pooled baseline (lm_weight 0)", lm_weight=0.0, uses_rationales=False),
        Arm("input_lm", "LM on the input only (no teacher)", lm_loss_scope="input", uses_rationales=False),
        Arm("shuffled", "DHRD, rationales shuffled across rows", shuffled=True),
        Arm("dhrd", "DHRD"),
    )
}
# (first, second, the question the difference answers)
QUESTIONS = (
    ("dhrd", "pooled", "DHRD over the pooled baseline"),
    ("dhrd", "shuffled", "what the rationales' content adds (DHRD over the shuffled control)"),
    ("dhrd", "input_lm", "what the teacher adds over a teacher-free LM objective (DHRD over input_lm)"),
)
