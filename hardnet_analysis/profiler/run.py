"""`profile_model`: time a model and its layers, join the graph metrics and counters, and return
the run document (what ``hda profile`` saves as JSON).

The run document (``format: hda-profile-run``, version 1) holds the model, its definition (for
definitions), the device (requested, used, name, fallback), versions, threads and clocks, the
settings, whole-model latency (median and spread over the repeats), totals (params, MACs, CIO,
modeled bytes unfused and fused), measured DRAM bytes with their source (or null), and one
entry per layer key (see ``latency``): time, its graph nodes and their metrics, roofline.
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hardnet_analysis.analysis import analyze
from hardnet_analysis.errors import UsageError
from hardnet_analysis.metrics.analysis import Analysis
from hardnet_analysis.metrics.traffic import traffic
from hardnet_analysis.models import create_model
from hardnet_analysis.profiler import devices
from hardnet_analysis.profiler.counters import CounterError
from hardnet_analysis.profiler.latency import (
    ROOT,
    Stats,
    clock_for,
    time_forward,
    time_layers,
)
from hardnet_analysis.profiler.probe import Choice, probe
from hardnet_analysis.units import parse_input_size

TORCH_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass(frozen=True)
class Settings:
    """How to profile: device (``cpu``/``cuda``), input (H, W), batch, dtype, layout, warm-up
    and repeats, CPU threads, counter source (``auto``/``none``/``ncu``/``nvprof``/``perf``),
    and whether a missing GPU is an error (`strict_device`) rather than a fall-back to CPU."""

    device: str = "cpu"
    input_hw: tuple[int, int] = (224, 224)
    batch: int = 1
    dtype: str = "fp32"
    channels_last: bool = False
    warmup: int = 2
    repeat: int = 10
    threads: int | None = None
    counters: str = "auto"
    strict_device: bool = False
    thread_time: bool = False


def pick_device(requested: str, strict: bool) -> tuple[torch.device, str | None]:
    """The device to run on and, after a fall-back, why. ``cuda`` without a GPU falls back to
    CPU unless `strict` (then a UsageError, exit 2)."""
    if requested not in ("cpu", "cuda"):
        raise UsageError(f"unknown device {requested!r}; accepted: cpu, cuda")
    if requested == "cuda" and not torch.cuda.is_available():
        why = "no CUDA GPU is available (torch.cuda.is_available() is False)"
        if strict:
            raise UsageError(f"--device cuda: {why}; drop --strict-device to fall back to cpu")
        return torch.device("cpu"), f"{why}; fell back to cpu"
    return torch.device(requested), None


def prepare(
    model: str,
    input_size: str | tuple[int, int],
    batch: int,
    dtype: str,
    channels_last: bool,
    device: torch.device,
) -> tuple[nn.Module, torch.Tensor]:
    """The model in eval mode on `device` at `dtype`, and a random input of the given size."""
    return convert(create_model(model), input_size, batch, dtype, channels_last, device)


def convert(
    module: nn.Module,
    input_size: str | tuple[int, int],
    batch: int,
    dtype: str,
    channels_last: bool,
    device: torch.device,
) -> tuple[nn.Module, torch.Tensor]:
    """`module` in eval mode moved to `device`, `dtype` and layout, and a random input."""
    hw = input_size if isinstance(input_size, tuple) else parse_input_size(input_size)
    module = module.eval()
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    module = module.to(device=device, dtype=TORCH_DTYPES[dtype]).to(memory_format=fmt)
    x = torch.randn(batch, 3, *hw, device=device, dtype=TORCH_DTYPES[dtype])
    return module, x.contiguous(memory_format=fmt)


def layer_of_node(name: str, leaves: set[str], containers: set[str]) -> str | None:
    """The layer key whose time covers graph node `name`: the node itself for a leaf module's
    call (``layer1.0.relu:2``), the owning container's path for ops in a container's forward
    (``base.3.cat:1`` -> ``base.3``; ``flatten`` -> ``(model)``), None for graph boundaries."""
    base = name.split(":", 1)[0]
    if base in leaves:
        return name
    owner = base.rsplit(".", 1)[0] if "." in base else ""
    if owner in containers:
        return owner or ROOT
    return None


def _versions() -> dict[str, str]:
    import torchvision

    from hardnet_analysis import __version__

    return {
        "hda": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "cuda": str(torch.version.cuda),
        "cudnn": str(torch.backends.cudnn.version()),  # type: ignore[no-untyped-call]
    }


def _cpu_info() -> dict[str, Any]:
    info: dict[str, Any] = {"name": platform.processor() or platform.machine()}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return info
    mhz = [float(line.split(":")[1]) for line in text.splitlines() if line.startswith("cpu MHz")]
    names = [line.split(":", 1)[1].strip() for line in text.splitlines() if "model name" in line]
    if names:
        info["name"] = names[0]
    if mhz:
        info["mhz"] = mhz
    return info


def _device_info(device: torch.device) -> dict[str, Any]:
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return {
            "name": props.name,
            "capability": list(torch.cuda.get_device_capability(device)),
            "memory_bytes": props.total_memory,
            "sm_count": props.multi_processor_count,
        }
    return _cpu_info()


_PROBED: dict[str, devices.DeviceSpec] = {}


def roofline_spec(device: torch.device) -> devices.DeviceSpec:
    """The table entry of this GPU; on CPU this machine's probed bandwidth and compute (probed
    once per process)."""
    if device.type == "cuda":
        try:
            return devices.find_device(torch.cuda.get_device_name(device))
        except UsageError:
            pass
    if device.type not in _PROBED:
        _PROBED[device.type] = devices.probe_machine(device.type)
    return _PROBED[device.type]


def _layers(
    samples: dict[str, list[float]],
    analysis: Analysis,
    leaves: set[str],
    containers: set[str],
    dtype: str,
) -> list[dict[str, Any]]:
    """One entry per layer key: time stats, graph nodes and their summed metrics."""
    flow = traffic(analysis.graph, dtype).by_name()
    entries: dict[str, dict[str, Any]] = {}
    for key, times in samples.items():
        stats = Stats.of(times)
        entries[key] = {
            "name": key,
            "kind": "layer" if key.split(":", 1)[0] in leaves else "self",
            "time_s": stats.median,
            "time_p25_s": stats.p25,
            "time_p75_s": stats.p75,
            "nodes": [],
            "ops": [],
            "params": 0,
            "macs": 0,
            "cio": 0,
            "model_bytes": 0,
            "model_fused_bytes": 0,
            "dram": None,
        }
    for record in analysis.layers:
        if record.op in ("input", "output"):
            continue
        owner = layer_of_node(record.name, leaves, containers)
        entry = entries.get(owner) if owner else None
        if entry is None:
            continue
        entry["nodes"].append(record.name)
        if record.op not in entry["ops"]:
            entry["ops"].append(record.op)
        for field in ("params", "macs", "cio"):
            entry[field] += getattr(record, field)
        entry["model_bytes"] += flow[record.name].bytes
        entry["model_fused_bytes"] += flow[record.name].fused_bytes
    return list(entries.values())


def _measure_dram(
    choice: Choice, model: str, settings: Settings, device: torch.device, forward: Any
) -> tuple[dict[str, Any] | None, dict[str, Any], list[dict[str, str]]]:
    """Measured DRAM bytes (whole model, and per layer from ncu) with their source; failures
    become records and the source falls back to ``model``."""
    from hardnet_analysis.profiler.child import child_argv

    failures: list[dict[str, str]] = []
    per_layer: dict[str, Any] = {}
    try:
        if choice.source == "perf":
            from hardnet_analysis.profiler.counters.perf import PerfSession, imc_events

            n = max(settings.repeat, 1)
            with PerfSession("perf", imc_events()) as session:
                for _ in range(n):
                    forward()
            assert session.totals is not None
            total = {"read_bytes": session.totals.read_bytes / n}
            total["write_bytes"] = session.totals.write_bytes / n
            return {"source": "perf", **total}, per_layer, failures
        if choice.source in ("ncu", "nvprof"):
            argv = child_argv(
                model,
                settings.input_hw,
                settings.batch,
                settings.dtype,
                settings.channels_last,
                choice.source,
            )
            with tempfile.TemporaryDirectory(prefix="hda-counters-") as tmp:
                log = Path(tmp) / f"{choice.source}.csv"
                if choice.source == "ncu":
                    from hardnet_analysis.profiler.counters import ncu

                    layers = ncu.per_layer(ncu.run_ncu("ncu", argv, log, timeout=1800))
                    per_layer = {k: {"source": "ncu", **v.__dict__} for k, v in layers.items()}
                    read = sum(v.read_bytes for v in layers.values())
                    write = sum(v.write_bytes for v in layers.values())
                    return (
                        {"source": "ncu", "read_bytes": read, "write_bytes": write},
                        (per_layer),
                        failures,
                    )
                from hardnet_analysis.profiler.counters import nvprof

                totals = nvprof.run_nvprof("nvprof", argv, log, timeout=1800)
                return (
                    {
                        "source": "nvprof",
                        "read_bytes": totals.read_bytes,
                        "write_bytes": totals.write_bytes,
                    },
                    per_layer,
                    failures,
                )
    except (CounterError, OSError) as exc:
        failures.append({"stage": f"counters:{choice.source}", "error": str(exc)})
    return None, per_layer, failures


def profile_model(model: str, settings: Settings, log: Any = None) -> dict[str, Any]:
    """Profile `model` (anything `resolve` takes) and return the run document."""
    say = log or (lambda message: None)
    device, fallback = pick_device(settings.device, settings.strict_device)
    if fallback:
        say(f"warning: --device {settings.device}: {fallback}")
    threads = settings.threads or torch.get_num_threads()
    torch.set_num_threads(threads)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    module = create_model(model).eval()
    # Trace before the dtype/device change: the tracer's meta input is fp32.
    analysis = analyze(module, settings.input_hw, settings.batch, settings.dtype)
    net, x = convert(
        module, settings.input_hw, settings.batch, settings.dtype, settings.channels_last, device
    )
    leaves = {p for p, m in net.named_modules() if next(m.children(), None) is None}
    containers = {p for p, m in net.named_modules()} - leaves
    if settings.thread_time and (device.type != "cpu" or threads != 1):
        raise UsageError("--thread-time needs --device cpu and --threads 1 (it clocks one thread)")
    clock = clock_for(device, settings.thread_time)

    def forward() -> object:
        return net(x)

    with torch.inference_mode():
        whole = Stats.of(time_forward(forward, clock, settings.warmup, settings.repeat))
        samples = time_layers(net, forward, clock, 1, settings.repeat)
        capability = torch.cuda.get_device_capability(device) if device.type == "cuda" else None
        choice = probe(device.type, capability, settings.counters)
        say(choice.summary())
        dram, dram_layers, failures = _measure_dram(choice, model, settings, device, forward)
    layers = _layers(samples, analysis, leaves, containers, settings.dtype)
    spec = roofline_spec(device)
    for entry in layers:
        entry["dram"] = dram_layers.get(entry["name"])
        moved = entry["model_bytes"]
        if entry["dram"] is not None:
            moved = int(entry["dram"]["read_bytes"] + entry["dram"]["write_bytes"])
        entry["roofline"] = devices.roofline(entry["macs"], moved, spec, settings.dtype).to_dict()
    layer_sum = sum(e["time_s"] for e in layers)
    flow = traffic(analysis.graph, settings.dtype)
    defn = getattr(net, "definition", None)
    return {
        "format": "hda-profile-run",
        "version": 1,
        "status": "ok",
        "model": model,
        "definition": _definition_dict(defn),
        "input": list(settings.input_hw),
        "batch": settings.batch,
        "dtype": settings.dtype,
        "channels_last": settings.channels_last,
        "device": {
            "requested": settings.device,
            "used": device.type,
            "fallback": fallback,
            **_device_info(device),
        },
        "threads": threads,
        "versions": _versions(),
        "settings": {
            "warmup": settings.warmup,
            "repeat": settings.repeat,
            "cudnn_benchmark": device.type == "cuda",
            "clock": _clock_name(device, settings.thread_time),
            "pid": os.getpid(),
            "argv": sys.argv,
        },
        "latency": whole.to_dict(),
        "layer_sum_s": layer_sum,
        "layer_sum_ratio": layer_sum / whole.median,
        "totals": {
            **{k: getattr(analysis.totals, k) for k in ("params", "macs", "cio", "act_bytes")},
            "model_bytes": flow.bytes,
            "model_fused_bytes": flow.fused_bytes,
        },
        "unhandled_ops": sorted(
            {u.op for u in analysis.unhandled}
            | {analysis.graph.nodes[n]["op"] for n in flow.unhandled}
        ),
        "counters": choice.to_dict(),
        "dram": dram,
        "roofline": spec.to_dict(),
        "layers": layers,
        "failures": failures,
    }


def _clock_name(device: torch.device, thread_time: bool) -> str:
    if device.type == "cuda":
        return "cuda events"
    return "time.thread_time_ns" if thread_time else "time.perf_counter_ns"


def _definition_dict(defn: Any) -> dict[str, Any] | None:
    if defn is None:
        return None
    from hardnet_analysis.families.serialize import to_dict

    document: dict[str, Any] = to_dict(defn)
    return document
