"""Fine-tune a backbone on science data from a recipe.

The same file runs under plain python and under ``accelerate launch`` (DDP, DeepSpeed ZeRO-2/3, FSDP):

    python -m sfm.train recipes/quickstart.yaml
    python -m sfm.train recipes/quickstart.yaml --training.max_steps 50 --peft.r 8
    accelerate launch --config_file launch/accelerate/cpu_zero2.yaml -m sfm.train recipes/tiny/burgers-forecast/lora.yaml
    accelerate launch --config_file launch/accelerate/deepspeed_zero3.yaml -m sfm.train recipes/llama-3.1-8b/burgers-forecast/lora.yaml

An existing run folder resumes from its last checkpoint (``--resume never`` starts over, ``--resume PATH``
picks a checkpoint).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sfm.errors import SfmError

log = logging.getLogger("sfm.train")


@dataclass
class TrainResult:
    """What a training run produced."""

    output_dir: Path
    train_loss: list[float]
    eval_loss: float | None
    facts: dict[str, Any]
    metrics: dict[str, Any]


def banner(text: str) -> None:
    """A stage banner on the main process."""
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"==> {text}", flush=True)


def resolve_deepspeed_config() -> None:
    """Let ``launch/accelerate/*.yaml`` name ``launch/deepspeed/*.json`` relative to the repository.

    accelerate passes the path through ``ACCELERATE_DEEPSPEED_CONFIG_FILE`` verbatim, so a launch from outside
    the repository root would not find it; resolve it against the sfm checkout when the current folder lacks it.
    """
    key = "ACCELERATE_DEEPSPEED_CONFIG_FILE"
    path = os.environ.get(key)
    if path and not Path(path).is_absolute() and not Path(path).is_file():
        candidate = Path(__file__).resolve().parents[1] / path
        if candidate.is_file():
            os.environ[key] = str(candidate)


def parse_args(argv: Sequence[str] | None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(prog="python -m sfm.train", description=__doc__.split("\n\n")[0])
    parser.add_argument("recipe", help="recipe YAML file")
    parser.add_argument(
        "--resume",
        default="auto",
        help="auto (default): continue an existing run folder; never: start over; or a checkpoint folder",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser.parse_known_args(argv)


def run(
    recipe: Any,
    *,
    resume: str = "auto",
    progress: bool = True,
    recipe_path: str | None = None,
    run_eval: bool = True,
) -> TrainResult:
    """Train from a loaded :class:`~sfm.training.recipe.Recipe`; the library form of ``python -m sfm.train``.

    With ``run_eval`` and ``evaluation.tasks`` in the recipe, the saved run is then evaluated on those tasks
    (examples sharded across the launch's processes) into ``<output_dir>/eval/``.
    """
    import torch
    from transformers import TrainingArguments, set_seed

    from sfm.tasks import get_task_format
    from sfm.tokenize.fields import FieldCodec
    from sfm.tokenize.numbers import get_encoding
    from sfm.training import data as td
    from sfm.training import setup
    from sfm.training.collators import make_collator
    from sfm.training.peft_setup import apply_peft, quantization_config
    from sfm.training.recipe import recipe_to_dict
    from sfm.training.trainer import CheckpointGuard, JsonlLogger, SfmTrainer, distributed_facts

    d, m, p, t = recipe.data, recipe.model, recipe.peft, recipe.training
    out = Path(t.output_dir)

    banner("seed")
    resolve_deepspeed_config()
    set_seed(t.seed)
    qconfig = quantization_config(p.method)  # QLoRA without CUDA fails here, before any data is built

    banner("data")
    main = td.Source(d.path, d.simulator, d.params, d.num_samples, d.seed)
    mixed = [td.Source(x.path, x.simulator, x.params, x.num_samples, x.seed) for x in d.mixture]
    sources = td.load_sources(
        [main, *mixed],
        equations=d.equations,
        equations_path=d.path if d.equations is not None else None,
        train_trajectories=d.train_trajectories,
        num_proc=d.num_proc,
        progress=progress,
    )
    task = get_task_format(d.task, **d.task_options)
    codec = FieldCodec(get_encoding(d.encoding, **d.encoding_options), fields=sources.fields)

    banner("tokenizer")
    sci = setup.make_tokenizer(
        m.name_or_path,
        codec,
        td.corpus(sources, task),
        vocab_size=m.tokenizer_vocab_size,
        revision=m.revision,
        trust_remote_code=m.trust_remote_code,
    )
    train_ds = td.examples(
        sources.train,
        task,
        sci,
        seed=d.seed,
        max_samples=d.max_train_samples,
        max_length=d.max_length,
        num_proc=d.num_proc,
    )
    eval_ds = None
    if t.eval_steps:
        eval_ds = td.examples(
            sources.validation,
            task,
            sci,
            seed=d.seed + 1,
            max_samples=d.max_eval_samples,
            max_length=d.max_length,
            num_proc=d.num_proc,
        )
    # Plain Python rows for the DataLoader: the numpy format inherited from the field data costs ~4 ms a batch
    # for arrays the collators rebuild anyway, sfm's largest per-step overhead over a bare Trainer (bench/train.py).
    train_ds = train_ds.with_format(None)
    eval_ds = eval_ds.with_format(None) if eval_ds is not None else None

    banner("model")
    # TrainingArguments before the model: under DeepSpeed ZeRO-3 they register the DeepSpeed config, so
    # from_pretrained partitions a Hub model across the ranks while loading (deepspeed.zero.Init) instead of
    # every rank holding all of it in host memory (8 ranks x 141 GB for a 70B model). Tiny backbones are
    # still built whole (setup.make_model), so their base can be saved before training.
    # TensorBoard events go to <run>/logs (transformers 5 reads the folder from this variable).
    os.environ["TENSORBOARD_LOGGING_DIR"] = str(out / "logs")
    grad_accum = setup.resolve_batch(
        t.per_device_train_batch_size, t.gradient_accumulation_steps, setup.world_size(), t.global_batch_size
    )
    args = TrainingArguments(
        output_dir=str(out),
        max_steps=t.max_steps,
        num_train_epochs=t.num_train_epochs,
        per_device_train_batch_size=t.per_device_train_batch_size,
        per_device_eval_batch_size=t.per_device_eval_batch_size,
        gradient_accumulation_steps=grad_accum,
        learning_rate=t.learning_rate,
        lr_scheduler_type=t.lr_scheduler_type,
        warmup_steps=t.warmup_ratio,
        weight_decay=t.weight_decay,
        max_grad_norm=t.max_grad_norm,
        optim=t.optim,
        seed=t.seed,
        bf16=t.bf16,
        fp16=t.fp16,
        gradient_checkpointing=t.gradient_checkpointing,
        logging_steps=t.logging_steps,
        eval_strategy="steps" if eval_ds is not None else "no",
        eval_steps=t.eval_steps,
        save_strategy="steps",
        save_steps=t.save_steps,
        save_total_limit=t.save_total_limit,
        report_to=t.report_to,
        dataloader_num_workers=t.dataloader_num_workers,
        remove_unused_columns=False,
        # On CPU, DDP and DeepSpeed need use_cpu: without it DDP silently trains independent copies.
        use_cpu=t.use_cpu or not torch.cuda.is_available(),
        use_cache=False,  # no KV cache in training; also lets packed batches get a block-diagonal mask
        disable_tqdm=not progress,
        save_only_model=False,
    )
    model = setup.make_model(
        m.name_or_path,
        sci,
        tiny=m.tiny,
        revision=m.revision,
        torch_dtype=m.torch_dtype,
        attn_implementation=m.attn_implementation,
        trust_remote_code=m.trust_remote_code,
        quantization_config=qconfig,
        embedding_init=m.embedding_init,
        init=m.init,
    )
    loaded_partitioned = setup.is_partitioned(model)
    is_main = int(os.environ.get("RANK", "0")) == 0
    if setup.is_tiny(m.name_or_path) and is_main and not (out / setup.BASE_DIR).is_dir():
        setup.save_base(model, sci, out / setup.BASE_DIR)
    # A model built whole (tiny backbones) is wrapped whole too, and DeepSpeed partitions it when training starts.
    with contextlib.nullcontext() if loaded_partitioned else setup.whole_model_init():
        model = apply_peft(
            model,
            method=p.method,
            r=p.r,
            alpha=p.alpha,
            dropout=p.dropout,
            target_modules=p.target_modules,
            new_tokens=p.new_tokens,
            new_token_ids=sci.new_token_ids,
            trainable_modules=p.trainable_modules,
            gradient_checkpointing=t.gradient_checkpointing,
        )

    banner("trainer")
    collator = make_collator(
        seq2seq=setup.is_seq2seq(model), packing=d.packing, pad_id=sci.pad_id, bos_id=sci.bos_id
    )
    trainer = SfmTrainer(
        model=model, args=args, train_dataset=train_ds, eval_dataset=eval_ds, data_collator=collator
    )
    trainer.add_callback(JsonlLogger(out / "metrics.jsonl"))
    trainer.add_callback(CheckpointGuard(trainer))
    if os.environ.get("SFM_FAULT_KILL_AT_STEP"):
        from sfm.training.trainer import FaultInjector

        trainer.add_callback(FaultInjector(int(os.environ["SFM_FAULT_KILL_AT_STEP"])))
    facts = {**distributed_facts(trainer), "zero3_init": loaded_partitioned}
    banner(
        f"train on {facts['world_size']} process(es), {facts['distributed_type']}"
        + (f", ZeRO-{facts['zero_stage']}" if facts["zero_stage"] else "")
    )

    checkpoint = None
    if resume == "auto":
        checkpoint = setup.last_checkpoint(out)
    elif resume != "never":
        checkpoint = Path(resume)
        if not checkpoint.is_dir():
            raise SfmError(f"--resume {resume}: no such checkpoint folder")
    if checkpoint is not None:
        setup.check_resume(checkpoint, facts)
        banner(f"resuming from {checkpoint}")
    result = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)

    banner("save")
    history = trainer.state.log_history
    losses = [h["loss"] for h in history if "loss" in h]
    eval_loss = next((h["eval_loss"] for h in reversed(history) if "eval_loss" in h), None)
    trainer.save_model(
        str(out)
    )  # gathers 16-bit weights under ZeRO-3 (stage3_gather_16bit_weights_on_model_save)
    from sfm.training.trainer import verify_saved_adapter

    verify_saved_adapter(trainer.model, out, trainer)
    if trainer.is_world_process_zero():
        sci.save(out)
        from sfm.models.backbones import count_parameters

        trainable, total = count_parameters(model)
        record = {
            "recipe": recipe_to_dict(recipe),
            "recipe_path": recipe_path,
            "base_model": m.name_or_path,
            "tiny_base": setup.is_tiny(m.name_or_path),
            "data": {**sources.record, "num_train_examples": len(train_ds)},
            "task": {"name": d.task, "options": d.task_options},
            "encoding": codec.config(),
            "parameters": {"trainable": trainable, "total": total},
            "train": {
                "steps": trainer.state.global_step,
                "loss_history": losses,
                "train_loss": result.training_loss,
                "eval_loss": eval_loss,
                "runtime_s": result.metrics.get("train_runtime"),
                "tokens": int(
                    sum(len(a) + len(b) for a, b in zip(train_ds["prompt"], train_ds["completion"]))
                ),
            },
            "distributed": facts,
        }
        setup.write_run_record(out, record)
    trainer.accelerator.wait_for_everyone()

    metrics = dict(result.metrics)
    ev = recipe.evaluation
    if run_eval and ev.tasks:
        banner(f"eval {', '.join(ev.tasks)}")
        from sfm.harness.report import print_summary
        from sfm.harness.runner import evaluate

        del trainer, model  # free the training copy: evaluation loads the saved run like any user would
        results = evaluate(
            str(out),
            list(ev.tasks),
            out / "eval",
            limit=ev.limit,
            batch_size=ev.batch_size,
            seed=t.seed,
            progress=progress,
        )
        if is_main:
            print_summary(results)
        metrics["eval_results"] = str(out / "eval" / "results.json")
    return TrainResult(out, losses, eval_loss, facts, metrics)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m sfm.train RECIPE [--key value ...]``; returns the exit status."""
    from sfm.training.recipe import load_recipe

    args, overrides = parse_args(argv)
    try:
        recipe = load_recipe(args.recipe, overrides)
        run(recipe, resume=args.resume, progress=not args.no_progress, recipe_path=args.recipe)
    except SfmError as exc:
        print(f"sfm.train: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
