"""What subnormal floats cost on this CPU: Swin-T's shifted-window attention, alone and whole.

A shifted window's attention adds a mask of -100 to the logits of tokens from other regions, so
its softmax gives them exp(-100), about 3.7e-44: below fp32's smallest normal number (1.2e-38),
a subnormal. The next op, the batched matmul of those probabilities with the values, then reads
subnormal inputs, which some CPUs compute in microcode at many times the normal cost. No
latency model of the network's shapes can see this: it lives in the data. Times, on one thread:

- the attention's ``bmm`` (48 x 49 x 49 by 48 x 49 x 32, as in Swin-T's first stage at 224)
  with the softmax's subnormal probabilities, with them flushed to zero, and with
  ``torch.set_flush_denormal(True)`` (flush to zero and denormals are zero in the CPU);
- Swin-T at 224 whole, with and without ``set_flush_denormal``.

    python benchmarks/bench_denormals.py --out results/intel-xeon/denormals.json
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torchvision
from timing import emit, median_ms

from hardnet_analysis.backends.cpu import cpu_name_and_mhz


def attention(flush: bool) -> dict[str, float]:
    """The bmm's milliseconds with subnormal inputs and with them zeroed; `flush`: with the
    CPU flushing subnormals (``torch.set_flush_denormal``)."""
    torch.manual_seed(0)
    mask = torch.zeros(48, 49, 49)
    mask[:, :, 25:] = -100.0  # half the keys in another region of the shifted window
    probs = (torch.randn(48, 49, 49) + mask).softmax(-1)
    values = torch.rand(48, 49, 32)
    subnormal = (probs > 0) & (probs < torch.finfo(torch.float32).tiny)
    zeroed = torch.where(subnormal, 0.0, probs)
    torch.set_flush_denormal(flush)
    try:
        return {
            "subnormal_share": float(subnormal.float().mean()),
            "bmm_ms": median_ms(lambda: torch.bmm(probs, values), 50, warmup=3),
            "bmm_zeroed_ms": median_ms(lambda: torch.bmm(zeroed, values), 50, warmup=3),
        }
    finally:
        torch.set_flush_denormal(False)


def swin(flush: bool) -> float:
    """Swin-T's forward at 224 in milliseconds (median of 7)."""
    model, x = torchvision.models.swin_t().eval(), torch.rand(1, 3, 224, 224)
    torch.set_flush_denormal(flush)
    try:
        with torch.inference_mode():
            return median_ms(lambda: model(x), 7, warmup=3)
    finally:
        torch.set_flush_denormal(False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)
    found = {
        "cpu": cpu_name_and_mhz()[0],
        "torch": torch.__version__,
        "attention": attention(flush=False),
        "attention_flushed": attention(flush=True),
        "swin_t_224_ms": swin(flush=False),
        "swin_t_224_flushed_ms": swin(flush=True),
    }
    emit(found, args.out)


if __name__ == "__main__":
    main()
