"""Tokenization benchmarks: number-encoding throughput and tokens per trajectory.

    python bench/tokenization.py            # the full run (about 20 s)
    python bench/tokenization.py --quick    # a smoke run (about 3 s)

Prints, measured in this run:

1. values per second of ``encode_batch`` + ``decode_batch`` for every registered number encoding at its
   default options, on one array of 256 samples x 512 float32 values (the shape Chronos benchmarks use),
   as a ratio to a plain numpy copy of the same array (the memory-bandwidth ceiling) and, when the optional
   ``chronos-forecasting`` package is importable, to its ``MeanScaleUniformBins`` tokenizer on the same
   array (nothing is installed or downloaded: without the package that column is skipped);
2. tokens per trajectory through :class:`~sfm.tokenize.fields.FieldCodec` for a 1D (41 x 128) and a 2D
   (21 x 64 x 64) single-field trajectory, header included, and the codec's encode+decode time for each.

Every time is the best of as many repeats as fit in a time budget, after a warm-up, so a busy machine
shows its least-disturbed run.
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from collections.abc import Callable

import numpy as np

from sfm.registry import ENCODINGS
from sfm.tokenize.fields import FieldCodec
from sfm.tokenize.numbers import get_encoding


def banner(title: str) -> None:
    print(f"\n== {title} " + "=" * max(0, 74 - len(title)), flush=True)


def best_time(fn: Callable[[], object], budget: float) -> float:
    """Smallest wall time of one call, over as many calls as fit in ``budget`` seconds (at least 3).

    The minimum, not the mean: on a shared machine every other process only ever adds time, so the least
    disturbed call is the closest to the code's own cost.
    """
    fn()  # warm-up: caches, allocator, lazy imports
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < 3 or time.perf_counter() - start < budget:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def sample_array(n: int = 256, m: int = 512, seed: int = 0) -> np.ndarray:
    """Smooth fields plus noise, each sample at its own magnitude (1e-3 .. 1e3), float32 like stored data."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, m)
    phase = rng.uniform(0, 2 * np.pi, (n, 1))
    x = np.sin(2 * np.pi * 3 * t + phase) + 0.1 * rng.standard_normal((n, m))
    return (x * 10.0 ** rng.uniform(-3, 3, (n, 1))).astype(np.float32)


def chronos_round_trip() -> tuple[Callable[[np.ndarray], object] | None, str]:
    """A Chronos encode+decode function, or None and the reason it is skipped."""
    if importlib.util.find_spec("chronos") is None:
        return None, "chronos-forecasting not installed: skipped"
    try:
        import torch
        from chronos import ChronosConfig

        config = ChronosConfig(
            tokenizer_class="MeanScaleUniformBins",
            tokenizer_kwargs={"low_limit": -15.0, "high_limit": 15.0},
            context_length=512,
            prediction_length=64,
            n_tokens=4096,
            n_special_tokens=2,
            pad_token_id=0,
            eos_token_id=1,
            use_eos_token=False,
            model_type="seq2seq",
            num_samples=1,
            temperature=1.0,
            top_k=50,
            top_p=1.0,
        )
        tokenizer = config.create_tokenizer()
    except Exception as exc:  # an incompatible release: report it, never fail the bench
        return None, f"chronos-forecasting found but its tokenizer could not be built ({exc}): skipped"

    def run(x: np.ndarray) -> object:
        ids, _, scale = tokenizer.context_input_transform(torch.from_numpy(x))
        return tokenizer.output_transform(ids[:, None, :], scale)

    return run, "chronos-forecasting MeanScaleUniformBins (4093 bins over [-15, 15])"


def throughput(quick: bool) -> None:
    banner("1. encode + decode throughput, 256 x 512 float32 values (batch API)")
    x = sample_array()
    budget = 0.2 if quick else 2.0  # seconds per measurement
    n = x.size
    copy_rate = n / best_time(x.copy, budget)
    chronos, note = chronos_round_trip()
    chronos_rate = n / best_time(lambda: chronos(x), budget) if chronos else None
    print(f"  numpy copy: {copy_rate / 1e6:,.0f} M values/s   |   {note}")
    if chronos_rate:
        print(f"  chronos encode+decode: {chronos_rate / 1e6:,.1f} M values/s")
    head = f"  {'encoding':<9}{'tok/val':>8}{'encode':>11}{'decode':>11}{'enc+dec':>11}{'/ copy':>9}"
    print(head + (f"{'/ chronos':>11}" if chronos_rate else "") + "   (M values/s)")
    for name in ENCODINGS.names():
        enc = get_encoding(name)
        ids = enc.encode_batch(x)
        t_enc = best_time(lambda enc=enc: enc.encode_batch(x), budget)
        t_dec = best_time(lambda enc=enc, ids=ids: enc.decode_batch(ids), budget)
        rate = n / (t_enc + t_dec)
        row = f"  {name:<9}{enc.width:>8}{n / t_enc / 1e6:>11.1f}{n / t_dec / 1e6:>11.1f}{rate / 1e6:>11.1f}"
        row += f"{rate / copy_rate:>9.4f}"
        if chronos_rate:
            row += f"{rate / chronos_rate:>11.2f}"
        print(row)
    print(
        "  (/ copy: encode+decode rate over a numpy copy's; memory-bound in principle, but every numpy pass over\n"
        "  the array costs about a copy, and the bins kernels need ~5 passes to encode and ~3 to decode)"
    )


def trajectory(shape: tuple[int, ...], seed: int = 1) -> np.ndarray:
    """A travelling wave with noise on a periodic grid, ``[T, 1, *space]``."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, shape[0]).reshape(-1, *[1] * (len(shape) - 1))
    grids = np.meshgrid(*[np.linspace(0, 1, s, endpoint=False) for s in shape[1:]], indexing="ij")
    u = np.sin(2 * np.pi * (sum(grids) - 0.5 * t)) * np.exp(-t) + 0.01 * rng.standard_normal(shape)
    return u[:, None].astype(np.float32)


def tokens_per_trajectory(quick: bool) -> None:
    banner("2. tokens per trajectory (FieldCodec, one field, header included)")
    cases = {"1D 41 x 128": (41, 128), "2D 21 x 64 x 64": (21, 64, 64)}
    print(f"  {'encoding':<9}" + "".join(f"{c:>20}{'enc+dec ms':>12}" for c in cases))
    for name in ENCODINGS.names():
        codec = FieldCodec(get_encoding(name), ["u"])
        row = f"  {name:<9}"
        for shape in cases.values():
            frames = trajectory(shape)
            ids, scales = codec.encode_block(frames)
            hl = codec.header_length()
            assert ids.size == hl + shape[0] * codec.frame_length(shape[1:])

            def both(codec=codec, frames=frames, ids=ids, scales=scales, shape=shape, hl=hl) -> None:
                codec.encode_block(frames)
                codec.decode_frames(ids[hl:], shape[0], shape[1:], scales)

            ms = best_time(both, 0.1 if quick else 1.0) * 1e3
            row += f"{ids.size:>20,}{ms:>12.1f}"
        print(row)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run)")
    args = parser.parse_args()
    throughput(args.quick)
    tokens_per_trajectory(args.quick)


if __name__ == "__main__":
    main()
