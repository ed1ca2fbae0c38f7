"""`hda search --budget-macs 4.5G`: sweep HarDNets over k, m and n_layers within budgets.

A thin layer over `hardnet_analysis.search` (the `search/` folder), imported on use so that other
commands start without numpy.
"""

from __future__ import annotations

import argparse
import contextlib
import shlex
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hardnet_analysis.cli.common import (
    add_format_arg,
    add_input_args,
    argument_type,
    console,
    duration,
    given,
    input_shape,
    non_negative_float,
    output_dir,
    parse_int,
    positive_int,
    progress_bar,
    warn,
)
from hardnet_analysis.cli.common.train_top import (
    check_training,
    check_training_args,
    finished,
    recipe,
    register_training,
    train,
)
from hardnet_analysis.errors import ShapeError, UsageError
from hardnet_analysis.fileio import check_output, locked_directory
from hardnet_analysis.present.formats import write_csv, write_json
from hardnet_analysis.search_metrics import METRIC_NAMES
from hardnet_analysis.units import parse_count

if TYPE_CHECKING:
    from hardnet_analysis.documents.device_model import DeviceModel
    from hardnet_analysis.documents.fronts import FrontCandidate, TrainedFront
    from hardnet_analysis.search.emit import FrontKey
    from hardnet_analysis.search.space import SearchSpace
    from hardnet_analysis.search.sweep import Budgets, Ranker, SearchResult

#: The names `search.objectives` registers: one per metric, then the calibrated ones (a test
#: keeps this in step with the registry, which imports numpy).
OBJECTIVE_CHOICES = ("pareto", *METRIC_NAMES, "latency")


#: argparse type for budgets: 4.5G, 450M, 4.5e9 or 4500000000.
budget = argument_type(parse_count)
#: What `--emit` and `--sample` are when not given (both only with --out).
EMIT = 10
SAMPLE = 2000
#: The largest `--sample`: enough points for any plot; more only costs minutes and memory.
MAX_SAMPLE = 100_000


def space_file(text: str) -> Path:
    """`--write-space FILE`: a file to write, named .toml or .json (what it holds)."""
    from hardnet_analysis.search.space import SPACE_SUFFIXES

    path = check_output(text, "file")
    if path.suffix not in SPACE_SUFFIXES:
        raise UsageError(
            f"{text!r}: the space is written as TOML (.toml) or JSON (.json), by the name's end"
        )
    return path


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "search",
        help="search HarDNets over k, m and n_layers within MAC/param/CIO budgets",
        description="Sweep HarDNets (or FC-HarDNets) built on a template (stem, transition "
        "widths, downsampling, head) over per-stage growth rate k, layers per block and channel "
        "weighting factor m; an FC-HarDNet's stages are its encoder blocks, then its decoder "
        "blocks. Keeps the "
        "candidates within the budgets and ranks them: the Pareto front of CIO (lower is better) "
        "against capacity (MACs or params, higher is better) first, or by one --objective. "
        "Lists: '4,8,16' (every stage), '12,14/16/20/40/160' (per stage, '/'-separated) or "
        "'x0.75,x1' (scales of the template's values; k and n_layers).",
    )
    _register_space(parser)
    add_input_args(parser, several=True)
    _register_budgets(parser)
    _register_ranking(parser)
    add_format_arg(parser)
    register_training(parser)
    parser.set_defaults(func=run)


def _register_space(parser: argparse.ArgumentParser) -> None:
    space = parser.add_argument_group("search space")
    space.add_argument(
        "--template",
        metavar="NAME|FILE.json",
        help="template: hardnet39ds, hardnet68 (default), hardnet68ds, hardnet85, fchardnet70 "
        "(its 5 encoder then 4 decoder blocks are the stages), or a definition file",
    )
    space.add_argument("--space", metavar="FILE", help="space file (.toml or .json; see README)")
    space.add_argument("--k", metavar="LISTS", help="growth rates k per stage")
    space.add_argument(
        "--m", metavar="LISTS", help="m values: one list for all stages, or per stage"
    )
    space.add_argument("--n-layers", metavar="LISTS", help="layers per block per stage")
    space.add_argument(
        "--widths",
        metavar="LISTS",
        help="transition (stage output) widths per stage, searched too (HarDNet templates; "
        "default: the template's, fixed)",
    )
    space.add_argument(
        "--write-space",
        type=argument_type(space_file),
        metavar="FILE",
        help="write the space (.toml or .json) and exit",
    )


def _register_budgets(parser: argparse.ArgumentParser) -> None:
    limits = parser.add_argument_group("budgets (counts at --input and --batch)")
    for name in ("macs", "params", "cio"):
        limits.add_argument(
            f"--budget-{name}", type=budget, metavar="N", help=f"at most N {name} (e.g. 4.5G)"
        )
    limits.add_argument(
        "--min-moc", type=non_negative_float, metavar="X", help="every conv's MACs/CIO at least X"
    )
    limits.add_argument(
        "--budget-latency",
        type=duration,
        metavar="T",
        help="predicted latency at most T (12ms; needs --device-model)",
    )


def _register_ranking(parser: argparse.ArgumentParser) -> None:
    rank = parser.add_argument_group("ranking and output")
    rank.add_argument(
        "--objective",
        choices=OBJECTIVE_CHOICES,
        default="pareto",
        help="pareto (default: CIO vs capacity) or one metric; latency needs --device-model "
        "(or the older --calibration)",
    )
    rank.add_argument(
        "--capacity",
        choices=("macs", "params"),
        default="macs",
        help="capacity axis of the Pareto front (default macs)",
    )
    rank.add_argument(
        "--device-model",
        metavar="DEVICE.json",
        help="device model from hda calibrate: per-layer predicted latency, summed per stage",
    )
    rank.add_argument(
        "--threads",
        type=positive_int,
        metavar="N",
        help="CPU threads the latency is predicted for, one the device model holds (default: "
        "torch's count here when it holds it, else its only count)",
    )
    rank.add_argument(
        "--calibration", metavar="FILE", help="older macs + cio latency model from hda correlate"
    )
    rank.add_argument("--top", type=positive_int, default=10, help="rows shown (default 10)")
    rank.add_argument(
        "--emit", type=positive_int, help=f"definitions written with --out (default {EMIT})"
    )
    rank.add_argument(
        "--out",
        type=output_dir,
        metavar="DIR",
        help="write DIR/front.json and DIR/candidates/<front id>/*.json",
    )
    rank.add_argument(
        "--sample",
        type=argument_type(partial(parse_int, least=0, most=MAX_SAMPLE)),
        default=None,
        metavar="N",
        help="with --out, also write DIR/sample.json: N candidates drawn from the whole space "
        f"for `hda report` (default {SAMPLE}; 0 for none; at most {MAX_SAMPLE:,}, and all of "
        "a smaller space)",
    )
    rank.add_argument(
        "--force", action="store_true", help="replace another search's front in --out DIR"
    )


def _output_options(args: argparse.Namespace) -> None:
    """Refuse --emit and --sample without --out (they say what it writes, and would be
    ignored), then fill in their defaults."""
    given = [f"--{name}" for name in ("emit", "sample") if getattr(args, name) is not None]
    if given and not args.out:
        verb = "apply" if len(given) > 1 else "applies"
        raise UsageError(f"{' and '.join(given)} {verb} only with --out DIR (what it writes)")
    args.emit = EMIT if args.emit is None else args.emit
    args.sample = SAMPLE if args.sample is None else args.sample


def _space(args: argparse.Namespace) -> SearchSpace:
    from hardnet_analysis.search.space import (
        DEFAULT_TEMPLATE,
        default_space,
        load_template,
        with_flags,
    )
    from hardnet_analysis.search.space_file import load_space

    if args.space:
        space = load_space(args.space, args.template)
    else:
        name = args.template or DEFAULT_TEMPLATE
        space = default_space(load_template(name), name)
    return with_flags(space, args.k, args.m, args.n_layers, args.widths)


def _ranker(
    args: argparse.Namespace, keep: int, device: DeviceModel | None
) -> tuple[Ranker, dict[str, Any]]:
    """The ranker `--objective` asks for (`device`: the device model read), and what the front
    records about it."""
    from hardnet_analysis.search.objectives import get_objective
    from hardnet_analysis.search.sweep import ObjectiveRanker, ParetoRanker

    if args.objective == "pareto":
        if args.calibration:
            raise UsageError("--calibration is used only with --objective latency")
        return ParetoRanker(args.capacity, keep), {"capacity": args.capacity}
    model = args.device_model if args.objective == "latency" else None
    objective = get_objective(args.objective, args.calibration, model, device)
    return ObjectiveRanker(objective, keep), dict(objective.info)


def _device(args: argparse.Namespace) -> DeviceModel | None:
    """The device model of --device-model for --threads, read once (None without one)."""
    if args.budget_latency is not None and not args.device_model:
        raise UsageError("--budget-latency needs --device-model DEVICE.json (from hda calibrate)")
    if args.threads is not None and not args.device_model:
        raise UsageError("--threads needs --device-model DEVICE.json (from hda calibrate)")
    from hardnet_analysis.documents.device_model import DeviceModel

    return DeviceModel.read(args.device_model, args.threads) if args.device_model else None


def _features(
    args: argparse.Namespace, device: DeviceModel | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Per-part features (predicted latency on `device`) and what the front records about
    them."""
    from hardnet_analysis.search.objectives import latency_feature

    return latency_feature(device, args.device_model) if device is not None else ({}, {})


def _budgets(args: argparse.Namespace) -> Budgets:
    """The command's budgets, latency included (`_device` checked it has a device model)."""
    from hardnet_analysis.search.sweep import Budgets

    return Budgets(
        args.budget_macs, args.budget_params, args.budget_cio, args.min_moc, args.budget_latency
    )


def _key(
    args: argparse.Namespace,
    space: SearchSpace,
    ranker: Ranker,
    info: dict[str, Any],
    budgets: Budgets,
) -> FrontKey:
    """What decides the front this command finds (its id), known before the sweep."""
    from hardnet_analysis.search.emit import FrontKey

    # native: 224 for HarDNet, 1024x2048 for FC; several sizes: the size is searched too
    sizes = args.input or (None,)
    shapes = [input_shape(args, space.template, size) for size in sizes]
    more = tuple(shapes) if len(shapes) > 1 else ()
    return FrontKey(space, shapes[0], args.dtype, budgets, ranker.name, info, more)


def _sweep(
    args: argparse.Namespace, key: FrontKey, ranker: Ranker, features: dict[str, Any]
) -> SearchResult:
    from hardnet_analysis.search.sweep import sweep

    try:
        with progress_bar("search", "sweeping candidates", "candidates swept") as progress:
            return sweep(
                key.space,
                key.input_shapes or key.input_shape,
                key.budgets,
                ranker,
                args.dtype,
                progress=progress,
                features=features,
                sample=args.sample if args.out else 0,
                capacity=args.capacity,
            )
    except ShapeError as exc:
        shapes = key.input_shapes or (key.input_shape,)
        sizes = ", ".join(f"{h}x{w}" for h, w in (s.hw for s in shapes))
        raise ShapeError(f"input {sizes} is too small for the template: {exc}") from None


def run(args: argparse.Namespace) -> int:
    from hardnet_analysis.search.emit import (
        candidate_row,
        check_directory,
        front_document,
        write_front,
    )
    from hardnet_analysis.search.present import trained_rows
    from hardnet_analysis.search.space_file import save_space

    _output_options(args)
    check_training_args(args)
    space = _space(args)
    if args.train_top and (space.template.family != "hardnet") != (args.task == "segmentation"):
        raise UsageError(
            f"--train-top on a {space.template.family} template needs --task "
            f"{'classification' if space.template.family == 'hardnet' else 'segmentation'}"
        )
    if args.train_top and args.input and len(args.input) > 1:
        raise UsageError(
            "--train-top trains at one --image-size: search one --input size (one search per "
            "size), not several"
        )
    if args.write_space:
        path = save_space(space, args.write_space)
        print(f"wrote {path} ({space.size:,} candidates)")
        return 0
    device = _device(args)
    ranker, info = _ranker(args, max(args.top, args.emit if args.out else 0), device)
    features, feature_info = _features(args, device)
    info |= feature_info
    key = _key(args, space, ranker, info, _budgets(args))
    asked = recipe(args) if args.train_top else None  # a bad training flag: before the sweep
    _check_sample(args, space)
    # One search at a time in a directory: two at once would leave two fronts' files mixed.
    with locked_directory(args.out) if args.out else contextlib.nullcontext():
        if args.out:
            check_directory(args.out, key.id, args.force)  # before the sweep: fail fast
        if asked is not None:
            check_training(args, key.id, asked)
        result = _sweep(args, key, ranker, features)
        command = shlex.join(["hda", *getattr(args, "argv", [])])
        written = write_front(args.out, result, args.emit, info, command) if args.out else None
        trained = train(args, asked) if asked is not None else None
    paths = {c.id: c.definition for c in written.candidates} if written else {}
    rows = [
        replace(row, definition=paths.get(row.id))
        for row in (candidate_row(space, c, result.template) for c in result.candidates[: args.top])
    ]
    if args.format == "json":
        document = front_document(result, rows, info, command)
        write_json(trained.to_dict() if trained else document.to_dict())
    elif args.format == "csv":
        write_csv(trained_rows(trained) if trained else [_csv_row(r) for r in rows])
    else:
        _show(args, result, rows, len(paths), trained, written.id if written else "")
    return finished(trained) if trained else 0


def _check_sample(args: argparse.Namespace, space: SearchSpace) -> None:
    """Say so when a `--sample` given is more than the space holds (all of it is taken)."""
    if args.out and given(args, "sample") and args.sample > space.size:
        warn(
            f"--sample {args.sample:,} is more than the space's {space.size:,} candidates; "
            "sample.json holds all of them"
        )


def _show(
    args: argparse.Namespace,
    result: SearchResult,
    rows: list[FrontCandidate],
    written: int,
    trained: TrainedFront | None,
    front_id: str = "",
) -> None:
    """The search table, the whole front's size and span, where the front was written, and
    the trained table."""
    from hardnet_analysis.search.emit import candidate_row
    from hardnet_analysis.search.present import front_line, search_table, trained_table

    template = candidate_row(result.space, result.template, result.template)
    console().print(search_table(result, rows, template))
    if line := front_line(result):
        print(line)
    if written:
        where = f"{args.out}/candidates/{front_id}"
        print(f"wrote {args.out}/front.json and {written} definitions in {where}")
    if trained:
        console().print(trained_table(trained))


def _csv_row(row: FrontCandidate) -> dict[str, Any]:
    """A front row for CSV, its per-stage lists written as ``14/16/20``."""
    values = row.to_dict()
    return {**values, **{k: _joined(values[k]) for k in ("k", "m", "n_layers")}}


def _joined(values: list[Any]) -> str:
    return "/".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values)
