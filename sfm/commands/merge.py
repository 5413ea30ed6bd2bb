"""``sfm merge RUN_DIR --out DIR``: fold a LoRA/DoRA adapter into its base, for serving without PEFT.

sfm merge runs/llama-3.1-8b/burgers-forecast-lora --out runs/llama-3.1-8b/burgers-forecast-lora-merged
"""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "merge",
        help="merge a run's LoRA/DoRA adapter into its base and save a plain transformers model",
        description="Load a run folder of sfm.train (base with resized embeddings + adapter), merge the adapter "
        "and save a safetensors model with the tokenizer, sfm_encoding.json and the run record "
        "(marked merged). AutoModelForCausalLM.from_pretrained(DIR) loads the result alone.",
    )
    p.add_argument(
        "run_dir", metavar="RUN_DIR", help="run folder written by sfm.train (with adapter_config.json)"
    )
    p.add_argument("--out", required=True, help="folder for the merged model (written atomically)")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --out folder")
    p.add_argument("--device", default="cpu", help="where to merge (default cpu; e.g. cuda for speed)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sfm.training.merge import merge_adapter

    out = merge_adapter(args.run_dir, args.out, overwrite=args.overwrite, device=args.device)
    print(f"merged: {out}")
    return 0
