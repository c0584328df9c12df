"""A minimal Hugging Face Hub stand-in on loopback, for testing uploads without the network.

It answers the calls `HfApi.create_repo` and `HfApi.upload_folder` make (repo creation, README metadata validation,
pre-upload with every file as a regular blob, the ndjson commit) and writes each committed file under RECORD_DIR.

    python tests/fake_hub.py PORT RECORD_DIR
"""

import base64
import json
import sys
from http.server import ThreadingHTTPServer
from pathlib import Path

import yaml
from json_handler import JSONHandler


def make_handler(record_dir: Path, port: int):
    class Handler(JSONHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with open(record_dir / "requests.log", "a") as log:
                log.write(f"POST {self.path} auth={'Authorization' in self.headers}\n")
            path = self.path.split("?")[0]
            if path == "/api/repos/create":
                request = json.loads(body)
                self._reply(200, {"url": f"http://127.0.0.1:{port}/{request['organization']}/{request['name']}"})
            elif path == "/api/validate-yaml":
                card = json.loads(body)["content"]
                yaml.safe_load(card.split("---\n", 2)[1])
                self._reply(200, {})
            elif "/preupload/" in path:
                files = json.loads(body)["files"]
                self._reply(
                    200,
                    {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]},
                )
            elif "/commit/" in path:
                for line in body.decode().splitlines():
                    item = json.loads(line)
                    if item["key"] == "file":
                        target = record_dir / "files" / item["value"]["path"]
                        target.parent.mkdir(parents=True, exist_ok=True)
                        target.write_bytes(base64.b64decode(item["value"]["content"]))
                    elif item["key"] == "header":
                        (record_dir / "commit_message.txt").write_text(item["value"]["summary"])
                repo = path.split("/api/models/")[1].split("/commit/")[0]
                self._reply(
                    200,
                    {
                        "commitUrl": f"http://127.0.0.1:{port}/{repo}/commit/{'0' * 40}",
                        "commitOid": "0" * 40,
                        "pullRequestUrl": None,
                    },
                )
            else:
                self._reply(404, {"error": f"fake hub: no route for POST {path}"})

        def do_GET(self) -> None:  # noqa: N802
            with open(record_dir / "requests.log", "a") as log:
                log.write(f"GET {self.path}\n")
            self._reply(404, {"error": f"fake hub: no route for GET {self.path}"})

    return Handler


if __name__ == "__main__":
    port, record_dir = int(sys.argv[1]), Path(sys.argv[2])
    record_dir.mkdir(parents=True, exist_ok=True)
    server = ThreadingHTTPServer(("127.0.0.1", port), make_handler(record_dir, port))
    print("ready", flush=True)
    server.serve_forever()
