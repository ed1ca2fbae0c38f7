"""`hda profile MODEL ... [--input 224 512] [--out runs/]`: latency per model and per layer.

Several models and sizes make a sweep. With ``--out`` each run is written (atomically) as soon
as it is done to ``DIR/MODEL-HxW-[RUNTIME-]DEVICE-DTYPE-bN[-nhwc]-tT-rR.json`` (`run_file_name`:
the device actually used, so a CUDA request that fell back is a ``cpu`` file; T threads, R
repeats; ``onnxruntime-`` for ``--runtime onnxruntime``);
a run file with status ``ok`` and the same setup is skipped when the sweep is run again, unless
``--force``. A run that fails (out of memory, a model that cannot be
built or traced at that size) is recorded (status ``failed``, with the error) and the sweep
goes on; the exit status is then 1. Unknown model names are usage errors before anything runs.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hardnet_analysis.cli.common import (
    add_device_args,
    add_format_arg,
    batch_size,
    console,
    input_shape,
    input_size,
    non_negative_int,
    output_dir,
    positive_int,
)
from hardnet_analysis.documents.device_model import RUNTIMES
from hardnet_analysis.documents.profile_run import (
    ALLOCATORS,
    FailedRun,
    Failure,
    ProfileRun,
    RequestedDevice,
    run_file_name,
    run_stem,
)
from hardnet_analysis.documents.records import encode
from hardnet_analysis.errors import HdaError, UsageError
from hardnet_analysis.fileio import locked_directory
from hardnet_analysis.present.formats import write_csv, write_json
from hardnet_analysis.present.profile import layers_table, runs_table
from hardnet_analysis.resolve import resolve

if TYPE_CHECKING:
    from hardnet_analysis.backends import Backend
    from hardnet_analysis.profiler.run import Settings
    from hardnet_analysis.shapes import InputShape

# Library modules are imported inside the functions that use them: `hda` imports every
# command module to build its parser, and a command loads only what it runs.


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "profile",
        help="measure latency per model and per layer (and DRAM traffic where possible)",
        description="Time models and their layers on this machine, join the graph metrics "
        "(MACs, CIO, modeled bytes), read DRAM counters where the hardware allows (ncu, "
        "nvprof, perf) and save run files for `hda correlate` and `hda report`.",
    )
    parser.add_argument("models", nargs="+", metavar="MODEL", help="model names or *.json")
    parser.add_argument(
        "--input",
        type=input_size,
        nargs="+",
        default=[(224, 224)],
        metavar="N|HxW",
        help="one or more input sizes (default 224)",
    )
    parser.add_argument("--batch", type=batch_size, default=1, help="batch size (default 1)")
    parser.add_argument("--dtype", choices=("fp32", "fp16", "bf16"), default="fp32")
    add_device_args(parser)
    parser.add_argument("--channels-last", action="store_true", help="NHWC memory format")
    parser.add_argument("--repeat", type=positive_int, default=10, help="timed runs (default 10)")
    parser.add_argument(
        "--warmup",
        type=non_negative_int,
        default=2,
        help="untimed runs before timing (default 2)",
    )
    parser.add_argument(
        "--threads", type=positive_int, help="CPU threads (default: torch's current count)"
    )
    parser.add_argument(
        "--thread-time",
        action="store_true",
        help="CPU only, with --threads 1: clock the thread's CPU time instead of wall time "
        "(robust on a busy shared machine)",
    )
    parser.add_argument(
        "--runtime",
        choices=RUNTIMES,
        default="torch",
        help="what runs the model: eager PyTorch (default), or ONNX Runtime's CPU provider on "
        "the model's ONNX export (exported once and cached; an .onnx MODEL runs as it is), "
        "timed per fused kernel by its own profiler",
    )
    parser.add_argument(
        "--allocator",
        choices=ALLOCATORS,
        default="kept",
        help="the C allocator during CPU timings: kept (default) keeps freed memory and faults "
        "a reserve in up front, as jemalloc, tcmalloc or MALLOC_MMAP_MAX_=0 "
        "MALLOC_TRIM_THRESHOLD_=-1 do, so tensors reuse touched pages; default leaves glibc's "
        "malloc as a plain process has it: its page faults, counted in the run file, cost a "
        "MobileNetV2 1.4-1.6x on a VM",
    )
    parser.add_argument(
        "--counters",
        choices=("auto", "none", "ncu", "nvprof", "perf"),
        default="auto",
        help="DRAM counter source (default auto: the probe picks what works)",
    )
    parser.add_argument(
        "--out", type=output_dir, help="directory for run files (one per model/size)"
    )
    parser.add_argument(
        "--force", action="store_true", help="profile again runs already saved under --out"
    )
    add_format_arg(parser)
    parser.set_defaults(func=run)


def run_path(out: Path, model: str, hw: tuple[int, int], args: argparse.Namespace) -> Path:
    """Where the run of `model` at `hw` goes (`run_file_name`; the model's file stem for
    *.json models): named by the device it will use and the threads it will run with."""
    import torch

    from hardnet_analysis.backends import pick

    backend = pick(args.device, args.strict_device).backend
    threads = args.threads or torch.get_num_threads()
    name = run_file_name(
        run_stem(model),
        hw,
        backend.name,
        args.dtype,
        args.batch,
        args.channels_last,
        threads,
        args.repeat,
        None if args.runtime == "torch" else args.runtime,
        args.allocator if backend.cpu_threads else None,
    )
    return out / name


def _finished(path: Path) -> ProfileRun | None:
    """The successful run already saved at `path` with the same setup (its name says it);
    None where there is none or it cannot be read (then the run is profiled again and the file
    replaced)."""
    if not path.exists():
        return None
    try:
        run = ProfileRun.read(path)  # a failed run is a UsageError too: profiled again
    except UsageError:
        return None
    return run if run.file_name == path.name else None


def _log(message: str) -> None:
    print(f"hda profile: {message}", file=sys.stderr, flush=True)


def _failure(
    model: str, hw: tuple[int, int], args: argparse.Namespace, exc: BaseException
) -> FailedRun:
    error = Failure("profile", f"{type(exc).__name__}: {exc}")
    device = RequestedDevice(args.device)
    return FailedRun(model, hw, args.batch, args.dtype, device, (error,))


def _settings(args: argparse.Namespace) -> Settings:
    """What a run measures, from the command's options, at `Settings`' default input: each run
    replaces it with its model's `_input` (the options alone decide what `check_settings`
    reads)."""
    from hardnet_analysis.profiler.run import Settings

    return Settings(
        device=args.device,
        dtype=args.dtype,
        channels_last=args.channels_last,
        warmup=args.warmup,
        repeat=args.repeat,
        threads=args.threads,
        counters=args.counters,
        strict_device=args.strict_device,
        thread_time=args.thread_time,
        runtime=args.runtime,
        allocator=args.allocator,
    )


def _input(model: str, hw: tuple[int, int], args: argparse.Namespace) -> InputShape:
    """The input a run of `model` at ``--input`` size `hw` takes: one image at ``--batch`` with
    the model's channels (an ONNX file: its inputs, the first sized so)."""
    return input_shape(args, resolve(model), hw)


def _one(model: str, settings: Settings) -> ProfileRun:
    from hardnet_analysis.profiler.run import profile_model

    if settings.runtime == "onnxruntime":
        from hardnet_analysis.profiler.run_ort import profile_ort

        return profile_ort(model, settings, _log)
    return profile_model(model, settings, _log)


def _sweep(args: argparse.Namespace, backend: Backend) -> tuple[list[ProfileRun | FailedRun], int]:
    from hardnet_analysis.profiler.run import check_input

    base = _settings(args)
    documents: list[ProfileRun | FailedRun] = []
    failed = 0
    jobs = [(m, hw) for m in args.models for hw in args.input]
    for index, (model, hw) in enumerate(jobs, start=1):
        label = f"[{index}/{len(jobs)}] {model} @ {hw[0]}x{hw[1]}"
        path = run_path(args.out, model, hw, args) if args.out else None
        done = _finished(path) if path and not args.force else None
        if done is not None:
            _log(f"{label}: done already ({path}), skipped")
            documents.append(done)
            continue
        try:
            settings = replace(base, input=_input(model, hw, args))
            # before the progress line: an error is one line
            check_input(model, settings.input)
            _log(f"{label}: profiling")
            document: ProfileRun | FailedRun = _one(model, settings)
        except (RuntimeError, MemoryError, HdaError) as exc:
            if isinstance(exc, HdaError) and exc.exit_code == 2 and len(jobs) == 1:
                raise  # a single run's usage error is the user's to fix, not a sweep failure
            failed += 1
            document = _failure(model, hw, args, exc)
            _log(f"{label}: failed: {document.failures[0].error}")
            backend.release_memory()
        if path:
            document.write(path)
        documents.append(document)
    return documents, failed


def run(args: argparse.Namespace) -> int:
    from hardnet_analysis.backends import check_thread_time, pick

    for model in args.models:
        resolve(model)  # unknown names fail here, before any run
        if model.endswith(".onnx") and args.runtime != "onnxruntime":
            raise UsageError(f"{model}: an ONNX file is profiled with --runtime onnxruntime")
    if args.runtime == "onnxruntime":
        from hardnet_analysis.profiler.run_ort import check_settings

        check_settings(_settings(args))
    backend = pick(args.device, args.strict_device).backend  # --strict-device: exit 2 now
    if args.thread_time:
        check_thread_time(backend, args.threads)
    _check_counters(args.counters, backend)
    with locked_directory(args.out) if args.out else contextlib.nullcontext():
        documents, failed = _sweep(args, backend)
    ok = [d for d in documents if isinstance(d, ProfileRun)]
    if args.format == "json":  # a list however many runs: one shape for every sweep
        write_json([d.to_dict() for d in documents])
    elif args.format == "csv":
        write_csv(_summary_rows(ok))
    else:
        out = console()
        if len(ok) == 1:
            out.print(layers_table(ok[0]))
        out.print(runs_table(ok))
    if failed:
        _log(f"{failed} of {len(documents)} runs failed (recorded)")
    return 1 if failed else 0


def _check_counters(wanted: str, backend: Backend) -> None:
    """A UsageError when `--counters` names a source the device it runs on cannot read: the
    profile would fall back to the modeled bytes without a word."""
    from hardnet_analysis.backends import get_backend, list_backends

    if wanted in ("auto", "none") or wanted in backend.counter_sources:
        return
    owners = [b for b in list_backends() if wanted in get_backend(b).counter_sources]
    needed = " or ".join(f"--device {b}" for b in owners) or "another device"
    raise UsageError(
        f"--counters {wanted} applies only with {needed}; this profile runs on --device "
        f"{backend.name} (its sources: {', '.join(backend.counter_sources) or 'none'})"
    )


def _summary_rows(runs: list[ProfileRun]) -> list[dict[str, Any]]:
    return [
        {
            "model": r.model,
            "input": r.size,
            "device": r.device.used,
            "median_s": r.latency.median_s,
            "p25_s": r.latency.p25_s,
            "p75_s": r.latency.p75_s,
            "layer_sum_ratio": r.layer_sum_ratio,
            "page_faults": r.page_faults,
            **encode(r.totals),
        }
        for r in runs
    ]
