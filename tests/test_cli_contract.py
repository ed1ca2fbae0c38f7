"""The command-line contract: every bad input is one line on stderr and an exit status, never a
traceback, and leaves the working directory as it was (but for the output a command names).

`CASES` is one table over every subcommand and every kind of argument; each row runs in a fresh
temporary directory holding `Workdir`'s files. The hypothesis tests below it feed arbitrary
strings to each argument parser, which may only return a valid value or raise hda's own error.
"""

from __future__ import annotations

import json
import math
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hardnet_analysis.cli.common import parse_float, parse_int, parse_json_object
from hardnet_analysis.cli.main import main
from hardnet_analysis.errors import HdaError
from hardnet_analysis.shapes import parse_input_shape
from hardnet_analysis.units import (
    LARGEST,
    parse_bytes,
    parse_count,
    parse_duration,
    parse_input_size,
)

TINY = Path(__file__).parent / "data" / "tinyhardnet.json"


@dataclass(frozen=True)
class Case:
    """A command line (shell words), the exit status it must end with, a piece of its one
    line on stderr, and the one path it may create (successful rows only)."""

    argv: str
    code: int
    message: str
    creates: str = ""

    def __str__(self) -> str:
        return self.argv


def _definition(**changes: Any) -> dict[str, Any]:
    """tinyhardnet.json with `changes` applied: dotted paths into it, None to delete."""
    document: dict[str, Any] = json.loads(TINY.read_text())
    for path, value in changes.items():
        *parents, last = path.split(".")
        node: Any = document
        for key in parents:
            node = node[int(key)] if key.isdigit() else node[key]
        if value is None:
            del node[last]
        else:
            node[last] = value
    return document


#: Definition files with one thing wrong each (the key names the file, `NAME.json`).
DEFINITIONS: dict[str, dict[str, Any]] = {
    "nan": {"stages.0.block.grmul": math.nan},
    "v99": {"version": 99},
    "noformat": {"format": None},
    "classes0": {"head.num_classes": 0},
    "inch0": {"stem.in_channels": 0},
    "layers0": {"stages.1.block.n_layers": 0},
    "grmulhuge": {"stages.0.block.grmul": 1e308},
    "grmulsmall": {"stages.0.block.grmul": 0.5},
    "layersmany": {"stages.1.block.n_layers": 10_000},
    "khuge": {"stages.0.block.growth_rate": 10**9},
}

#: The table: every subcommand, every kind of argument.
CASES = [
    # the command itself
    Case("", 2, "the following arguments are required: COMMAND"),
    Case("frobnicate", 2, "invalid choice: 'frobnicate'"),
    Case("cio", 2, "the following arguments are required: model"),
    Case("cio hardnet68 --bogus", 2, "unrecognized arguments: --bogus"),
    # models: names, torchvision names, files, callables
    Case("cio hardnet86", 2, "unknown model 'hardnet86'"),
    Case("compare hardnet68 hardnet9000", 2, "unknown model 'hardnet9000'"),
    Case("definition resnet50 --out x.json", 2, "is a torch module builder with no hda definition"),
    Case("cio missing.json", 2, "'missing.json' does not exist"),
    Case("cio bad.json", 2, "is not valid JSON"),
    Case("cio list.json", 2, "list.json is not an hda definition"),
    Case("cio nan.json", 2, "nan.json: stages[0].block.grmul: expected a finite number"),
    Case("cio v99.json", 2, "version 99"),
    Case("cio noformat.json", 2, "is not an hda definition (format None)"),
    Case("cio classes0.json", 2, "num_classes must be >= 1"),
    Case("cio inch0.json", 2, "inch0.json: stem: in_channels must be >= 1"),
    Case("cio layers0.json", 2, "layers0.json: stages[1].block: n_layers must be from 1 to 256"),
    Case("cio grmulhuge.json", 2, "m must be from 1 to 3, got 1e+308"),
    Case("cio grmulsmall.json", 2, "m must be from 1 to 3, got 0.5"),
    Case("cio layersmany.json", 2, "n_layers must be from 1 to 256, got 10000"),
    Case("cio khuge.json", 2, "growth rate k must be from 1 to 1024, got 1000000000"),
    Case("search --m 1e308", 2, "m: 1e+308 is not a number > 1 and <= 3"),
    Case("search --space deep.json", 2, "is nested too deeply to read"),
    Case("report deep.json --out r.html", 2, "is nested too deeply to read"),
    Case("correlate zero.json", 2, "latency.median_s must be a positive number, not 0.0"),
    Case("predict tiny.json --device-model negscale.json", 2, "context fit's scale must be > 0"),
    Case("predict tiny.json --device-model twice.json", 2, "is fitted twice"),
    Case("train tiny.json --batch-size 99999999999999999999", 2, "must be <= 1,048,576"),
    Case("evaluate tiny.json --random-weights --batch-size 2000000", 2, "must be <= 1,048,576"),
    Case("cio hardnet68 --batch 2000000", 2, "argument --batch: '2000000' must be <= 1,048,576"),
    Case("train tiny.json --seed -1", 2, "argument --seed: '-1' must be >= 0"),
    Case("train tiny.json --seed 99999999999", 2, "must be <= 4,294,967,295"),
    Case("definition hardnet68 --out /proc/hda.json", 2, "'/proc/hda.json' cannot be written"),
    Case("calibrate --grid tiny --out /proc/c.json", 2, "'/proc/c.json' cannot be written"),
    Case("cio nosuchmodule:build", 2, "cannot import module 'nosuchmodule'"),
    Case("cio missing.py:build", 2, "file 'missing.py' does not exist"),
    Case("graph bad.json --out g.graphml", 2, "is not valid JSON"),
    Case("predict hardnet86 --device-model missing.json", 2, "'missing.json' does not exist"),
    Case("report hardnet86 --out r.html", 2, "unknown model 'hardnet86'"),
    # sizes: one way of saying "too small" under both commands that take a definition
    Case("cio hardnet68 --input 0", 2, "must be positive"),
    Case("cio hardnet68 --input 22x", 2, "argument --input: input size '22x' is not understood"),
    Case("cio hardnet68 --input=-5", 2, "argument --input"),
    Case("cio hardnet68 --input 224x224x3", 2, "argument --input"),
    Case("compare hardnet68 --input axb", 2, "argument --input"),
    Case("cio tiny.json --input 4", 2, "input 4x4 is too small for tinyhardnet: feature map"),
    Case("profile tiny.json --input 4", 2, "input 4x4 is too small for tinyhardnet: feature map"),
    Case("search --input 8 --k x1 --m 1.7 --n-layers x1", 2, "too small"),
    Case("profile tiny.json --input 0", 2, "argument --input"),
    # whole input shapes (--input-shape), batch first, with a dtype
    Case("cio hardnet68 --input-shape 1x3x0x224", 2, "--input-shape: input shape '1x3x0x224'"),
    Case("cio hardnet68 --input-shape 1x3x-8x8", 2, "needs positive dimensions (each >= 1)"),
    Case("cio resnet18 --input-shape 1x3:float13", 2, "unknown input dtype 'float13'; accepted"),
    Case("compare hardnet68 --input-shape 1x3x", 2, "input shape '1x3x' is not understood"),
    Case("cio resnet18 --input-shape 1x3x8x8 --input-shape 1x3", 2, "takes 1 positional input"),
    Case("cio hardnet68 --input-shape 1x3x8x8 --input 8", 2, "--input and --input-shape cannot"),
    Case("graph hardnet68 --input-shape 1x3x16x8x8 --out g.json", 2, "one NCHW image input"),
    Case("search --input-shape 1x3x16x8x8 --k x1 --m 1.7 --n-layers x1", 2, "one NCHW image"),
    # batch, dtype, other counts
    Case("cio hardnet68 --batch 0", 2, "argument --batch: '0' must be >= 1"),
    Case("cio hardnet68 --batch -1", 2, "argument --batch"),
    Case("cio hardnet68 --batch 1.5", 2, "'1.5' is not an integer"),
    Case("cio hardnet68 --dtype fp8x", 2, "argument --dtype: invalid choice"),
    Case("models --family nope", 2, "family 'nope' is not one of"),
    Case("models --format xml", 2, "argument --format: invalid choice"),
    Case("profile tiny.json --dtype int8", 2, "argument --dtype: invalid choice"),
    Case("profile tiny.json --warmup -1", 2, "argument --warmup: '-1' must be >= 0"),
    Case("profile tiny.json --repeat 0", 2, "argument --repeat"),
    Case("profile tiny.json --threads 0", 2, "argument --threads"),
    Case("profile tiny.json --thread-time --threads 2", 2, "--thread-time needs"),
    Case("predict hardnet68 --device-model dev.json --top -1", 2, "argument --top"),
    Case("calibrate --repeat 0 --out c.json", 2, "argument --repeat"),
    Case("calibrate --budget 0 --out c.json", 2, "argument --budget: '0' must be > 0"),
    Case("calibrate --budget nan --out c.json", 2, "not a finite number"),
    Case("search --top 0", 2, "argument --top"),
    Case("search --sample -1 --out s", 2, "argument --sample: '-1' must be >= 0"),
    Case("search --emit 3", 2, "--emit applies only with --out DIR"),
    Case("search --sample 5", 2, "--sample applies only with --out DIR"),
    Case("search --train-top 2", 2, "--train-top needs --out DIR"),
    Case("search --train-top 1 --out s --max-retries -1", 2, "argument --max-retries"),
    Case("search --train-top 1 --out s --workers -1", 2, "argument --workers"),
    Case("search-worker --workers 0", 2, "argument --workers"),
    Case("train tiny.json --epochs 0", 2, "argument --epochs"),
    Case("train tiny.json --workers -1", 2, "argument --workers: '-1' must be >= 0"),
    Case("train tiny.json --warmup-epochs 3 --epochs 2", 2, "--warmup-epochs must be in 0..1"),
    Case("train tiny.json --lr -1", 2, "--lr must be a positive number"),
    Case("train tiny.json --label-smoothing 1", 2, "--label-smoothing must be in [0, 1)"),
    Case("evaluate tiny.json --batch-size 0 --random-weights", 2, "argument --batch-size"),
    # budgets and sizes with units
    Case("search --budget-macs 1e400", 2, "count '1e400' is too large"),
    Case("search --budget-macs 4.5X", 2, "count '4.5X' is not understood"),
    Case("search --budget-params lots", 2, "count 'lots' is not understood"),
    Case("search --budget-cio=-1", 2, "argument --budget-cio"),
    Case("search --budget-latency 0s", 2, "must be a positive, finite time"),
    Case("search --budget-latency 1e400s", 2, "must be a positive, finite time"),
    Case("search --budget-latency 12", 2, "duration '12' has no unit; give it as e.g. 12ms or 12s"),
    Case("search --budget-latency 12parsecs", 2, "duration '12parsecs' is not understood"),
    Case("search --budget-latency 12ms", 2, "--budget-latency needs --device-model"),
    Case("search --min-moc nan", 2, "argument --min-moc: 'nan' is not a finite number"),
    Case("cio hardnet68 --cache 1e400", 2, "size '1e400' is too large"),
    Case("cio hardnet68 --cache lots", 2, "size 'lots' is not understood"),
    Case("calibrate --cache-bytes 2XiB --out c.json", 2, "argument --cache-bytes"),
    # lists: --k, --m, --n-layers
    Case("search --k x0", 2, "--k: scale x0 of the template's 14 is 0"),
    Case("search --k x1e9", 2, "stage 1 k: 14000000000 is not an integer from 1 to 1024"),
    Case("search --k x1e400", 2, "--k: scale xinf"),
    Case("search --k xnan", 2, "--k: scale xnan"),
    Case("search --n-layers x0.01", 2, "--n-layers: scale x0.01"),
    Case("search --n-layers x1e9", 2, "n_layers: 8000000000 is not an integer from 1 to 256"),
    Case("search --k 99999999999 --m 1.7 --n-layers 4", 2, "not an integer from 1 to 1024"),
    Case("search --k ''", 2, "--k: the list is empty"),
    Case("search --k 14/16", 2, "2 lists separated by '/' but the template has 5 stages"),
    Case("search --k abc", 2, "--k: 'abc' is not a number"),
    Case("search --k x1 --n-layers 8//16/16/4", 2, "stage 2 n_layers: the list is empty"),
    Case("search --n-layers 0,4", 2, "n_layers: 0 is not an integer from 1 to 256"),
    Case("search --m 1.0", 2, "m: 1.0 is not a number > 1"),
    Case("search --m nan", 2, "m: nan is not a number > 1"),
    Case("search --m x0.9", 2, "scales (x0.9) apply to k and n_layers, not to m"),
    Case("search --m 1.7/0.9/1.7/1.7/1.7", 2, "stage 2 m: 0.9 is not a number > 1"),
    Case("search --k 12 --m 1e300 --n-layers 4", 2, "m: 1e+300 is not a number > 1 and <= 3"),
    # JSON and TOML arguments and files
    Case("cio hardnet68 --kwargs '[1]'", 2, "argument --kwargs: '[1]' is not a JSON object"),
    Case("cio hardnet68 --kwargs '{bad'", 2, "argument --kwargs: '{bad' is not valid JSON"),
    Case("search --space missing.toml", 2, "space file 'missing.toml' does not exist"),
    Case("search --space space.toml", 2, "space file 'space.toml' cannot be read"),
    Case("search --space d", 2, "space file 'd' cannot be read"),
    Case("search --space list.json", 2, "list.json: expected a table/object"),
    Case("search --template resnet9000", 2, "unknown template 'resnet9000'"),
    Case("search --template densenet121", 2, "template 'densenet121' is a densenet"),
    Case("search --objective latency", 2, "needs --device-model DEVICE.json"),
    Case("search --calibration x.json", 2, "--calibration is used only with --objective latency"),
    Case("search --objective latency --calibration bad.json", 2, "'bad.json' is not valid JSON"),
    Case("search --device-model bad.json", 2, "'bad.json' is not valid JSON"),
    Case("predict hardnet68 --device-model bad.json", 2, "is not valid JSON"),
    Case("predict hardnet68 --device-model tiny.json", 2, "is not an hda device model"),
    Case("correlate runs --device-model list.json", 2, "is not an hda device model"),
    # paths for reading: run files and directories of them
    Case("correlate missing.json", 2, "run file 'missing.json' does not exist"),
    Case("correlate bad.json", 2, "run file 'bad.json' is not valid JSON"),
    Case("correlate tiny.json", 2, "'tiny.json' is not an hda profile run"),
    Case("correlate d", 2, "no successful profile runs among the files given"),
    Case("correlate broken.json", 2, "'broken.json': missing field 'latency'"),
    Case("report d --out r.html", 2, "'d' holds no profile runs, search or training runs"),
    Case("search-worker", 2, "give the search's DIR or --storage URL"),
    # paths for writing: a directory where a file goes, a file among the parents
    Case("definition hardnet68 --out d", 2, "argument --out: 'd' is a directory"),
    Case("definition hardnet68 --out f/x.json", 2, "'f/x.json' cannot be written: 'f' is a file"),
    Case("definition hardnet68 --out ''", 2, "has an empty name"),
    Case("graph hardnet68 --out d", 2, "argument --out: 'd' is a directory"),
    Case("graph hardnet68 --out f/g.graphml", 2, "'f' is a file"),
    Case("search --k x1 --m 1.7 --n-layers x1 --out f", 2, "argument --out: 'f' is a file"),
    Case("search --out f/s", 2, "'f' is a file"),
    Case("search --write-space d", 2, "argument --write-space: 'd' is a directory"),
    Case("search --write-space x.yaml", 2, "the space is written as TOML (.toml) or JSON"),
    Case("search --write-space f/s.toml", 2, "'f' is a file"),
    Case("report hardnet68 --out d", 2, "argument --out: 'd' is a directory"),
    Case("report hardnet68 --out f/r.html", 2, "'f' is a file"),
    Case("correlate runs --save-calibration d", 2, "--save-calibration: 'd' is a directory"),
    Case("correlate runs --save-calibration f/c.json", 2, "'f' is a file"),
    Case("profile tiny.json --out f", 2, "argument --out: 'f' is a file; give a directory"),
    Case("profile tiny.json --out f/runs", 2, "'f' is a file"),
    Case("calibrate --out d", 2, "argument --out: 'd' is a directory"),
    Case("calibrate --out f/c.json", 2, "'f' is a file"),
    Case("train tiny.json --out f", 2, "argument --out: 'f' is a file; give a directory"),
    Case("train tiny.json --out f/run", 2, "'f' is a file"),
    Case("train blocked.json", 2, "'runs/blocked' is a file; give a directory"),
    # checkpoints
    Case("evaluate tiny.json --weights bad.pt", 2, "'bad.pt' cannot be read as a checkpoint"),
    Case("evaluate tiny.json --weights missing.pt", 2, "'missing.pt' does not exist"),
    Case("evaluate tiny.json", 2, "no --weights given"),
    Case("train tiny.json --weights bad.pt --epochs 1", 2, "cannot be read as a checkpoint"),
    Case("train tiny.json --resume --out d --epochs 1", 2, "nothing to resume: 'd/last.pt'"),
    # data directories
    Case("train tiny.json --data missing", 2, "data directory 'missing' does not exist"),
    Case("train tiny.json --data f", 2, "data directory 'f' is a file"),
    Case("train tiny.json --data d --dataset folder", 2, "has no train/ or val/ directory"),
    Case("train tiny.json --data split", 2, "cat only in train/; dog only in val/"),
    Case("train tiny.json --dataset cifar", 2, "--dataset cifar needs --data DIR"),
    Case("evaluate tiny.json --random-weights --data missing", 2, "'missing' does not exist"),
    Case(
        "train tiny.json --data two --num-classes 3 --weights w10.pt --epochs 1",
        2,
        "does not fit a 3-class model (--num-classes 3; the data has 2 classes)",
    ),
    # an option that needs another, or that another overrides, is refused naming both
    Case("search --force", 2, "--force applies only with --out DIR"),
    Case("search --epochs 3", 2, "--epochs applies only with --train-top N"),
    Case("search --storage x.db", 2, "--storage applies only with --train-top N"),
    Case("search --data d --lr 0.1", 2, "applies only with --train-top N"),
    Case("search --device cpu", 2, "--device applies only with --train-top N"),
    Case(
        "search --train-top 1 --out s --ignore-index 3",
        2,
        "--ignore-index applies only with --task segmentation",
    ),
    Case("search --objective macs --capacity params", 2, "--capacity applies only with"),
    Case("search --write-space s.toml --out s", 2, "--write-space and --out cannot be combined"),
    Case("search --write-space s.toml --budget-macs 4G", 2, "--write-space and --budget-macs"),
    Case("cio hardnet68 --per-layer --by-block", 2, "--per-layer and --by-block cannot"),
    Case("cio hardnet68 --by-block --format csv --cache 2MB", 2, "--cache applies only with"),
    Case("correlate runs --device-model dev.json --format csv", 2, "--device-model applies only"),
    Case("train tiny.json --dataset digits --data d", 2, "--data applies only with --dataset"),
    Case("evaluate tiny.json --random-weights --dataset digits --data d", 2, "(digits is built"),
    Case("profile tiny.json --force", 2, "--force applies only with --out DIR"),
    Case("profile tiny.json --counters ncu", 2, "--counters ncu applies only with --device cuda"),
    Case("profile tiny.json --counters nvprof --out r", 2, "--counters nvprof applies only with"),
    Case(
        "evaluate tiny.json --weights w10.pt --random-weights",
        2,
        "--weights and --random-weights cannot be combined",
    ),
    Case(
        "evaluate tiny.json --random-weights --ignore-index 3",
        2,
        "--ignore-index applies only with --task segmentation",
    ),
    Case("train tiny.json --ignore-index 3", 2, "--ignore-index applies only with --task segm"),
    Case(
        "calibrate --models none --context-input 160 --out c.json",
        2,
        "--context-input applies only with context networks (not --models none)",
    ),
    Case("predict tiny.json --device-model dev.json --top 3 --explain", 2, "--top and --explain"),
    Case(
        "predict tiny.json --device-model dev.json --top 3 --format csv",
        2,
        "--top applies only with --format table",
    ),
    Case("report tiny.json --model tiny --out r.html", 2, "--model applies only with profile runs"),
    Case("report runs --input 64 --out r.html", 2, "--input applies only with models among"),
    Case("report runs --batch 2 --out r.html", 2, "--batch applies only with models among"),
    Case("report runs --input-shape 1x3x8x8 --out r.html", 2, "--input-shape applies only with"),
    Case(
        "report tiny.json --device-model dev.json --out r.html",
        2,
        "--device-model applies only with profile runs",
    ),
    # one number parser: ASCII digits, no '_' or other scripts' digits, bounded
    Case("cio hardnet68 --batch 1_000", 2, "argument --batch: '1_000' is not an integer"),
    Case("cio hardnet68 --batch \u0661\u0662", 2, "is not an integer (digits 0-9 only)"),
    Case("cio hardnet68 --batch 1e3", 2, "argument --batch: '1e3' is not an integer"),
    Case("cio hardnet68 --batch +5", 2, "argument --batch: '+5' is not an integer"),
    Case("cio hardnet68 --input 1_000", 2, "argument --input: input size '1_000' is not"),
    Case("cio hardnet68 --input \u0661\u0662", 2, "argument --input: input size"),
    Case("cio hardnet68 --input 20000", 2, "a side is at most 16,384"),
    Case("compare hardnet68 --input 64x99999", 2, "a side is at most 16,384"),
    Case("profile tiny.json --input 16385x64", 2, "a side is at most 16,384"),
    Case("profile tiny.json --repeat 1_0", 2, "argument --repeat: '1_0' is not an integer"),
    Case("profile tiny.json --device cpu:\u00b2", 2, "the index after ':' must be a number"),
    Case("search --top 99999999999999999999999999999999999", 2, "must be <= 2,147,483,647"),
    Case("search --k 1_4", 2, "--k: '1_4' is not a number"),
    Case("search --k \u0661\u0664", 2, "is not a number; give comma-separated integers"),
    Case("search --m 1_7", 2, "--m: '1_7' is not a number"),
    Case("search --sample 100001 --out s", 2, "argument --sample: '100001' must be <= 100,000"),
    Case("search --min-moc \u0663", 2, "argument --min-moc"),
    Case("search --budget-macs \u0661G", 2, "is not understood"),
    Case("search --budget-latency \u0661\u0662ms", 2, "is not understood"),
    Case("cio hardnet68 --cache \u0662MB", 2, "is not understood"),
    Case("calibrate --budget 1_0 --out c.json", 2, "argument --budget: '1_0' is not a number"),
    Case("calibrate --budget infinity --out c.json", 2, "is not a finite number"),
    Case("train tiny.json --lr 0_1", 2, "argument --lr: '0_1' is not a number"),
    Case("train tiny.json --lr inf", 2, "argument --lr: 'inf' is not a finite number"),
    Case("train tiny.json --wd nan", 2, "argument --wd: 'nan' is not a finite number"),
    Case("train tiny.json --warmup-epochs -1", 2, "argument --warmup-epochs: '-1' must be >= 0"),
    Case("train tiny.json --ignore-index x", 2, "argument --ignore-index: 'x' is not an integer"),
    Case("train tiny.json --image-size 20000", 2, "a side is at most 16,384"),
    # nothing is created when a command refuses
    Case("search-worker d", 2, "storage 'sqlite:///"),
    Case("search-worker --storage j.log", 2, "j.log' does not exist"),
    Case("search-worker --storage sqlite:///x.db --workers 2", 2, "'sqlite:///x.db' does not"),
    Case(
        "correlate runs --save-calibration c.json --device-model list.json",
        2,
        "is not an hda device model",
    ),
    Case("search --budget-macs 1 --k x1 --m 1.7 --n-layers x1 --out s/t", 2, "no candidate"),
    Case("profile tiny.json --input 4 --out r/s", 2, "input 4x4 is too small for tinyhardnet"),
    Case("search --train-top 1 --out s --data missing", 2, "data directory 'missing' does not"),
    Case("search --train-top 1 --out s --lr 0", 2, "--lr must be a positive number, not 0"),
    # user code: an exit at import or build is an error naming it
    Case("cio exit.py:build", 2, "importing 'exit.py': it called sys.exit(3)"),
    Case("cio exitbuild.py:build", 2, "building exitbuild.py:build: it called sys.exit('stop')"),
    # the named output, and nothing else, is written
    Case("definition hardnet68 --out new/h68.json", 0, "", creates="new/h68.json"),
    Case("search --write-space s.toml", 0, "", creates="s.toml"),
]


#: A device model as `hda calibrate` writes it, edited by hand in the rows that need it.
DEVICE = Path(__file__).parents[1] / "results" / "predict-sweep" / "device-1thread.json"


def _negative_scale(device: dict[str, Any]) -> None:
    device["context"]["scale"] = -1.0


def _kind_twice(device: dict[str, Any]) -> None:
    device["kinds"].append(device["kinds"][0])


class Workdir:
    """The files every row may refer to, made in a temporary directory."""

    def __init__(self, root: Path, runs: list[Path], weights: Path) -> None:
        self.root = root
        shutil.copy(TINY, root / "tiny.json")
        for name, changes in DEFINITIONS.items():
            (root / f"{name}.json").write_text(json.dumps(_definition(**changes)))
        (root / "bad.json").write_text("{bad")
        (root / "list.json").write_text("[1, 2]")
        (root / "space.toml").write_text("k = [")
        (root / "bad.pt").write_bytes(b"not a checkpoint")
        (root / "f").write_text("a file\n")
        (root / "d").mkdir()
        (root / "runs").mkdir()
        for run in runs:
            shutil.copy(run, root / "runs" / run.name)
        shutil.copy(TINY, root / "blocked.json")  # its default --out, runs/blocked, is a file
        (root / "runs" / "blocked").write_text("not a directory\n")
        broken = json.loads(runs[0].read_text())
        del broken["latency"]
        (root / "broken.json").write_text(json.dumps(broken))
        zero = json.loads(runs[0].read_text())
        zero["latency"]["median_s"] = 0.0
        (root / "zero.json").write_text(json.dumps(zero))
        (root / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
        for name, change in (("negscale", _negative_scale), ("twice", _kind_twice)):
            device = json.loads(DEVICE.read_text())
            change(device)
            (root / f"{name}.json").write_text(json.dumps(device))
        shutil.copy(DEVICE, root / "dev.json")
        (root / "exit.py").write_text("import sys\n\nsys.exit(3)\n")
        (root / "exitbuild.py").write_text("import sys\n\n\ndef build():\n    sys.exit('stop')\n")
        shutil.copy(weights, root / "w10.pt")
        _images(root / "split", {"train": ["cat"], "val": ["dog"]})
        _images(root / "two", {"train": ["a", "b"], "val": ["a", "b"]})

    def snapshot(self) -> dict[str, tuple[int, int]]:
        """Every file's size and modification time, by path relative to the root."""
        return {
            str(p.relative_to(self.root)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(self.root.rglob("*"))
        }


def _images(root: Path, classes: dict[str, list[str]]) -> None:
    """An image folder: one small image per class of each split."""
    from PIL import Image

    for split, names in classes.items():
        for name in names:
            (root / split / name).mkdir(parents=True)
            Image.new("RGB", (8, 8), (40, 80, 120)).save(root / split / name / "0.png")


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny HarDNet's state dict for its own 10 classes."""
    import torch

    from hardnet_analysis.models import create_model

    path = tmp_path_factory.mktemp("weights") / "w10.pt"
    torch.save(create_model(str(TINY)).state_dict(), path)
    return path


@pytest.fixture
def workdir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, profiled_runs: list[Path], weights: Path
) -> Workdir:
    monkeypatch.chdir(tmp_path)
    return Workdir(tmp_path, profiled_runs, weights)


def run_cli(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str, str]:
    """`hda ARGV` in this process: exit status, stdout, stderr."""
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's usage errors
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("case", CASES, ids=str)
def test_bad_input_is_one_line_and_changes_nothing(
    case: Case, workdir: Workdir, capsys: pytest.CaptureFixture[str]
) -> None:
    before = workdir.snapshot()
    code, _, err = run_cli(capsys, shlex.split(case.argv))
    after = workdir.snapshot()
    assert code == case.code, err
    assert "Traceback" not in err
    if case.code:
        assert_one_error(err, case.message)
        assert after == before
    else:
        created = {p for p in set(after) - set(before) if not (workdir.root / p).is_dir()}
        assert created == {case.creates}
        assert {p: after[p] for p in before} == before


def assert_one_error(err: str, message: str) -> None:
    """Stderr as the contract has it, whatever the machine's load adds: no traceback; the
    error is the last line and the only one; the lines before it are hda's warnings, notes or
    progress lines (``hda search: 500/2,000 candidates swept``)."""
    lines = err.splitlines()
    assert "Traceback" not in err and err.endswith("\n"), err
    assert [line for line in lines if ": error: " in line] == lines[-1:], err
    assert message in lines[-1], err
    assert all(re.match(r"hda( [a-z-]+)?: ", line) for line in lines[:-1]), err


def test_every_subcommand_is_in_the_table() -> None:
    from hardnet_analysis.cli.main import COMMANDS

    names = {module.__name__.rsplit(".", 1)[-1].replace("_", "-") for module in COMMANDS}
    assert names <= {case.argv.split(" ", 1)[0] for case in CASES}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ("definition hardnet68 --out d", "argument --out: 'd' is a directory"),
        ("search --k x0", "--k: scale x0"),
        ("cio nan.json", "grmul"),
    ],
)
def test_the_real_entry_point_keeps_the_contract(workdir: Workdir, argv: str, message: str) -> None:
    result = _entry_point(shlex.split(argv))
    assert result.returncode == 2
    assert_one_error(result.stderr, message)


def test_debug_shows_the_traceback(workdir: Workdir, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, ["--debug", "cio", "nan.json"])
    assert code == 2
    assert "Traceback" in err and err.splitlines()[-1].startswith("hda cio: error:")
    result = _entry_point(["--debug", "search", "--k", "x0"])
    assert result.returncode == 2 and "Traceback" in result.stderr


def _entry_point(argv: list[str]) -> subprocess.CompletedProcess[str]:
    """`python -m hardnet_analysis ARGV` in the current directory."""
    return subprocess.run(
        [sys.executable, "-m", "hardnet_analysis", *argv],
        capture_output=True,
        text=True,
        check=False,
        env=_child_env(),
    )


def _child_env() -> dict[str, str]:
    """This environment, with this checkout first on the path (not an installed copy)."""
    import os

    root = str(Path(__file__).parents[1])
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{path}" if path else root}


# User code, the terminal's width and standard output: nothing is lost without a word.


def test_user_code_prints_to_stderr_and_its_exit_is_an_error(workdir: Workdir) -> None:
    noisy = "import warnings\n\nimport torch\n\nprint('hello at import')\n"
    noisy += "warnings.warn('an old API\\nsecond line', FutureWarning)\n\n\ndef build():\n"
    noisy += "    print('hello at build')\n    return torch.nn.Conv2d(3, 8, 3)\n"
    Path("noisy.py").write_text(noisy)
    for spec in ("noisy.py:build", "noisy:build"):  # a file, a module on the path
        result = _entry_point(["cio", spec, "--format", "json"])
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["totals"]["macs"] > 0  # stdout is the JSON alone
        assert "hello at import" in result.stderr and "hello at build" in result.stderr
        # a library's warning is one line, as hda's own are
        assert "hda: warning: FutureWarning: an old API\n" in result.stderr
        assert "second line" not in result.stderr and "warnings.warn" not in result.stderr
    result = _entry_point(["cio", "exit:build"])
    assert result.returncode == 2
    assert_one_error(result.stderr, "importing module 'exit': it called sys.exit(3)")


def test_no_columns_still_prints_the_table(
    workdir: Workdir, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for columns in ("0", "1"):
        monkeypatch.setenv("COLUMNS", columns)
        code, out, _ = run_cli(capsys, ["compare", "hardnet68", "hardnet85"])
        assert code == 0 and "hardnet68" in out and "hardnet85" in out, out


def _shell(command: str) -> subprocess.CompletedProcess[str]:
    """`command` in bash, where `hda` is this checkout's `python -m hardnet_analysis`."""
    hda = f"{shlex.quote(sys.executable)} -m hardnet_analysis"
    return subprocess.run(
        ["bash", "-o", "pipefail", "-c", command.replace("hda ", f"{hda} ")],
        capture_output=True,
        text=True,
        check=False,
        env=_child_env(),
    )


@pytest.mark.parametrize(
    ("redirect", "code", "message"),
    [
        (">&-", 2, "hda cio: error: standard output is closed"),
        ("1</dev/null", 2, "hda cio: error: standard output is open only for reading"),
        (">/dev/full", 1, "hda cio: error: cannot write standard output: No space left"),
    ],
)
def test_standard_output_that_cannot_be_written_is_an_error(
    workdir: Workdir, redirect: str, code: int, message: str
) -> None:
    result = _shell(f"hda cio tiny.json --format json {redirect}")
    assert result.returncode == code
    assert_one_error(result.stderr, message)


def test_a_reader_that_leaves_stops_the_command_quietly(workdir: Workdir) -> None:
    # hardnet68's per-op JSON is far more than a pipe holds: the writer meets a closed pipe.
    result = _shell("hda cio hardnet68 --format json | head -c 1")
    assert result.returncode == 141  # 128 + SIGPIPE, as a process killed by it
    assert result.stdout == "{" and result.stderr == ""


# The warnings of `hda correlate`: what it counts once, skips, or finds far off the others.


def test_a_run_given_twice_counts_once(
    workdir: Workdir, capsys: pytest.CaptureFixture[str]
) -> None:
    first = sorted(Path("runs").glob("*.json"))[0]
    code, out, err = run_cli(capsys, ["correlate", "runs", "runs", str(first), "--format", "json"])
    assert code == 0 and json.loads(out)["runs"] == len(list(Path("runs").glob("*.json")))
    # other warnings (a run timed while the machine was busy) may come and go with the load
    assert "hda: warning: 5 run file(s) given more than once; each is counted once" in (
        err.splitlines()
    )
    assert all(line.startswith("hda: warning: ") for line in err.splitlines()), err


def test_unreadable_json_in_a_directory_is_named(
    workdir: Workdir, capsys: pytest.CaptureFixture[str]
) -> None:
    Path("runs/zz.json").write_text("{bad")
    code, _, err = run_cli(capsys, ["correlate", "runs", "--format", "json"])
    assert code == 0
    assert (
        "hda: warning: skipped 'runs/zz.json', which is not readable JSON: Expecting property "
        "name enclosed in double quotes: line 1 column 2 (char 1)"
    ) in err.splitlines()
    assert all(line.startswith("hda: warning: ") for line in err.splitlines()), err


def test_a_cold_outlier_is_named(workdir: Workdir, capsys: pytest.CaptureFixture[str]) -> None:
    # The runs' own latencies carry the machine's noise (on a shared VM a 1 ms forward can take
    # 3x in a slow state, and a noisy small run is then the outlier): they are set on one line
    # of latency against modelled bytes, and the largest run is made 5x slow and cold.
    paths = sorted(Path("runs").glob("*.json"))
    for number, path in enumerate(paths, start=1):
        document = json.loads(path.read_text())
        slow = 5 if number == len(paths) else 1
        document["latency"]["median_s"] = slow * 1e-11 * document["totals"]["model_bytes"]
        document["settings"]["warmup"] = 0 if slow > 1 else document["settings"]["warmup"]
        path.write_text(json.dumps(document))
    code, _, err = run_cli(capsys, ["correlate", "runs", "--format", "json"])
    assert code == 0
    cold = paths[-1].name
    named = [line for line in err.splitlines() if line.startswith(f"hda: warning: {cold} ")]
    assert len(named) == 1 and "is an outlier: " in named[0], err
    assert "(timed with --warmup 0" in named[0]
    assert all(line.startswith("hda: warning: ") for line in err.splitlines()), err


# Fuzzing: every parser of argument strings returns a valid value or raises hda's error.

#: Examples per parser: they are pure functions of a string, so hundreds take a second.
EXAMPLES = 300

#: Strings near each parser's grammar (digits, units, separators, signs, exponents, words),
#: as well as any text.
NUMBERISH = st.text(alphabet="0123456789.eE+-xXkKmMgGtTiIbBsun /,_ \t", max_size=16)
WORDS = st.sampled_from(["inf", "nan", "-inf", "1e400", "1e-400", "0x10", "1_000", "", "x"])
ARGS = st.one_of(NUMBERISH, st.text(max_size=16), WORDS, st.builds("".join, st.lists(WORDS)))


def _hda_error_or(parse: Any, text: str) -> Any:
    """`parse(text)`, or None where it raised an HdaError (any other exception fails)."""
    try:
        return parse(text)
    except HdaError:
        return None


@settings(max_examples=EXAMPLES)
@given(ARGS)
def test_fuzz_input_size(text: str) -> None:
    size = _hda_error_or(parse_input_size, text)
    assert size is None or (size[0] >= 1 and size[1] >= 1)


@settings(max_examples=EXAMPLES)
@given(st.one_of(ARGS, st.text(alphabet="0123456789xX:=-_ abfilnotu", max_size=24)))
def test_fuzz_input_shape(text: str) -> None:
    shape = _hda_error_or(parse_input_shape, text)
    assert shape is None or (len(shape.shapes) == 1 and min(shape.shapes[0]) >= 1)


@settings(max_examples=EXAMPLES)
@given(ARGS)
def test_fuzz_count(text: str) -> None:
    value = _hda_error_or(parse_count, text)
    assert value is None or (isinstance(value, int) and 0 <= value <= LARGEST)


@settings(max_examples=EXAMPLES)
@given(ARGS)
def test_fuzz_byte_size(text: str) -> None:
    value = _hda_error_or(parse_bytes, text)
    assert value is None or (isinstance(value, int) and 0 <= value <= LARGEST)


@settings(max_examples=EXAMPLES)
@given(ARGS)
def test_fuzz_duration(text: str) -> None:
    value = _hda_error_or(parse_duration, text)
    assert value is None or (0 < value < math.inf)


@settings(max_examples=EXAMPLES)
@given(ARGS, st.integers(min_value=0, max_value=1))
def test_fuzz_counts(text: str, least: int) -> None:
    value = _hda_error_or(lambda t: parse_int(t, least), text)
    assert value is None or value >= least


@settings(max_examples=EXAMPLES)
@given(ARGS)
def test_fuzz_numbers(text: str) -> None:
    value = _hda_error_or(lambda t: parse_float(t, 0.0, above=True), text)
    assert value is None or (0 < value < math.inf)


@settings(max_examples=EXAMPLES)
@given(st.one_of(st.text(alphabet='{}[]":,0123456789.eE-truefalsnNI ', max_size=24), ARGS))
def test_fuzz_kwargs(text: str) -> None:
    value = _hda_error_or(parse_json_object, text)
    assert value is None or isinstance(value, dict)


LIST_TEXT = st.one_of(st.text(alphabet="0123456789.,/xe-+ ", max_size=20), ARGS)


@pytest.fixture(scope="module")
def space() -> Any:
    from hardnet_analysis.search.space import default_space, load_template

    return default_space(load_template("hardnet68"))


@pytest.mark.parametrize("flag", ["k", "m", "n_layers"])
@settings(max_examples=EXAMPLES)
@given(text=LIST_TEXT)
def test_fuzz_search_lists(space: Any, flag: str, text: str) -> None:
    from hardnet_analysis.families.hardnet.definition import MAX_K, MAX_N_LAYERS
    from hardnet_analysis.search.space import with_flags

    flags = {"k": None, "m": None, "n_layers": None, flag: text}
    found = _hda_error_or(lambda t: with_flags(space, **flags), text)
    if found is None:
        return
    for stage in found.stages:
        assert all(1 <= k <= MAX_K for k in stage.k)
        assert all(1 <= n <= MAX_N_LAYERS for n in stage.n_layers)
        assert all(math.isfinite(m) and m > 1 for m in stage.m or found.m)
