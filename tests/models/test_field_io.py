"""FieldIO: input channels, the residual and normalization undone exactly, the losses, the spec round trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sfm.errors import DataError
from sfm.models.field_config import FieldsSection
from sfm.models.field_io import FieldIO, FieldSpec, load_field_run, write_field_model


def _spec(space=(16,), n_fields=2, k=3, h=2, coefficients=("a", "nu")) -> FieldSpec:
    return FieldSpec(
        n_fields=n_fields,
        space=list(space),
        context_frames=k,
        horizon=h,
        coefficient_names=list(coefficients),
        mean=[0.5 * (c + 1) for c in range(n_fields)],
        std=[2.0 + c for c in range(n_fields)],
        field_names=[f"f{c}" for c in range(n_fields)],
        family="test",
        coefficient_mean=[1.0, 0.02][: len(coefficients)],
        coefficient_std=[0.5, 0.01][: len(coefficients)],
    )


def _data(spec: FieldSpec, b: int = 4, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    ctx = 3.0 * torch.randn(b, spec.context_frames, spec.n_fields, *spec.space, generator=g) + 1.0
    tgt = 3.0 * torch.randn(b, spec.horizon, spec.n_fields, *spec.space, generator=g) + 1.0
    coef = torch.rand(b, len(spec.coefficient_names), generator=g)
    return ctx, tgt, coef


NORMS = ["field", "trajectory"]


@pytest.mark.parametrize("normalization", NORMS)
@pytest.mark.parametrize("space", [(16,), (8, 6)])
def test_zero_residual_decodes_to_the_last_frame_exactly(normalization, space):
    spec = _spec(space)
    io = FieldIO(spec, FieldsSection(residual=True, normalization=normalization))
    ctx, _, _ = _data(spec)
    out = io.decode(torch.zeros(4, io.out_channels, *space), ctx)
    assert out.shape == (4, spec.horizon, spec.n_fields, *space)
    for j in range(spec.horizon):
        assert torch.equal(out[:, j], ctx[:, -1])


@pytest.mark.parametrize("normalization", NORMS)
@pytest.mark.parametrize("residual", [True, False])
def test_target_then_decode_is_the_identity(normalization, residual):
    spec = _spec((8, 6))
    io = FieldIO(spec, FieldsSection(residual=residual, normalization=normalization))
    ctx, tgt, _ = _data(spec)
    y = io.target(tgt, ctx)
    assert y.shape == (4, io.out_channels, 8, 6)
    torch.testing.assert_close(io.decode(y, ctx), tgt, rtol=0, atol=5e-6)
    # ...and the loss of the exact output is zero under both losses.
    assert io.loss(y, ctx, tgt).item() < 1e-11
    io_rel = FieldIO(spec, FieldsSection(residual=residual, normalization=normalization, loss="relative_mse"))
    assert io_rel.loss(y, ctx, tgt).item() < 1e-10


def test_field_normalization_undoes_the_training_stats():
    spec = _spec((16,))
    io = FieldIO(spec, FieldsSection(residual=False, normalization="field", grid=False, coefficients=False))
    ctx, _, _ = _data(spec)
    mean = torch.tensor(spec.mean).view(1, 1, -1, 1)
    std = torch.tensor(spec.std).view(1, 1, -1, 1)
    x = io.encode(ctx, torch.zeros(4, 2))
    assert io.in_channels == spec.context_frames * spec.n_fields == x.shape[1]
    torch.testing.assert_close(x, ((ctx - mean) / std).reshape(4, -1, 16))
    y = torch.randn(4, io.out_channels, 16)
    torch.testing.assert_close(io.decode(y, ctx), y.view(4, 2, 2, 16) * std + mean)


def test_trajectory_normalization_is_per_window_and_scale_free():
    spec = _spec((12,))
    io = FieldIO(spec, FieldsSection(normalization="trajectory", grid=False, coefficients=False))
    ctx, _, _ = _data(spec)
    x = io.encode(ctx, torch.zeros(4, 2)).view(4, spec.context_frames, spec.n_fields, 12)
    # Each window's fields have mean 0 and std 1 over its context frames and grid.
    torch.testing.assert_close(x.mean(dim=(1, 3)), torch.zeros(4, 2), rtol=0, atol=1e-6)
    torch.testing.assert_close(x.std(dim=(1, 3), correction=0), torch.ones(4, 2), rtol=0, atol=1e-5)
    a, b = 7.5, -3.0  # an affine change of units moves nothing inside and the same change outside
    x2 = io.encode(a * ctx + b, torch.zeros(4, 2)).view_as(x)
    torch.testing.assert_close(x2, x, rtol=0, atol=1e-5)
    y = torch.randn(4, io.out_channels, 12)
    torch.testing.assert_close(io.decode(y, a * ctx + b), a * io.decode(y, ctx) + b, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("space", [(10,), (4, 6)])
def test_grid_and_coefficient_channels(space):
    spec = _spec(space)
    io = FieldIO(spec, FieldsSection())
    ctx, _, coef = _data(spec)
    x = io.encode(ctx, coef)
    kc, nd = spec.context_frames * spec.n_fields, len(space)
    assert io.in_channels == kc + nd + 2 == x.shape[1]
    for axis, n in enumerate(space):
        coord = x[:, kc + axis]
        line = coord.movedim(axis + 1, -1).reshape(-1, n)
        np.testing.assert_array_equal(
            line.numpy(), np.tile(np.arange(n) / n, (line.shape[0], 1)).astype(np.float32)
        )
    for p in range(2):
        want = (coef[:, p] - spec.coefficient_mean[p]) / spec.coefficient_std[p]
        chan = x[:, kc + nd + p].reshape(4, -1)
        torch.testing.assert_close(chan, want[:, None].expand_as(chan))


def test_constant_coefficients_and_fields_do_not_divide_by_zero():
    spec = _spec((8,), n_fields=1, coefficients=("a",))
    spec.std, spec.coefficient_std = [0.0], [0.0]
    io = FieldIO(spec, FieldsSection())
    ctx, _, coef = _data(spec)
    assert torch.isfinite(io.encode(ctx, coef)).all()
    io_t = FieldIO(spec, FieldsSection(normalization="trajectory"))
    flat = torch.ones(2, spec.context_frames, 1, 8)
    assert torch.isfinite(io_t.encode(flat, coef[:2])).all()
    assert torch.equal(io_t.decode(torch.zeros(2, 2, 8), flat), torch.ones(2, 2, 1, 8))


def test_losses_match_their_formulas():
    spec = _spec((16,))
    ctx, tgt, _ = _data(spec)
    y = torch.randn(4, 2 * spec.n_fields, 16)
    io = FieldIO(spec, FieldsSection(loss="mse"))
    torch.testing.assert_close(io.loss(y, ctx, tgt), torch.mean((y - io.target(tgt, ctx)) ** 2))
    rel = FieldIO(spec, FieldsSection(loss="relative_mse"))
    pred, t = rel.decode(y, ctx).numpy().astype(np.float64), tgt.numpy().astype(np.float64)
    nrmse_sq = np.mean((pred - t) ** 2, axis=-1) / np.mean(t**2, axis=-1)  # per (example, frame, field)
    assert rel.loss(y, ctx, tgt).item() == pytest.approx(nrmse_sq.mean(), rel=1e-5)


def test_wrong_context_shape_is_one_readable_error():
    io = FieldIO(_spec((16,)), FieldsSection())
    with pytest.raises(DataError, match=r"expects context \[batch, 3, 2, 16\]"):
        io.encode(torch.zeros(1, 2, 2, 16), torch.zeros(1, 2))


def test_spec_round_trips_through_json():
    import json

    spec = _spec((8, 6))
    again = FieldSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again == spec
    with pytest.raises(DataError, match="unknown keys"):
        FieldSpec.from_dict({**spec.to_dict(), "colour": 1})


def test_load_field_run_refuses_unknown_folders(tmp_path):
    with pytest.raises(DataError, match=r"no field_model\.json"):
        load_field_run(tmp_path)
    write_field_model(tmp_path, {"kind": "hologram"})
    with pytest.raises(DataError, match="unknown field-model kind 'hologram'"):
        load_field_run(tmp_path)
    (tmp_path / "field_model.json").write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        load_field_run(tmp_path)
