"""Time CoT decoding in vLLM (run with `.venv-vllm/bin/python`): greedy generation for a list of ready-made prompts.

    .venv-vllm/bin/python examples/serving/vllm_generate.py MODEL_DIR prompts.json --max-tokens 128 --fixed \
        --output out.json

Writes JSON: {"qps": q, "seconds": s, "mean_generated_tokens": n} (timing excludes engine start-up).
"""

import argparse
import json
import os
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("prompts", help="JSON file with a list of prompt strings (chat template already applied)")
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--max-tokens", type=int, default=500)
    parser.add_argument("--fixed", action="store_true", help="generate exactly --max-tokens tokens per prompt")
    parser.add_argument("--output", required=True)
    args = parser.parse_args()

    from vllm import LLM, SamplingParams

    prompts = json.load(open(args.prompts))
    llm = LLM(model=args.model, dtype=args.dtype, max_model_len=2048, enforce_eager=True)
    params = SamplingParams(
        temperature=0.0, max_tokens=args.max_tokens, min_tokens=args.max_tokens if args.fixed else 0
    )
    llm.generate(prompts[:2], SamplingParams(temperature=0.0, max_tokens=4), use_tqdm=False)  # warm-up
    start = time.perf_counter()
    outputs = llm.generate(prompts, params, use_tqdm=False)
    seconds = time.perf_counter() - start
    lengths = [len(output.outputs[0].token_ids) for output in outputs]
    with open(args.output, "w") as handle:
        json.dump(
            {"qps": len(prompts) / seconds, "seconds": seconds, "mean_generated_tokens": sum(lengths) / len(lengths)},
            handle,
        )
    try:  # see vllm_classify.py: skip vLLM's interpreter-exit teardown once the result is written
        llm.llm_engine.engine_core.shutdown()
    except Exception:  # noqa: BLE001
        pass
    os._exit(0)


if __name__ == "__main__":
    main()
