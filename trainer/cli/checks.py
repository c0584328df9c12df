"""What the subcommands' arguments share: the model argument, and checks with the flag's name in the message."""

from dataclasses import field


def model_argument(help: str):  # noqa: A002 - the dataclass metadata's own name
    """The `--model` field (also spelled `--model_name_or_path`, as `dhrd train` spells it)."""
    return field(metadata={"help": help, "aliases": ["--model_name_or_path"]})


def require_positive(arguments: object, *names: str) -> None:
    """Every named field is None (not given) or a positive integer."""
    for name in names:
        value = getattr(arguments, name)
        if value is not None and value < 1:
            raise ValueError(f"--{name} must be a positive integer, got {value}.")


def require_client_limits(retries: int, timeout: float) -> None:
    """An HTTP client's retry count and per-request timeout."""
    if retries < 0 or timeout <= 0:
        raise ValueError(f"--retries must be >= 0 and --timeout > 0, got {retries} and {timeout}.")


def check_prices(input_price: float | None, output_price: float | None) -> None:
    """The rule for `--input_price` / `--output_price` wherever a teacher's bill is priced (`rationales`, `compare`):
    both or neither (one price alone would leave the cost out without a word), neither negative."""
    if (input_price is None) != (output_price is None):
        raise ValueError("Give both --input_price and --output_price (per million tokens), or neither.")
    if any(price is not None and price < 0 for price in (input_price, output_price)):
        raise ValueError("--input_price and --output_price must be >= 0 (per million tokens).")
