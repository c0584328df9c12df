"""Classify texts with an exported DHRD classifier in vLLM's pooling runner (run with the serving environment's
Python, `.venv-vllm/bin/python`, which has vLLM but not this project).

    .venv-vllm/bin/python examples/serving/vllm_classify.py EXPORTED_DIR texts.json --output probs.json

Writes JSON: {"probs": [[...], ...], "seconds": s, "qps": q} (timing excludes engine start-up).
"""

import argparse
import json
import os
import sys
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("texts", help="JSON file with a list of strings")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--repeat", type=int, default=1, help="time this many passes over the texts")
    parser.add_argument("--output", required=True, help="where the JSON result goes")
    args = parser.parse_args()

    from vllm import LLM

    texts = json.load(open(args.texts))
    llm = LLM(model=args.model, runner="pooling", dtype=args.dtype, max_model_len=2048, enforce_eager=True)
    llm.classify(texts[:4], use_tqdm=False)  # warm-up
    start = time.perf_counter()
    for _ in range(args.repeat):
        outputs = llm.classify(texts, use_tqdm=False)
    seconds = time.perf_counter() - start
    probs = [output.outputs.probs for output in outputs]
    with open(args.output, "w") as handle:
        json.dump({"probs": probs, "seconds": seconds, "qps": len(texts) * args.repeat / seconds}, handle)
    # vLLM's interpreter-exit teardown can abort ("terminate called without an active exception") after the work is
    # done: stop the engine explicitly, then leave without running it.
    try:
        llm.llm_engine.engine_core.shutdown()
    except Exception:  # noqa: BLE001 - best effort, the result is already written
        pass
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
