"""Generate completions of a loaded token run (:func:`sfm.models.run.load_model`): batched, KV-cached,
optionally constrained.

Constrained generation knows the layout of a completion (a frame marker, then exactly the right number of
value tokens, then EOS): at each position only the tokens valid there may be emitted, so structure never
breaks and the model only chooses values. Unconstrained generation is available to measure how often a
model's free output is valid.
"""

from __future__ import annotations

import numpy as np
import torch
from transformers import LogitsProcessor, LogitsProcessorList

from sfm.models.run import LoadedModel


class ScheduleProcessor(LogitsProcessor):
    """Masks the logits of every token not allowed at the current completion position.

    Args:
        allowed: Per completion position, the allowed backbone ids (positions past the end allow EOS only).
        vocab_size: Logit width.
        prompt_length: Length of the (padded) prompt; for encoder-decoder models the decoder start token.
        eos_id: Emitted once the schedule is exhausted.
    """

    def __init__(self, allowed: list[np.ndarray], vocab_size: int, prompt_length: int, eos_id: int) -> None:
        # Few distinct sets (frame marker, value slots, EOS): store each once and index them per position.
        keys: dict[bytes, int] = {}
        masks: list[torch.Tensor] = []
        self.position_class: list[int] = []
        for ids in [*allowed, np.array([eos_id])]:
            key = np.sort(np.asarray(ids, dtype=np.int64)).tobytes()
            if key not in keys:
                mask = torch.full((vocab_size,), float("-inf"))
                mask[torch.as_tensor(np.asarray(ids, dtype=np.int64))] = 0.0
                keys[key] = len(masks)
                masks.append(mask)
            self.position_class.append(keys[key])
        self.masks = torch.stack(masks)
        self.prompt_length = prompt_length

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        pos = min(input_ids.shape[1] - self.prompt_length, len(self.position_class) - 1)
        mask = self.masks[self.position_class[pos]].to(scores.device, scores.dtype)
        return scores + mask[: scores.shape[1]]


@torch.inference_mode()
def generate(
    loaded: LoadedModel,
    prompts: list[list[int]],
    *,
    max_new_tokens: int,
    allowed: list[np.ndarray] | None = None,
    batch_size: int = 8,
) -> list[list[int]]:
    """Greedy completions of ``prompts`` (batched, left-padded, KV cache on).

    Args:
        loaded: The model.
        prompts: Prompt ids (without BOS; added here when the backbone uses one).
        max_new_tokens: Completion budget.
        allowed: Constrained schedule (see :class:`ScheduleProcessor`), or None for free generation.
        batch_size: Prompts per ``generate`` call.

    Returns:
        The generated ids of each prompt (prompt and padding stripped).
    """
    sci, model = loaded.sci, loaded.model
    bos = [] if (sci.bos_id is None or loaded.seq2seq) else [sci.bos_id]
    out: list[list[int]] = []
    # Sort by length so each batch pads little; restore the order at the end.
    order = np.argsort([len(p) for p in prompts], kind="stable")
    results: dict[int, list[int]] = {}
    for start in range(0, len(prompts), batch_size):
        idx = order[start : start + batch_size]
        seqs = [bos + list(prompts[i]) for i in idx]
        n = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), n), sci.pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), n), dtype=torch.long)
        for r, s in enumerate(seqs):  # left padding: every prompt ends where generation starts
            ids[r, n - len(s) :] = torch.as_tensor(s)
            mask[r, n - len(s) :] = 1
        ids, mask = ids.to(loaded.device), mask.to(loaded.device)
        processors = LogitsProcessorList()
        if allowed is not None:
            prompt_len = 1 if loaded.seq2seq else n
            vocab = (
                model.get_output_embeddings().weight.shape[0]
                if hasattr(model, "get_output_embeddings")
                else len(sci)
            )
            processors.append(ScheduleProcessor(allowed, vocab, prompt_len, sci.eos_id))
        gen = model.generate(
            input_ids=ids,
            attention_mask=mask,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            num_beams=1,
            logits_processor=processors,
            pad_token_id=sci.pad_id,
            eos_token_id=sci.eos_id,
            use_cache=True,
        )
        gen = gen[:, 1:] if loaded.seq2seq else gen[:, n:]
        for r, i in enumerate(idx):
            results[int(i)] = gen[r].tolist()
    for i in range(len(prompts)):
        out.append(results[i])
    return out
