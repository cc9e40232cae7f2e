"""Batch-first self-attention used for the ONNX export gives the same outputs as
nn.MultiheadAttention, falls back for anything else, and always restores the model."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from mlaudit.fixers.export_attention import batch_first_attention  # noqa: E402


class Net(torch.nn.Module):
    def __init__(self, batch_first: bool = True) -> None:
        super().__init__()
        self.attn = torch.nn.MultiheadAttention(16, 4, batch_first=batch_first)

    def forward(self, x, need_weights=False, mask=None):
        return self.attn(x, x, x, need_weights=need_weights, attn_mask=mask)[0]


def test_same_outputs_and_restored():
    torch.manual_seed(0)
    net = Net().eval()
    x = torch.randn(3, 5, 16)
    mask = torch.zeros(5, 5, dtype=torch.bool)
    mask[:, -1] = True
    with torch.no_grad():
        ref = net(x)
        ref_weights = net(x, need_weights=True)
        ref_masked = net(x, mask=mask)
        with batch_first_attention(net) as n:
            assert n == 1
            assert not isinstance(net.attn, torch.nn.MultiheadAttention)
            torch.testing.assert_close(net(x), ref, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(net(x, need_weights=True), ref_weights)  # falls back
            torch.testing.assert_close(net(x, mask=mask), ref_masked)  # falls back
    assert isinstance(net.attn, torch.nn.MultiheadAttention)
    assert set(net.state_dict()) == {k for k in Net().state_dict()}


def test_sequence_first_modules_untouched_and_restored_on_error():
    net = Net(batch_first=False)
    with batch_first_attention(net) as n:
        assert n == 0
    net = Net()
    with pytest.raises(RuntimeError), batch_first_attention(net):
        raise RuntimeError("export failed")
    assert isinstance(net.attn, torch.nn.MultiheadAttention)
