"""Teacher backends: a local transformers causal LM, or any OpenAI-compatible chat-completions server.

Both answer `complete(messages_list) -> list[Completion]`, one completion per chat, in order. The local backend
batches `generate` with left padding; the server backend runs requests concurrently (bounded), with timeouts and
retries with exponential backoff, so a restarting server only delays the job.
"""

import logging
import os
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlparse

import torch

logger = logging.getLogger(__name__)


@dataclass
class Completion:
    text: str
    completion_tokens: int
    finished: bool = True  # the model stopped by itself (eos / stop), not at the token cap


class LocalTeacher:
    """A transformers causal LM on this machine (the embedded SmolLM2-135M-Instruct by default).

    Args:
        model_name_or_path: Hub id or local folder; None = the embedded model.
        batch_size: chats generated together (left padding).
        max_new_tokens: cap per rationale.
        dtype: e.g. `torch.bfloat16` to halve memory and time on recent CPUs and GPUs.
    """

    def __init__(
        self,
        model_name_or_path: str | None = None,
        batch_size: int = 8,
        max_new_tokens: int = 128,
        dtype: torch.dtype | str | None = None,
        device: str | None = None,
    ) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from modeling_dhrd import resolve_backbone

        path = resolve_backbone(model_name_or_path)
        self.tokenizer = AutoTokenizer.from_pretrained(path, padding_side="left")
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).eval()
        if device:
            self.model.to(device)
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens
        self.name = path

    def _prompt(self, messages: list[dict]) -> str:
        if self.tokenizer.chat_template:
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return "\n\n".join(message["content"] for message in messages) + "\n\n"

    @torch.no_grad()
    def complete(self, chats: Sequence[list[dict]]) -> list[Completion]:
        completions = []
        for start in range(0, len(chats), self.batch_size):
            prompts = [self._prompt(chat) for chat in chats[start : start + self.batch_size]]
            batch = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
            batch = batch.to(self.model.device)
            output = self.model.generate(
                **batch,
                max_new_tokens=self.max_new_tokens,
                do_sample=False,
                pad_token_id=self.tokenizer.pad_token_id,
            )
            new_tokens = output[:, batch["input_ids"].shape[1] :]
            stop_ids = {self.tokenizer.eos_token_id, self.tokenizer.pad_token_id}
            stop_ids |= set(_as_list(self.model.generation_config.eos_token_id))
            for row in new_tokens:
                ids = [token for token in row.tolist() if token not in stop_ids]
                finished = len(ids) < self.max_new_tokens
                text = self.tokenizer.decode(ids, skip_special_tokens=True)
                completions.append(Completion(text, len(ids), finished))
        return completions


class ServerTeacher:
    """Any OpenAI-compatible chat-completions server (vLLM, TGI, llama.cpp, Ollama, OpenAI), through
    `huggingface_hub.InferenceClient(base_url=...)`.

    Args:
        base_url: e.g. `http://127.0.0.1:8000/v1`.
        model: the served model's name (servers with several models need it; vLLM reports it at `/v1/models`).
        api_key_env: environment variable holding the API token (read here, never logged).
        max_concurrency: requests in flight at once.
        timeout: seconds per request.
        max_retries: attempts after the first one, on connection errors, timeouts, 429 and 5xx.
        backoff: first retry delay in seconds, doubled each time (capped at 30 s).
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key_env: str = "OPENAI_API_KEY",
        max_concurrency: int = 8,
        timeout: float = 120.0,
        max_retries: int = 8,
        backoff: float = 1.0,
        max_new_tokens: int = 128,
    ) -> None:
        from huggingface_hub import InferenceClient, constants

        if constants.is_offline_mode():
            raise RuntimeError(
                f"huggingface_hub's offline mode (HF_HUB_OFFLINE=1) blocks every request, also to {base_url}. "
                "Unset HF_HUB_OFFLINE for the process that talks to the teacher server."
            )
        self.client = InferenceClient(base_url=base_url, api_key=os.environ.get(api_key_env), timeout=timeout)
        self.model = model
        self.max_concurrency = max_concurrency
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_new_tokens = max_new_tokens
        self.name = f"{model} @ {urlparse(base_url).netloc}"

    def _request(self, messages: list[dict]) -> Completion:
        delay = self.backoff
        for attempt in range(self.max_retries + 1):
            try:
                response = self.client.chat_completion(
                    messages, model=self.model, max_tokens=self.max_new_tokens, temperature=0.0
                )
                usage = getattr(response, "usage", None)
                tokens = int(getattr(usage, "completion_tokens", 0) or 0)
                choice = response.choices[0]
                return Completion(choice.message.content or "", tokens, choice.finish_reason != "length")
            except Exception as error:  # connection refused, timeouts, HTTP 429/5xx: all worth a retry
                if attempt == self.max_retries or not _retryable(error):
                    raise
                logger.warning(
                    "Teacher request failed (%s); retry %d in %.1f s", type(error).__name__, attempt + 1, delay
                )
                time.sleep(delay)
                delay = min(delay * 2, 30.0)
        raise AssertionError("unreachable")

    def complete(self, chats: Sequence[list[dict]]) -> list[Completion]:
        with ThreadPoolExecutor(max_workers=self.max_concurrency) as pool:
            return list(pool.map(self._request, chats))

    def complete_iter(self, chats: Sequence[list[dict]]) -> Iterator[tuple[int, Completion]]:
        """Completions as they finish (index, completion): lets the caller persist each one at once."""
        from concurrent.futures import as_completed

        with ThreadPoolExecutor(max_workers=self.max_concurrency) as pool:
            futures = {pool.submit(self._request, chat): index for index, chat in enumerate(chats)}
            try:
                for future in as_completed(futures):
                    yield futures[future], future.result()
            finally:
                for future in futures:
                    future.cancel()


def _as_list(value) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _retryable(error: Exception) -> bool:
    status = getattr(getattr(error, "response", None), "status_code", None)
    if status is not None:
        return status == 429 or status >= 500
    return True  # no HTTP status: connection refused / reset, timeout
