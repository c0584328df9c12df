"""The retry policy (`trainer.jobs.retry`) against a real HTTP server on loopback that misbehaves on a script:
transport failures, 429 and 5xx are retried; a malformed answer or a 4xx is raised at once (a retry would hide the
bug)."""

import json
import threading
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch
from huggingface_hub import constants

from trainer.cli.predict import ClassifyClient, PredictArguments
from trainer.jobs.retry import MAX_RETRY_AFTER, ServerError, ServerUnavailable, http_client, retry_after
from trainer.teachers import ServerTeacher

CHAT = {
    "choices": [{"message": {"content": "Because. [END]"}, "finish_reason": "stop"}],
    "usage": {"completion_tokens": 3},
}


class ScriptedServer:
    """Answers request i with `script[i]`: an HTTP status, `(status, headers)`, "close" (drop the connection) or
    "garbage" (200, not JSON); past the script, a good answer. Records every request path, and when it arrived on
    the server's clock (`arrived`)."""

    def __init__(self, script: list) -> None:
        self.script, self.requests, self.arrived = list(script), [], []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                server.requests.append(self.path)
                server.arrived.append(time.monotonic())
                step = server.script.pop(0) if server.script else 200
                step, headers = step if isinstance(step, tuple) else (step, {})
                if step == "close":
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if step == "garbage":
                    payload = b"<html>not json</html>"
                    status = 200
                else:
                    status = step
                    good = CHAT if "chat" in self.path else {"data": [_probs(i) for i in range(len(body["input"]))]}
                    payload = json.dumps(good if status == 200 else {"error": "scripted"}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "ScriptedServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _probs(index: int) -> dict:
    return {"index": index, "label": "b", "probs": [0.25, 0.75], "num_classes": 2}


def _client(url: str, retries: int = 3) -> ClassifyClient:
    args = PredictArguments(model="m", output_file="unused.jsonl", server_url=url, retries=retries, timeout=5)
    client = ClassifyClient(args)
    return client


REAL_SLEEP = time.sleep


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch):
    monkeypatch.setattr("trainer.jobs.retry.time.sleep", lambda seconds: None)


@pytest.mark.parametrize("failures", [[500], [429], [503, 502], ["close"], ["close", 500, 429]])
def test_transport_errors_429_and_5xx_are_retried(failures):
    with ScriptedServer(failures) as server:
        probs = _client(server.url).classify(["x", "y"], max_input_length=16)
    assert torch.equal(probs, torch.tensor([[0.25, 0.75], [0.25, 0.75]]))
    assert len(server.requests) == len(failures) + 1


@pytest.mark.parametrize("answer, error", [("garbage", ValueError), (404, Exception), (400, Exception)])
def test_malformed_answers_and_client_errors_are_not_retried(answer, error):
    with ScriptedServer([answer]) as server, pytest.raises(error) as raised:
        _client(server.url).classify(["x"], max_input_length=None)
    assert not isinstance(raised.value, ServerUnavailable)
    assert len(server.requests) == 1  # raised at once


def test_retries_run_out_with_one_line_that_names_the_server():
    with ScriptedServer([500, 500, 500]) as server, pytest.raises(ServerUnavailable) as raised:
        _client(server.url, retries=2).classify(["x"], max_input_length=None)
    assert len(server.requests) == 3
    assert f"{server.url}/classify: still failing after 2 retries" in str(raised.value)


def test_the_teacher_client_follows_the_same_policy():
    assert constants.is_offline_mode()  # the suite runs offline: a loopback server is not the Hub, and is reached
    with ScriptedServer([500, "close", 429]) as server:
        teacher = ServerTeacher(f"{server.url}/v1", "m", max_retries=3, backoff=0.0)
        ((_, completion),) = next(teacher.complete_iter([[{"role": "user", "content": "why?"}]]))
    assert completion.text == "Because. [END]" and len(server.requests) == 4
    with ScriptedServer(["garbage"]) as server, pytest.raises(Exception) as raised:
        teacher = ServerTeacher(f"{server.url}/v1", "m", max_retries=3, backoff=0.0)
        next(teacher.complete_iter([[{"role": "user", "content": "why?"}]]))
    assert not isinstance(raised.value, ServerUnavailable) and len(server.requests) == 1


def test_a_429_with_retry_after_is_retried_no_sooner_than_asked(monkeypatch):
    """The wait is measured between the two requests on the server's clock, not on the test's."""
    monkeypatch.setattr(time, "sleep", REAL_SLEEP)
    with ScriptedServer([(429, {"Retry-After": "2"})]) as server:
        teacher = ServerTeacher(f"{server.url}/v1", "m", max_retries=2, backoff=0.0)
        ((_, completion),) = next(teacher.complete_iter([[{"role": "user", "content": "why?"}]]))
    assert completion.text == "Because. [END]" and len(server.requests) == 2
    assert server.arrived[1] - server.arrived[0] >= 2.0


def _answer(status: int, retry: str | None) -> ServerError:
    import importlib

    httpx = importlib.import_module(type(http_client(1, {})).__module__.split(".")[0])
    return ServerError("scripted", httpx.Response(status, headers={"Retry-After": retry} if retry else {}))


@pytest.mark.parametrize(
    "status, header, expected",
    [
        (429, "7", 7.0),
        (503, "1.5", 1.5),
        (429, "86400", MAX_RETRY_AFTER),  # capped: asked again after the cap
        (429, 30, (25.0, 31.0)),  # an HTTP date 30 s from now
        (429, -30, 0.0),  # an HTTP date past
        (429, "soon", None),  # unreadable: the client's own backoff
        (500, "7", None),  # only 429 and 503 carry it
        (429, None, None),
    ],
)
def test_retry_after_reads_seconds_and_http_dates(status, header, expected):
    if isinstance(header, int):
        header = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=header), usegmt=True)
    waited = retry_after(_answer(status, header))
    if isinstance(expected, tuple):
        assert expected[0] <= waited <= expected[1]
    else:
        assert waited == expected
