"""Evaluation benchmarks: batched KV-cache generation against one example at a time; constrained vs free.

    python bench/eval.py            # the full run (a few minutes on 2 CPU cores)
    python bench/eval.py --quick    # a smoke run (about a minute)

Everything runs in this process on one tiny model and one set of prompts: a tiny-llama backbone with the
quickstart's shapes (hidden 128, 4 layers; untrained weights -- generation speed does not depend on training)
and the quickstart's Burgers forecast prompts (2 context frames of 64 values in 1023 bins: ~150 prompt tokens,
66 completion tokens). Printed, measured in this run:

1. examples/second of ``sfm.harness.generate.generate`` (left-padded batches, KV cache) at several batch
   sizes, against a loop calling ``model.generate`` on one prompt at a time (same constraint, same greedy
   decoding); the speed-up, and how many completions are token-for-token the same as the loop's;
2. constrained (``ScheduleProcessor``: the frame layout is forced) against unconstrained generation, at the
   largest batch size, in examples/s and generated tokens/s;
3. autoregressive rollouts (``sfm.harness.forecast.model_rollout``, 5 steps; 3 with ``--quick``) in
   rollouts/second, batched against one example per call;
4. field-model rollouts (``sfm.harness.rollout.array_rollout``, what the harness runs for operator and
   continuous models) on the windows of ``eval/tasks/rollout/burgers-tiny.yaml`` (10 steps): all windows
   batched against a loop of one window per call, for an untrained FNO and continuous model of the tiny
   recipes' architectures, with the largest difference between the two (float32 batching noise only).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
# The quickstart's tiny backbone and data (recipes/quickstart.yaml), so the numbers describe what it runs.
TINY = {"hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 4, "num_attention_heads": 4,
        "num_key_value_heads": 2}  # fmt: skip
DATA = {"nu": [0.01, 0.03], "nx": 256, "nt": 21, "t_end": 1.0, "k_max": 2}
ROLLOUT_STEPS = 5


def banner(title: str) -> None:
    print(f"\n== {title} " + "=" * max(0, 74 - len(title)), flush=True)


def build(n_examples: int, workdir: Path) -> tuple[Any, Any, Any, list[list[int]]]:
    """The tiny model, the forecast format, the forecast set and ``n_examples`` prompts."""
    from sfm.data import generate_dataset, load_field_dataset
    from sfm.harness import forecast as fc
    from sfm.models.run import LoadedModel
    from sfm.tasks.forecast import Forecast
    from sfm.tokenize.fields import FieldCodec
    from sfm.tokenize.numbers import get_encoding
    from sfm.training import setup
    from sfm.training.examples import corpus_for_tokenizer

    generate_dataset("burgers", 24, workdir / "burgers", params=DATA, progress=False)
    fieldset = load_field_dataset(workdir / "burgers")
    fmt = Forecast(context_frames=2, horizon=1, space_stride=4)
    fs = fc.build_forecast_set(
        fieldset, "train", fmt, ROLLOUT_STEPS, windows_per_trajectory=8, limit=n_examples
    )
    codec = FieldCodec(get_encoding("bins", n_bins=1023, low=-4.0, high=4.0), list(fieldset.meta.fields))
    sci = setup.make_tokenizer(
        "tiny-llama", codec, corpus_for_tokenizer(fieldset.split("train"), fieldset.meta, fmt)
    )
    torch.manual_seed(0)
    model = setup.make_model("tiny-llama", sci, tiny=TINY)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    loaded = LoadedModel(model.to(device).eval(), sci, {}, None)
    prompts = [fmt.prompt(fs.contexts[i], fieldset.meta, fs.coefficients[i], sci)[0] for i in range(len(fs))]
    return loaded, fmt, fs, prompts


@torch.inference_mode()
def one_at_a_time(
    loaded: Any, prompts: list[list[int]], max_new: int, allowed: list[np.ndarray] | None
) -> list[list[int]]:
    """The plain loop: ``model.generate`` on each prompt alone (no padding, KV cache on)."""
    from transformers import LogitsProcessorList

    from sfm.harness.generate import ScheduleProcessor

    sci, model = loaded.sci, loaded.model
    vocab = model.get_output_embeddings().weight.shape[0]
    out = []
    for p in prompts:
        ids = torch.tensor([[sci.bos_id, *p]], device=loaded.device)
        procs = LogitsProcessorList(
            [ScheduleProcessor(allowed, vocab, ids.shape[1], sci.eos_id)] if allowed else []
        )
        gen = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new,
                             do_sample=False, num_beams=1, logits_processor=procs, pad_token_id=sci.pad_id,
                             eos_token_id=sci.eos_id, use_cache=True)  # fmt: skip
        out.append(gen[0, ids.shape[1] :].tolist())
    return out


def timed(fn: Any, repeats: int) -> tuple[float, Any]:
    """Best wall-clock seconds of ``repeats`` calls, and the last result (the model is warmed up in main)."""
    best, result = np.inf, None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def cpu_timed(fn: Any, repeats: int) -> tuple[float, Any]:
    """Like :func:`timed`, in this process's CPU seconds (one thread: what the code itself cost)."""
    best, result = np.inf, None
    for _ in range(repeats):
        t0 = time.process_time()
        result = fn()
        best = min(best, time.process_time() - t0)
    return best, result


def _tokens(outs: list[list[int]], eos: int) -> int:
    return sum(len(o[: o.index(eos) + 1]) if eos in o else len(o) for o in outs)


def batched_vs_loop(
    loaded: Any, fmt: Any, fs: Any, prompts: list[list[int]], sizes: list[int], repeats: int
) -> None:
    from sfm.harness.generate import generate

    banner(
        f"1. {len(prompts)} one-frame completions: batched generate() vs a one-at-a-time loop (constrained)"
    )
    space = fs.contexts.shape[3:]
    max_new, allowed = fmt.completion_length(space, loaded.sci), fmt.allowed_tokens(space, loaded.sci)
    t_loop, ref = timed(lambda: one_at_a_time(loaded, prompts, max_new, allowed), repeats)
    n = len(prompts)
    print(f"{'path':<28}{'seconds':>10}{'examples/s':>13}{'speed-up':>10}{'same tokens':>14}")
    print(f"{'loop, model.generate':<28}{t_loop:>10.3f}{n / t_loop:>13.1f}{1.0:>10.2f}{f'{n}/{n}':>14}")
    for b in sizes:
        t, outs = timed(lambda b=b: generate(loaded, prompts, max_new_tokens=max_new, allowed=allowed, batch_size=b),
                        repeats)  # fmt: skip
        same = sum(o == r for o, r in zip(outs, ref))
        print(f"{f'generate, batch {b}':<28}{t:>10.3f}{n / t:>13.1f}{t_loop / t:>10.2f}{f'{same}/{n}':>14}")


def constrained_vs_free(
    loaded: Any, fmt: Any, fs: Any, prompts: list[list[int]], batch: int, repeats: int
) -> None:
    from sfm.harness.generate import generate

    banner(f"2. constrained vs unconstrained generate(), batch {batch}")
    space = fs.contexts.shape[3:]
    max_new = fmt.completion_length(space, loaded.sci)
    print(f"{'mode':<16}{'seconds':>10}{'examples/s':>13}{'tokens/s':>11}{'valid frames':>15}")
    for name, allowed in (("constrained", fmt.allowed_tokens(space, loaded.sci)), ("unconstrained", None)):
        t, outs = timed(lambda a=allowed: generate(loaded, prompts, max_new_tokens=max_new, allowed=a, batch_size=batch),
                        repeats)  # fmt: skip
        scales = [
            fmt.prompt(fs.contexts[i], fs.info.meta, fs.coefficients[i], loaded.sci)[1]
            for i in range(len(outs))
        ]
        valid = np.mean([fmt.parse(o, space, s, loaded.sci).valid.mean() for o, s in zip(outs, scales)])
        tok = _tokens(outs, loaded.sci.eos_id)
        print(f"{name:<16}{t:>10.3f}{len(outs) / t:>13.1f}{tok / t:>11.0f}{valid:>15.0%}")


def rollouts(loaded: Any, fmt: Any, fs: Any, n: int, steps: int, batch: int, repeats: int) -> None:
    from sfm.harness import forecast as fc

    banner(f"3. {n} rollouts of {steps} steps (model_rollout, constrained): batched vs one per call")
    contexts = fs.contexts[:n]
    print(f"{'path':<24}{'seconds':>10}{'rollouts/s':>13}{'speed-up':>10}")
    base = None
    for b in (1, batch):
        t, _ = timed(lambda b=b: fc.model_rollout(loaded, fmt, fs, contexts, steps, batch_size=b, constrained=True),
                     repeats)  # fmt: skip
        base = base or t
        print(f"{f'batch {b}':<24}{t:>10.3f}{n / t:>13.2f}{base / t:>10.2f}")


FIELD_RECIPES = {
    "operator": ROOT / "recipes" / "tiny" / "operator" / "burgers-fno.yaml",
    "continuous": ROOT / "recipes" / "tiny" / "continuous" / "burgers-llama.yaml",
}


def field_model(kind: str, spec: Any) -> Any:
    """An untrained field predictor of a tiny recipe's architecture (rollout speed does not need training)."""
    from sfm.models.field_io import FieldPredictor
    from sfm.training.recipe import load_recipe

    torch.manual_seed(0)
    m = load_recipe(FIELD_RECIPES[kind]).model
    if kind == "operator":
        from sfm.models.operators import build_operator

        model = build_operator(spec, m.name_or_path, m.operator, m.fields)
    else:
        from sfm.models.continuous import build_continuous

        model = build_continuous(spec, m, fields=m.fields, encoder=m.encoder, peft_section=None)
    return FieldPredictor(kind, spec, model)


def field_rollouts(task_name: str, batch_size: int, repeats: int) -> None:
    """Section 4: ``array_rollout`` over all of a task's windows at once against one window per call."""
    from _common import field_spec, task_windows

    from sfm.harness.rollout import array_rollout

    task, win = task_windows(task_name)
    b = win.batch(np.arange(len(win)))
    ctx, coef, steps, n = b["context"], b["coefficients"], task.rollout_steps, len(win)
    banner(f"4. field-model rollouts (array_rollout): {n} windows x {steps} steps of {task_name}")
    print(
        f"{'model':<12}{'batched CPU-s':>14}{'per-window CPU-s':>18}{'windows/CPU-s':>15}{'speed-up':>10}"
        f"{'max |diff|':>12}"
    )
    spec = field_spec(win, _format(task))
    for kind in FIELD_RECIPES:
        predictor = field_model(kind, spec)
        array_rollout(predictor, ctx[:2], coef[:2], 1, batch_size=2)  # warm-up

        def loop(p=predictor):
            return np.concatenate(
                [
                    array_rollout(p, ctx[i : i + 1], coef[i : i + 1], steps, batch_size=1).frames
                    for i in range(n)
                ]
            )

        t_all, together = cpu_timed(
            lambda p=predictor: array_rollout(p, ctx, coef, steps, batch_size=batch_size).frames, repeats
        )
        t_one, alone = cpu_timed(loop, repeats)
        diff = float(np.max(np.abs(together - alone)))
        print(f"{kind:<12}{t_all:>14.3f}{t_one:>18.3f}{n / t_all:>15.0f}{t_one / t_all:>10.1f}{diff:>12.2e}")
    print(
        f"  (batched: batch_size {batch_size}, the recipes' evaluation.batch_size; per-window: batch_size 1;\n"
        "  CPU seconds of this process, best of the repeats: with one thread, other processes do not add to them)"
    )


def _format(task: Any) -> Any:
    from sfm.tasks import get_task_format

    return get_task_format("forecast", **task.format)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: fewer examples and batch sizes")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1, see below)")
    args = parser.parse_args()
    # One intra-op thread: this model's matrices are tiny, and on a shared CPU two threads spin-wait for each
    # other (measured here under load: 1 thread 1.1 s, 2 threads 9-52 s for the same 8 completions).
    torch.set_num_threads(args.threads)
    # quick: ~1 minute on a busy 2-core CPU; full: a few minutes
    n, sizes, repeats, n_roll, steps = (
        (8, [1, 8], 1, 8, 3) if args.quick else (64, [1, 8, 32, 64], 2, 32, ROLLOUT_STEPS)
    )
    with tempfile.TemporaryDirectory() as tmp:
        loaded, fmt, fs, prompts = build(n, Path(tmp))
    params = sum(p.numel() for p in loaded.model.parameters())
    print(f"device {loaded.device}, torch threads {torch.get_num_threads()}, model {params / 1e6:.2f} M parameters, "
          f"vocabulary {len(loaded.sci)}, prompts of {len(prompts[0])} tokens")  # fmt: skip
    from sfm.harness.generate import generate

    generate(loaded, prompts[:2], max_new_tokens=4, batch_size=2)  # warm-up: first-call allocations, kernels
    batched_vs_loop(loaded, fmt, fs, prompts, sizes, repeats)
    constrained_vs_free(loaded, fmt, fs, prompts, sizes[-1], repeats)
    rollouts(loaded, fmt, fs, n_roll, steps, sizes[-1] if n_roll >= sizes[-1] else n_roll, 1)
    field_rollouts("rollout/burgers-tiny", 64, repeats + 1)


if __name__ == "__main__":
    main()
