"""An OpenAI-compatible server stand-in on loopback, run as its own process: what a cluster's own teacher (vLLM,
TGI, llama.cpp) and vLLM's pooling `/classify` answer, without a model, so the clients' side can be tested on any
machine in milliseconds.

    python tests/fake_openai.py RECORD_FILE [--omit_usage] [--classify_fail_after N] [--rationale TEXT]

Prints `ready PORT` once it listens. Each request is appended to RECORD_FILE as a JSON line (path, authorization
header, model; a chat request's body). `--omit_usage`: chat completions carry no `usage` (as some servers answer).
`--classify_fail_after N`: `/classify` answers N requests, then 400 (an error no retry fixes: the client stops, its
parts stay behind).
`--rationale TEXT`: what every chat completion says (default `RATIONALE`).
`batch_output` writes what a batch provider returns for a requests file, with the same answers.
"""

import argparse
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import ThreadingHTTPServer
from pathlib import Path

from json_handler import JSONHandler

RATIONALE = "Because the weather words point that way. [END]"


def make_handler(record: Path, omit_usage: bool, classify_fail_after: int | None, rationale: str = RATIONALE):
    lock = threading.Lock()
    classified = [0]

    class Handler(JSONHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            entry = {"path": self.path, "authorization": self.headers.get("Authorization"), "model": request["model"]}
            if self.path.endswith("/chat/completions"):
                entry["body"] = request  # what was asked: a batch file's requests must ask the same
            with lock, open(record, "a") as log:
                log.write(json.dumps(entry) + "\n")
            if self.path.endswith("/chat/completions"):
                self._reply(200, _chat(request, omit_usage, rationale))
            elif self.path == "/classify":
                with lock:
                    classified[0] += 1
                    failing = classify_fail_after is not None and classified[0] > classify_fail_after
                if failing:
                    self._reply(400, {"error": {"message": "scripted failure"}})
                else:
                    data = [
                        {"index": i, "probs": [0.25, 0.75], "num_classes": 2} for i in range(len(request["input"]))
                    ]
                    self._reply(200, {"data": data})
            else:
                self._reply(404, {"error": {"message": f"no route {self.path}"}})

    return Handler


def _chat(request: dict, omit_usage: bool, rationale: str) -> dict:
    answer = {
        "id": "chatcmpl-0",
        "object": "chat.completion",
        "model": request["model"],
        "choices": [{"index": 0, "message": {"role": "assistant", "content": rationale}, "finish_reason": "stop"}],
    }
    if not omit_usage:
        prompt = sum(len(message["content"].split()) for message in request["messages"])
        answer["usage"] = {"prompt_tokens": prompt, "completion_tokens": 9, "total_tokens": prompt + 9}
    return answer


def batch_output(
    requests_file: Path, path: Path, errored: tuple[str, ...] = (), missing: tuple[str, ...] = ()
) -> Path:
    """What a batch provider (OpenAI's Batch API, vLLM `run-batch`) returns for `requests_file`: the answers this
    server gives online, in another order (batch output is unordered), an error line for each row id of `errored`,
    no line for those of `missing`."""
    lines = []
    for number, request in enumerate([json.loads(line) for line in requests_file.read_text().splitlines()]):
        custom_id = request["custom_id"]
        row_id = custom_id.rsplit("@", 1)[0]  # `<row id>@<job digest>`
        if row_id in missing:
            continue
        line = {"id": f"batch_req_{number}", "custom_id": custom_id, "response": None, "error": None}
        if row_id in errored:
            line["error"] = {"code": "server_error", "message": "the model is overloaded"}
        else:
            line["response"] = {"status_code": 200, "request_id": f"r{number}", "body": _chat(request["body"], False,
                                                                                             RATIONALE)}  # fmt: skip
        lines.append(json.dumps(line))
    path.write_text("\n".join(reversed(lines)) + "\n")
    return path


@contextmanager
def fake_openai(record: Path, *flags: str) -> Iterator[str]:
    """This script as a process on a free loopback port; yields its base URL (`http://127.0.0.1:PORT`)."""
    import subprocess
    import sys

    server = subprocess.Popen([sys.executable, __file__, str(record), *flags], stdout=subprocess.PIPE, text=True)
    try:
        ready, port = server.stdout.readline().split()
        assert ready == "ready", ready
        yield f"http://127.0.0.1:{port}"
    finally:
        server.kill()
        server.wait()


def requests(record: Path) -> list[dict]:
    """The requests the server recorded, in arrival order."""
    return [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("record", type=Path)
    parser.add_argument("--omit_usage", action="store_true")
    parser.add_argument("--classify_fail_after", type=int)
    parser.add_argument("--rationale", default=RATIONALE)
    options = parser.parse_args()
    handler = make_handler(options.record, options.omit_usage, options.classify_fail_after, options.rationale)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    print("ready", httpd.server_address[1], flush=True)
    httpd.serve_forever()
