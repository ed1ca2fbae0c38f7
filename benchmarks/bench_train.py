"""Benchmark: images/s of the hda training loop against a plain reference loop.

1. CPU: `train_one_epoch` (hda's loader, sampler, hooks, metrics) against a bare loop over the
   same in-memory tensors with the same model and SGD (target >= 1.0x).
2. CUDA (skipped without a GPU): hda with AMP + channels_last against the fp32 reference loop
   (target >= 1.5x).
3. Peak memory of a ``--memory-efficient`` DenseNet-BC-100 against the standard one, one
   forward + backward at batch 64 (CUDA allocator peak on a GPU, peak RSS growth on CPU).

Run: ``python benchmarks/bench_train.py [--model hardnet39ds] [--epochs 3]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import torch
from torch import nn

from hardnet_analysis.models import create_model
from hardnet_analysis.shapes import InputShape
from hardnet_analysis.train.config import TrainConfig
from hardnet_analysis.train.data import load_digits
from hardnet_analysis.train.distributed import DistContext
from hardnet_analysis.train.loop import make_loaders
from hardnet_analysis.train.model import Hooks
from hardnet_analysis.train.progress import Reporter
from hardnet_analysis.train.steps import Step, train_one_epoch


def _sgd(model: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)


def reference_epoch(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch: int,
                    device: torch.device) -> float:  # fmt: skip
    """The plain loop: slice, forward, loss, backward, step; returns images/s."""
    optimizer, loss_fn = _sgd(model), nn.CrossEntropyLoss()
    model.train()
    start = time.perf_counter()
    n = (len(labels) // batch) * batch
    for i in range(0, n, batch):
        x, y = images[i : i + batch].to(device), labels[i : i + batch].to(device)
        loss = loss_fn(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return n / (time.perf_counter() - start)


def hda_epoch(model: nn.Module, config: TrainConfig, device: torch.device) -> float:
    data = load_digits(32)  # compare's config asks for 32
    loader, _, _ = make_loaders(data, config, DistContext(), device)
    step = Step(model, _sgd(model), nn.CrossEntropyLoss(), torch.amp.GradScaler(
        device.type, enabled=config.amp), Hooks.of(model), device, config.amp,
        config.channels_last)  # fmt: skip
    sums = train_one_epoch(step, loader, 0, len(loader), Reporter(enabled=False))
    return sums["images"] / sums["seconds"]


def compare(model_name: str, epochs: int, device: torch.device, fast: bool) -> dict[str, Any]:
    config = TrainConfig(model=model_name, dataset="digits", image_size=InputShape.of_image(32),
                         batch_size=64, amp=fast, channels_last=fast)  # fmt: skip
    data = load_digits(32)
    images, labels = data.train.tensors  # type: ignore[attr-defined]
    ref_model = create_model(model_name, num_classes=10).to(device)
    hda_model = create_model(model_name, num_classes=10).to(device)
    if fast:
        hda_model.to(memory_format=torch.channels_last)
    ref = [reference_epoch(ref_model, images, labels, 64, device) for _ in range(epochs)]
    ours = [hda_epoch(hda_model, config, device) for _ in range(epochs)]
    r, h = statistics.median(ref[1:] or ref), statistics.median(ours[1:] or ours)
    return {"reference_img_s": r, "hda_img_s": h, "ratio": h / r}


#: One forward and backward of DenseNet-BC-100 (k=12) at batch 64 on 32x32, as in the
#: memory-efficient DenseNet report (2.9 GB -> 1.6 GB on a GPU). Prints MiB of peak growth.
_CPU_PEAK = """
import sys, torch
from hardnet_analysis.models import create_model
torch.manual_seed(0)
model = create_model("densenet_bc_100_k12", 10)
if sys.argv[1] == "1":
    model.hda_set_memory_efficient(True)
x = torch.randn(64, 3, 32, 32)
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) / 1024
before = status("VmRSS")
open("/proc/self/clear_refs", "w").write("5")  # reset the peak (VmHWM) to the current RSS
model(x).sum().backward()
print(status("VmHWM") - before)
"""


def memory_efficient(device: torch.device) -> None:
    """Peak memory of a forward + backward with and without ``--memory-efficient``: CUDA's
    allocator peak on a GPU, else the growth of the process's peak RSS (a fresh process each)."""
    import subprocess
    import sys

    results = {}
    for flag in (False, True):
        if device.type == "cuda":
            model = create_model("densenet_bc_100_k12", 10).to(device)
            model.hda_set_memory_efficient(flag)  # type: ignore[operator]
            torch.cuda.reset_peak_memory_stats(device)
            model(torch.randn(64, 3, 32, 32, device=device)).sum().backward()
            results[flag] = torch.cuda.max_memory_allocated(device) / 2**20
        else:
            out = subprocess.run(
                [sys.executable, "-c", _CPU_PEAK, str(int(flag))],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            results[flag] = float(out.stdout.split()[-1])
    where = "CUDA allocator peak" if device.type == "cuda" else "CPU peak RSS growth"
    print(
        f"densenet_bc_100_k12 batch 64, 32x32, forward+backward ({where}): standard "
        f"{results[False]:.0f} MiB, memory-efficient {results[True]:.0f} MiB, "
        f"ratio {results[True] / results[False]:.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="hardnet39ds")
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    cpu = compare(args.model, args.epochs, torch.device("cpu"), fast=False)
    ref, ours, ratio = cpu["reference_img_s"], cpu["hda_img_s"], cpu["ratio"]
    print(f"CPU {args.model} 32x32 batch 64: reference {ref:.0f} img/s, hda {ours:.0f} img/s, "
          f"ratio {ratio:.2f}x (target >= 1.0x)")  # fmt: skip
    if torch.cuda.is_available():
        gpu = compare(args.model, args.epochs, torch.device("cuda"), fast=True)
        print(f"CUDA AMP+channels_last vs fp32 reference: ratio {gpu['ratio']:.2f}x "
              "(target >= 1.5x)")  # fmt: skip
    else:
        print("CUDA AMP + channels_last: skipped (no CUDA device)")
    memory_efficient(torch.device("cuda" if torch.cuda.is_available() else "cpu"))


if __name__ == "__main__":
    main()
