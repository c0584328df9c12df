"""Teacher backends: a local transformers causal LM, or any OpenAI-compatible chat-completions server.

Both answer `complete_iter(chats)`: groups of finished `(index, Completion)` pairs, each group as soon as it is
done (a server response, a local generation batch). The local backend
batches `generate` with left padding; the server backend runs requests concurrently (bounded), with timeouts and
retries with exponential backoff, so a restarting server only delays the job.
"""

import logging
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlparse, urlunparse

import torch

from ..device import load_kwargs, resolve_device
from ..jobs.bounded import bounded_completions
from ..jobs.retry import call_with_retries, checked, http_client
from .bill import chat_text, estimated_tokens

logger = logging.getLogger(__name__)


@dataclass
class Completion:
    text: str
    completion_tokens: int
    finished: bool = True  # the model stopped by itself (eos / stop), not at the token cap
    prompt_tokens: int = 0
    estimated: bool = False  # the token counts are estimated from characters: the server reported no usage


class LocalTeacher:
    """A transformers causal LM on this machine (the embedded SmolLM2-135M-Instruct by default).

    Args:
        model_name_or_path: Hub id or local folder; None = the embedded model.
        batch_size: chats generated together (left padding).
        max_new_tokens: cap per rationale.
        dtype: e.g. `torch.bfloat16` to halve memory and time on recent CPUs and GPUs.
        device: where it generates (`trainer.device`: 'auto' takes a GPU when there is one).
    """

    def __init__(
        self,
        model_name_or_path: str | None = None,
        batch_size: int = 8,
        max_new_tokens: int = 128,
        dtype: torch.dtype | None = None,
        device: torch.device | str = "auto",
    ) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from ..embedded import resolve_backbone

        path = resolve_backbone(model_name_or_path)
        self.tokenizer = AutoTokenizer.from_pretrained(path, padding_side="left")
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = AutoModelForCausalLM.from_pretrained(path, **load_kwargs(resolve_device(device), dtype)).eval()
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens
        self.name = path

    def _prompt(self, messages: list[dict]) -> str:
        return render_prompt(self.tokenizer, messages)

    @torch.no_grad()
    def complete_iter(self, chats: Sequence[list[dict]]) -> Iterator[list[tuple[int, Completion]]]:
        """`(index, completion)` pairs one generation batch at a time, so the caller can persist each batch."""
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
            prompt_lengths = batch["attention_mask"].sum(-1).tolist()
            stop_ids = {self.tokenizer.eos_token_id, self.tokenizer.pad_token_id}
            stop_ids |= set(_as_list(self.model.generation_config.eos_token_id))
            batch_completions = []
            for offset, row in enumerate(new_tokens):
                ids = [token for token in row.tolist() if token not in stop_ids]
                finished = len(ids) < self.max_new_tokens
                text = self.tokenizer.decode(ids, skip_special_tokens=True)
                completion = Completion(text, len(ids), finished, int(prompt_lengths[offset]))
                batch_completions.append((start + offset, completion))
            yield batch_completions


class ServerTeacher:
    """Any OpenAI-compatible chat-completions server (vLLM, TGI, llama.cpp, Ollama, OpenAI): `POST
    {base_url}/chat/completions` with an HTTP client of its own.

    Not `huggingface_hub.InferenceClient`: it sends through huggingface_hub's shared session, whose request hook
    refuses every request under HF_HUB_OFFLINE=1, and air-gapped clusters set that variable *and* serve their own
    teacher. A teacher server is not the Hub: offline mode keeps applying to Hub requests only, and this client
    (`trainer.jobs.retry.http_client`, the httpx huggingface_hub installs, without its hooks) is scoped to the server.

    A server that reports no `usage` (some do not) is counted at the dry run's estimate, ~4 characters a token
    (`Completion.estimated`), so `--max_total_tokens` still stops it.

    Args:
        base_url: e.g. `http://127.0.0.1:8000/v1` (`/chat/completions` is added; a bare host gets
            `/v1/chat/completions`, as `InferenceClient(base_url=...)` does).
        model: the served model's name (servers with several models need it; vLLM reports it at `/v1/models`).
        api_key_env: environment variable holding the API token (read here, sent as a bearer token, never logged).
        max_concurrency: requests in flight at once.
        timeout: seconds per request.
        max_retries: attempts after the first one, on transport errors, 429 and 5xx (`trainer.jobs.retry`).
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
        token = os.environ.get(api_key_env)
        self.client = http_client(timeout, {"Authorization": f"Bearer {token}"} if token else {})
        self.url = chat_completions_url(base_url)
        self.model = model
        self.max_concurrency = max_concurrency
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_new_tokens = max_new_tokens
        self.name = f"{model} @ {urlparse(base_url).netloc}"
        self.base_url = base_url

    def _request(self, messages: list[dict]) -> Completion:
        body = chat_request(self.model, messages, self.max_new_tokens)
        server = f"teacher server {self.base_url}"

        def request() -> Completion:
            response = checked(self.client.post(self.url, json=body), server)
            try:
                return chat_completion(response.json(), messages)
            except (ValueError, KeyError, IndexError, TypeError, AttributeError) as error:  # not retried: a bug
                raise ValueError(
                    f"{server}: {self.url} answered something other than a chat completion ({type(error).__name__}: "
                    f"{error}); is it an OpenAI-compatible server?"
                ) from error

        return call_with_retries(request, self.max_retries, self.backoff, server)

    def complete_iter(self, chats: Sequence[list[dict]]) -> Iterator[list[tuple[int, Completion]]]:
        """Each completion as it finishes, as `[(index, completion)]`: lets the caller persist each one at once. At
        most `max_concurrency` requests are pending at a time."""
        with ThreadPoolExecutor(max_workers=self.max_concurrency) as pool:
            for index, completion in bounded_completions(
                pool, lambda index: self._request(chats[index]), range(len(chats)), self.max_concurrency
            ):
                yield [(index, completion)]


def chat_request(model: str, messages: list[dict], max_new_tokens: int) -> dict:
    """The body of one chat-completions request: what the server teacher posts, and what a batch file's line holds
    (`batch_files`), so the two paths ask the teacher the same thing. Greedy: a rerun asks for the same answer."""
    return {"model": model, "messages": messages, "max_tokens": max_new_tokens, "temperature": 0.0}


def chat_completions_url(base_url: str) -> str:
    """The chat-completions endpoint of an OpenAI-compatible base URL: `.../v1` gets `/chat/completions`, a bare
    host `/v1/chat/completions`, any other path `/v1/chat/completions` after it; a full endpoint stays as it is."""
    parsed = urlparse(base_url)
    path = parsed.path.rstrip("/")
    if not path.endswith("/chat/completions"):
        path += "/chat/completions" if path.endswith("/v1") else "/v1/chat/completions"
    return urlunparse(parsed._replace(path=path))


def chat_completion(answer: dict, messages: list[dict]) -> Completion:
    """A chat-completion answer as a `Completion`; token counts the server left out (no `usage`, or a `usage`
    without them) are estimated from characters, and the completion says so."""
    choice = answer["choices"][0]
    text = (choice.get("message") or {}).get("content") or ""
    usage = answer.get("usage") or {}
    completion_tokens, prompt_tokens = usage.get("completion_tokens"), usage.get("prompt_tokens")
    estimated = completion_tokens is None or prompt_tokens is None
    if completion_tokens is None:
        completion_tokens = estimated_tokens(text)
    if prompt_tokens is None:
        prompt_tokens = estimated_tokens(chat_text(messages))
    finished = choice.get("finish_reason") != "length"
    return Completion(text, int(completion_tokens), finished, int(prompt_tokens), estimated)


def render_prompt(tokenizer, messages: list[dict]) -> str:
    """The text a local teacher is prompted with: its chat template, else the messages' contents in turn."""
    if tokenizer.chat_template:
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return "\n\n".join(message["content"] for message in messages) + "\n\n"


def _as_list(value) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]
