"""Training-loop benchmarks: sfm.train's overhead over a bare Trainer, and packing against padding.

    python bench/train.py            # the full run (a few minutes on 2 CPU cores)
    python bench/train.py --quick    # a smoke run (about a minute)

Prints, measured in this run on a tiny Llama-architecture backbone (built from a config, CPU):

1. tokens per second of the training loop (every token of every example counts) of ``sfm.train.run`` on the
   tiny burgers-forecast LoRA twin, against a bare script on the *same* examples, initial weights and
   hyperparameters: ``transformers.Trainer`` + ``peft.get_peft_model`` + ``DataCollatorForSeq2Seq``, none of
   sfm's guards (NaN check, JSONL log, checkpoint checks). The ratio sfm time / bare time is sfm's overhead
   (1.00 = none).
2. effective (non-padding) tokens per second on variable-length examples -- forecast windows of 1, 2 and 3
   frames at space strides 4 and 8, mixed -- for every ``training.batching``: ``padding``,
   ``group_by_length`` (the Trainer's length-grouped sampler), ``packing`` (examples bin-packed into rows as
   long as the batch's longest) and ``flatten`` (one row per batch), each as a ratio to padding;
3. the padding of the tiny symbolic-regression and PDE-identification recipes' examples, which bounds what
   any batching can win on them.

Each configuration runs as many times as ``--repeats`` (alternating, so a busy machine disturbs both alike)
and reports its best run: other processes only ever add time. Times are taken by one callback that every
Trainer of this process gets (``transformers.trainer.DEFAULT_CALLBACKS``), from the start to the end of the
training loop: wall seconds, and the process's CPU seconds -- with one thread, the CPU time is what the loop
itself cost, unaffected by other processes sharing the cores, so the ratios use it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, ClassVar

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "tiny" / "llama" / "burgers-forecast" / "lora.yaml"


class LoopClock:
    """Wall and CPU seconds of every training loop run in this process (appended to :attr:`runs`)."""

    runs: ClassVar[list[tuple[float, float]]] = []

    @classmethod
    def install(cls) -> None:
        import transformers.trainer
        from transformers import TrainerCallback

        class _Clock(TrainerCallback):
            def on_train_begin(self, args, state, control, **kwargs):
                self.start = (time.perf_counter(), time.process_time())

            def on_train_end(self, args, state, control, **kwargs):
                cls.runs.append((time.perf_counter() - self.start[0], time.process_time() - self.start[1]))

        transformers.trainer.DEFAULT_CALLBACKS.append(_Clock)

    @classmethod
    def last(cls) -> tuple[float, float]:
        return cls.runs[-1]


def banner(title: str) -> None:
    print(f"\n== {title} " + "=" * max(0, 74 - len(title)), flush=True)


def bench_recipe(home: Path, quick: bool) -> Any:
    """The LoRA twin, sized for timing: one epoch over a fixed example set, batch 8, a checkpoint only at the
    end (the Trainer saves one when the last step is reached), no log lines."""
    from sfm.training.recipe import load_recipe

    overrides = {
        "data.params": "{nu: [0.02, 0.1], nx: 128, nt: 21, t_end: 1.0, k_max: 2}",
        "data.num_samples": "24",
        "data.max_train_samples": "64" if quick else "256",
        "data.task_options": "{context_frames: 2, horizon: 1, space_stride: 4}",
        "training.max_steps": "-1",
        "training.num_train_epochs": "1",
        "training.global_batch_size": "null",
        "training.per_device_train_batch_size": "8",
        "training.gradient_checkpointing": "false",
        "training.save_steps": "100000",
        "training.logging_steps": "1000",
        "peft.dropout": "0.0",
        "training.output_dir": str(home / "runs" / "sfm"),
    }
    return load_recipe(RECIPE, [item for key, value in overrides.items() for item in (f"--{key}", value)])


def quiet(fn, *args, **kwargs):
    """Call ``fn`` with its stage banners and the Trainer's log lines kept off the table."""
    with open(os.devnull, "w") as null, contextlib.redirect_stdout(null):
        return fn(*args, **kwargs)


def run_sfm(recipe: Any, out: Path) -> tuple[float, float]:
    """(wall, CPU) seconds of the training loop of ``sfm.train.run``."""
    import dataclasses

    from sfm.train import run

    recipe = dataclasses.replace(recipe, training=dataclasses.replace(recipe.training, output_dir=str(out)))
    quiet(run, recipe, resume="never", progress=False)
    return LoopClock.last()


def examples_like_sfm(recipe: Any, run_dir: Path) -> tuple[Any, Any]:
    """The examples ``sfm.train`` trained on (same tokenizer from the run folder, same seed) and the tokenizer."""
    from sfm.data import cache, load_field_dataset
    from sfm.tasks import get_task_format
    from sfm.tokenize.vocab import ScienceTokenizer
    from sfm.training import examples as ex

    d = recipe.data
    path = cache.resolve_data_path(d.path, d.simulator, d.params, d.num_samples, d.seed)
    fieldset = load_field_dataset(path)
    sci = ScienceTokenizer.load(run_dir)
    task = get_task_format(d.task, **d.task_options)
    ds = ex.build_examples(
        fieldset.split("train"),
        fieldset.meta,
        task,
        sci,
        seed=d.seed,
        max_samples=d.max_train_samples,
        max_length=d.max_length,
    )
    return ds, sci


def run_bare(recipe: Any, ds: Any, sci: Any, base_dir: Path, out: Path) -> tuple[float, float]:
    """(wall, CPU) seconds of a plain Trainer + PEFT script's loop on the same examples and initial weights."""
    import datasets
    import torch
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers import (
        AutoModelForCausalLM,
        DataCollatorForSeq2Seq,
        Trainer,
        TrainingArguments,
        set_seed,
    )

    from sfm.models.backbones import LORA_TARGETS

    p, t = recipe.peft, recipe.training
    bos = [] if sci.bos_id is None else [sci.bos_id]
    rows = {"input_ids": [], "labels": []}
    for prompt, completion in zip(ds["prompt"], ds["completion"]):
        prompt, completion = [int(i) for i in prompt], [int(i) for i in completion]
        rows["input_ids"].append(bos + prompt + completion)
        rows["labels"].append([-100] * (len(bos) + len(prompt)) + completion)
    train = datasets.Dataset.from_dict(rows)
    set_seed(t.seed)
    model = AutoModelForCausalLM.from_pretrained(base_dir)
    ids = list(sci.new_token_ids)
    model = get_peft_model(
        model,
        LoraConfig(
            r=p.r,
            lora_alpha=p.alpha,
            lora_dropout=p.dropout,
            target_modules=LORA_TARGETS["llama"],
            trainable_token_indices={"embed_tokens": ids, "lm_head": ids},
            task_type=TaskType.CAUSAL_LM,
        ),
    )
    args = TrainingArguments(
        output_dir=str(out),
        num_train_epochs=t.num_train_epochs,
        per_device_train_batch_size=8,
        learning_rate=t.learning_rate,
        lr_scheduler_type=t.lr_scheduler_type,
        seed=t.seed,
        logging_steps=t.logging_steps,
        # The same checkpoints as sfm.train: the Trainer saves one when the last step is reached
        save_strategy="steps",
        save_steps=t.save_steps,
        save_total_limit=t.save_total_limit,
        report_to=[],
        use_cpu=not torch.cuda.is_available(),
        disable_tqdm=True,
    )
    collator = DataCollatorForSeq2Seq(sci.tokenizer, pad_to_multiple_of=8, label_pad_token_id=-100)
    quiet(Trainer(model=model, args=args, train_dataset=train, data_collator=collator).train)
    return LoopClock.last()


def overhead(home: Path, quick: bool, repeats: int) -> None:
    banner("sfm.train vs a bare Trainer + PEFT script (same examples, weights, hyperparameters)")
    recipe = bench_recipe(home, quick)
    warm = home / "runs" / "warm"
    # The first run builds the data and warms imports and the allocator; its base is the bare runs' start.
    run_sfm(recipe, warm)
    ds, sci = examples_like_sfm(recipe, warm)
    tokens = sum(len(a) + len(b) + (sci.bos_id is not None) for a, b in zip(ds["prompt"], ds["completion"]))
    run_bare(recipe, ds, sci, warm / "base", home / "runs" / "bare-warm")
    times: dict[str, list[tuple[float, float]]] = {"sfm.train.run": [], "bare Trainer + PEFT": []}
    for i in range(repeats):
        times["sfm.train.run"].append(run_sfm(recipe, home / "runs" / f"sfm-{i}"))
        times["bare Trainer + PEFT"].append(
            run_bare(recipe, ds, sci, warm / "base", home / "runs" / f"bare-{i}")
        )
    print(f"  {len(ds)} examples, {tokens:,} tokens, batch 8, 1 epoch, {repeats} alternating runs each")
    print(f"  {'loop':<22}{'wall s':>9}{'CPU s':>8}{'tokens/s (wall)':>17}{'tokens/CPU-s':>14}")
    for name, ts in times.items():
        wall, cpu = min(t[0] for t in ts), min(t[1] for t in ts)
        print(f"  {name:<22}{wall:>9.3f}{cpu:>8.3f}{tokens / wall:>17,.0f}{tokens / cpu:>14,.0f}")
    sfm_cpu, bare_cpu = (min(t[1] for t in times[k]) for k in times)
    sfm_wall, bare_wall = (min(t[0] for t in times[k]) for k in times)
    print(
        f"  overhead, sfm / bare (best runs): {sfm_cpu / bare_cpu:.3f} in CPU time, {sfm_wall / bare_wall:.3f} wall"
    )


def mixed_examples(home: Path, quick: bool) -> tuple[Any, Any, Any]:
    """Variable-length examples: forecast windows of 1-3 frames at space strides 4 and 8, shuffled together."""
    import datasets

    from sfm.data import cache, load_field_dataset
    from sfm.tasks import get_task_format
    from sfm.tokenize.vocab import ScienceTokenizer
    from sfm.training import examples as ex

    run_dir = home / "runs" / "warm"
    recipe = bench_recipe(home, quick)
    d = recipe.data
    fieldset = load_field_dataset(
        cache.resolve_data_path(d.path, d.simulator, d.params, d.num_samples, d.seed)
    )
    sci = ScienceTokenizer.load(run_dir)
    parts = []
    for horizon in (1, 2, 3):
        for stride in (4, 8):
            task = get_task_format("forecast", context_frames=2, horizon=horizon, space_stride=stride)
            parts.append(
                ex.build_examples(
                    fieldset.split("train"),
                    fieldset.meta,
                    task,
                    sci,
                    seed=horizon,
                    max_samples=24 if quick else 96,
                )
            )
    return datasets.concatenate_datasets(parts).shuffle(seed=0), sci, run_dir / "base"


def run_collator(
    ds: Any, sci: Any, base_dir: Path, out: Path, batching: str
) -> tuple[float, float, int, int]:
    """(wall s, CPU s, real tokens, tokens computed incl. padding) of SfmTrainer with one ``training.batching``."""
    import dataclasses

    import torch
    from transformers import AutoModelForCausalLM, TrainingArguments, set_seed

    from sfm.training.args import sampling_arguments
    from sfm.training.collators import make_collator
    from sfm.training.peft_setup import apply_peft
    from sfm.training.tokens import with_lengths
    from sfm.training.trainer import SfmTrainer

    set_seed(0)
    model = apply_peft(
        AutoModelForCausalLM.from_pretrained(base_dir),
        method="lora",
        r=16,
        alpha=32,
        dropout=0.0,
        target_modules=None,
        new_tokens="rows",
        new_token_ids=sci.new_token_ids,
        trainable_modules=[],
    )
    collator = make_collator(seq2seq=False, batching=batching, pad_id=sci.pad_id, bos_id=sci.bos_id)
    if batching == "group_by_length":
        ds = with_lengths(ds)
    names = {f.name for f in dataclasses.fields(TrainingArguments)}
    args = TrainingArguments(
        output_dir=str(out),
        num_train_epochs=1,
        per_device_train_batch_size=8,
        seed=0,
        learning_rate=1e-3,
        save_strategy="no",
        report_to=[],
        logging_steps=1000,
        use_cpu=not torch.cuda.is_available(),
        disable_tqdm=True,
        remove_unused_columns=False,
        **sampling_arguments(batching, names),
    )
    trainer = SfmTrainer(model=model, args=args, train_dataset=ds, data_collator=collator)
    # the batches this trainer's sampler draws (group_by_length reorders them), through its collator
    computed = sum(
        collator([ds[i] for i in batch])["input_ids"].numel()
        for batch in trainer.get_train_dataloader().batch_sampler
    )
    quiet(trainer.train)
    real = sum(len(a) + len(b) + (sci.bos_id is not None) for a, b in zip(ds["prompt"], ds["completion"]))
    return (*LoopClock.last(), real, computed)


BATCHINGS = ("padding", "group_by_length", "packing", "flatten")


def batching(home: Path, quick: bool, repeats: int) -> None:
    banner("training.batching on variable-length examples (effective = non-padding tokens)")
    ds, sci, base = mixed_examples(home, quick)
    lengths = [len(a) + len(b) for a, b in zip(ds["prompt"], ds["completion"])]
    print(
        f"  {len(ds)} examples of {min(lengths)}-{max(lengths)} tokens (mean {statistics.mean(lengths):.0f}), "
        f"batch 8, 1 epoch, {repeats} alternating runs each"
    )
    results: dict[str, list[tuple[float, float, int, int]]] = {name: [] for name in BATCHINGS}
    for i in range(repeats + 1):  # the first round warms up
        for name in results:
            r = run_collator(ds, sci, base, home / "runs" / f"{name}-{i}", batching=name)
            if i:
                results[name].append(r)
    print(
        f"  {'batching':<16}{'wall s':>8}{'CPU s':>8}{'computed tokens':>17}{'padding':>9}"
        f"{'effective tok/s (wall)':>24}{'tok/CPU-s':>11}{'/ padding':>11}"
    )
    best = {}
    for name, rs in results.items():
        wall, cpu = min(r[0] for r in rs), min(r[1] for r in rs)
        real, computed = rs[0][2], rs[0][3]
        best[name] = real / cpu
        print(
            f"  {name:<16}{wall:>8.3f}{cpu:>8.3f}{computed:>17,}{1 - real / computed:>9.1%}{real / wall:>24,.0f}"
            f"{real / cpu:>11,.0f}{best[name] / best['padding']:>11.2f}"
        )
    print("  (/ padding: effective tokens per CPU-second against padding's, best runs)")


def recipe_padding(home: Path) -> None:
    """The padding the shipped variable-length token recipes carry: the most any batching can win there."""
    import numpy as np

    from sfm.train import load_sources
    from sfm.training.recipe import load_recipe
    from sfm.training.tokens import prepare_tokens

    banner("padding in the tiny symbolic and identify recipes (batch 8, random batches)")
    for name in ("symbolic", "identify"):
        out = home / "runs" / f"recipe-{name}"
        recipe = load_recipe(
            ROOT / "recipes" / "tiny" / name / "lora.yaml", ["--training.output_dir", str(out)]
        )
        prepared = quiet(
            prepare_tokens, recipe, quiet(load_sources, recipe, progress=False), out, progress=False
        )
        ds, bos = prepared.train_dataset, int(prepared.sci.bos_id is not None)
        lengths = np.array([len(a) + len(b) + bos for a, b in zip(ds["prompt"], ds["completion"])])
        rows = np.random.default_rng(0).permutation(lengths)
        batches = [b for b in np.array_split(rows, max(1, len(rows) // 8)) if b.size]
        computed = sum(-(-int(b.max()) // 8) * 8 * b.size for b in batches)
        pad = 1 - lengths.sum() / computed
        print(
            f"  {name:<9} {len(ds)} examples of {lengths.min()}-{lengths.max()} tokens: padding {pad:.1%}, "
            f"so no batching can beat padding by more than {1 / (1 - pad):.2f}x there"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: fewer examples, one repeat")
    parser.add_argument("--repeats", type=int, help="runs per configuration (default 3, quick 1)")
    parser.add_argument(
        "--home", help="SFM_HOME for the benchmark's data and runs (default: a temporary folder)"
    )
    args = parser.parse_args()
    repeats = args.repeats or (1 if args.quick else 3)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    with tempfile.TemporaryDirectory(prefix="sfm-bench-train-") as tmp:
        home = Path(args.home or tmp)
        os.environ["SFM_HOME"] = str(home)
        import torch

        LoopClock.install()
        print(
            f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), "
            f"{'CUDA' if torch.cuda.is_available() else 'CPU'}"
        )
        start = time.perf_counter()
        overhead(home, args.quick, repeats)
        batching(home, args.quick, repeats)
        recipe_padding(home)
        print(f"\n(total {time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
