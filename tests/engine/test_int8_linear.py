import torch
from torch import nn

from engine.layers.int8_linear import Int8DecodeLinear, use_int8_decode


def test_few_rows_use_int8_and_stay_close_to_fp32() -> None:
    torch.manual_seed(0)
    linear = nn.Linear(256, 128, bias=True)
    layer = Int8DecodeLinear(linear)
    x = torch.randn(2, 1, 256)
    exact = linear(x)
    approx = layer(x)
    assert approx.shape == exact.shape and approx.dtype == torch.float32
    assert not torch.equal(approx, exact)  # the int8 path really ran
    assert (approx - exact).abs().max() / exact.abs().max() < 0.03


def test_many_rows_use_the_exact_fp32_weight() -> None:
    linear = nn.Linear(64, 32)
    x = torch.randn(1, 16, 64)
    assert torch.equal(Int8DecodeLinear(linear)(x), linear(x))


def test_wrapping_replaces_every_linear_layer() -> None:
    model = nn.Sequential(nn.Linear(8, 8), nn.Sequential(nn.ReLU(), nn.Linear(8, 4)))
    use_int8_decode(model)
    assert isinstance(model[0], Int8DecodeLinear) and isinstance(model[1][1], Int8DecodeLinear)
    assert sum(isinstance(m, Int8DecodeLinear) for m in model.modules()) == 2
