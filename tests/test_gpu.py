"""The CUDA paths: CUDA-event timing, a profile on the GPU, ncu per layer where installed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from hardnet_analysis.backends.cuda import CudaClock
from hardnet_analysis.profiler.latency import time_forward
from hardnet_analysis.profiler.run import Settings, profile_model
from hardnet_analysis.shapes import InputShape

TINY = str(Path(__file__).parent / "data" / "tinyhardnet.json")
pytestmark = pytest.mark.gpu


def test_cuda_events_time_a_matmul() -> None:
    a = torch.rand(512, 512, device="cuda")
    samples = time_forward(lambda: a @ a, CudaClock(), warmup=2, repeat=3)
    assert len(samples) == 3 and all(s > 0 for s in samples)


def test_profile_on_gpu_names_layers_and_device() -> None:
    run = profile_model(
        TINY, Settings(device="cuda", input=InputShape.of_image(64), repeat=3, counters="none")
    )
    assert run.device.used == "cuda" and run.settings.cudnn_benchmark
    assert any(layer.name == "base.0.conv" for layer in run.layers)
    assert 0.5 < run.layer_sum_ratio < 3


@pytest.mark.skipif(shutil.which("ncu") is None, reason="ncu is not installed")
def test_ncu_measures_dram_per_layer() -> None:
    run = profile_model(
        TINY, Settings(device="cuda", input=InputShape.of_image(64), repeat=2, counters="ncu")
    )
    if run.failures:
        pytest.skip(f"ncu not usable here: {run.failures[0].error}")
    assert run.dram is not None and run.dram.source == "ncu" and run.dram.read_bytes > 0
    conv = next(layer for layer in run.layers if layer.name == "base.0.conv")
    assert conv.dram is not None and conv.dram.source == "ncu"
    assert conv.dram.kernels is not None and conv.dram.kernels >= 1


def test_calibrate_on_gpu_with_cuda_events(tmp_path: Path) -> None:
    from hardnet_analysis.analysis import analyze
    from hardnet_analysis.documents.device_model import DeviceModel
    from hardnet_analysis.metrics.predict import predict
    from hardnet_analysis.profiler.calibrate import CalibrationSettings, calibrate

    models = calibrate(CalibrationSettings(device="cuda", grid="tiny", repeat=2, budget_s=0.002))
    (model,) = models.models  # a GPU has no thread counts: one model, at threads 0
    assert model.device == "cuda" and model.clock == "cuda events" and model.cache_bytes > 2**20
    assert model.threads == 0
    path = models.write(tmp_path / "gpu.json")
    assert predict(analyze("hardnet39ds", 64), DeviceModel.read(path)).latency_s > 0


def test_per_op_device_times_join_every_node() -> None:
    """On CUDA an op's time is its kernels' device time (correlation ids): every node of the
    tiny HarDNet joins an op, and every conv's kernels took time."""
    run = profile_model(
        TINY, Settings(device="cuda", input=InputShape.of_image(64), repeat=3, counters="none")
    )
    assert run.ops is not None and not run.ops.unjoined_nodes
    convs = [layer for layer in run.layers if "conv" in layer.ops]
    assert convs and all(layer.node_times and min(layer.node_times.values()) > 0 for layer in convs)
