"""Benchmark: the exact front stage by stage (`search.stagewise`) against the sweep and against
Optuna's multi-objective samplers, on HarDNet-68 spaces at 224x224 with a 4.5G MACs budget.

1. **Scale.** For the default space (3,037,500 candidates), a 10^9 space (per stage 3 k, 3 m,
   7 n_layers: 992,436,543) and a 10^12 space (per stage 6 k, 4 m, 12 n_layers:
   1,651,129,712,640): seconds and peak memory (the child process's max RSS) of the exact
   front, its size and MACs span, each case in its own process. The sweep (every candidate
   visited, `search.sweep`) runs on the default space always and on the 10^9 space with
   `--verify`; both must give the same rank-1 set.
2. **Samplers.** Optuna's TPE (its default multi-objective sampler) and NSGA-II search the 10^9
   space for CIO (lower) against MACs (higher) under the same budget (`constraints_func`),
   each stage's k, m and n_layers a categorical parameter, for each `--trials` count; the
   table gives the hypervolume of their feasible front as a share of the exact front's (both
   against the reference point: 1.01 x the front's largest CIO, 0.99 x its smallest MACs) and
   how many exact front members they found. A run stops at `--timeout` seconds (trials done
   are shown).

Run: ``python benchmarks/bench_front.py [--verify] [--trials 1000 10000] [--out FILE.json]``.
Say the machine's load with the figures: timings on a busy machine mean little.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHAPE = (1, 3, 224, 224)
BUDGET = 4_500_000_000
M3 = "1.6,1.7,1.8"
M4 = "1.5,1.6,1.7,1.8"
#: (k, m, n_layers) flags of each space, as `hda search --k --m --n-layers` takes them.
SPACES: dict[str, tuple[str, str, str] | None] = {
    "default": None,
    "1e9": ("x0.75,x1,x1.25", "/".join([M3] * 5), "2,4,6,8,10,12,16"),
    "1e12": (
        "x0.5,x0.625,x0.75,x1,x1.25,x1.5",
        "/".join([M4] * 5),
        "1,2,3,4,6,8,10,12,14,16,20,24",
    ),
}


def grid(name: str) -> Any:
    from hardnet_analysis.search.evaluate import GridEvaluator, PartCosts
    from hardnet_analysis.search.space import default_space, load_template, with_flags

    space = default_space(load_template("hardnet68"))
    flags = SPACES[name]
    if flags is not None:
        space = with_flags(space, *flags)
    return GridEvaluator(space, PartCosts(space, SHAPE))


def case(name: str, method: str) -> dict[str, Any]:
    """One measurement, in this process: the front's indices, size, span and seconds."""
    from hardnet_analysis.search.stagewise import Constraints, exact_front
    from hardnet_analysis.search.sweep import Budgets, ParetoRanker, sweep
    from hardnet_analysis.shapes import InputShape

    g = grid(name)
    start = time.perf_counter()
    if method == "stagewise":
        found = exact_front(g, Constraints.of("macs", Budgets(macs=BUDGET)))
        assert found is not None
        index, macs = [int(i) for i in found.index], [int(v) for v in found.macs]
    else:
        result = sweep(g.space, InputShape((SHAPE,)), Budgets(macs=BUDGET), ParetoRanker("macs", 1))
        index = [int(c.index or 0) for c in result.candidates]
        macs = [c.macs for c in result.candidates]
    seconds = time.perf_counter() - start
    return {
        "space": name,
        "method": method,
        "candidates": g.space.size,
        "front": len(index),
        "macs_span": [min(macs), max(macs)],
        "seconds": round(seconds, 3),
        "peak_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "index": sorted(index),
    }


def in_child(name: str, method: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--case", name, method],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    ).stdout
    result: dict[str, Any] = json.loads(out.splitlines()[-1])
    return result


def sampler_table(trials: list[int], exact: dict[str, Any], timeout: float) -> list[dict[str, Any]]:
    """Hypervolume share of TPE and NSGA-II at each trial count on the 10^9 space."""
    import numpy as np
    import optuna

    from hardnet_analysis.pareto import hypervolume
    from hardnet_analysis.search.space import StageChoice

    g = grid("1e9")
    front = g.at(exact["index"])
    ref_cio, ref_macs = 1.01 * float(front.cio.max()), 0.99 * float(front.macs.min())
    best = hypervolume(front.cio, -front.macs.astype(np.float64), ref_cio, -ref_macs)
    on_front = set(exact["index"])
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    stages = g.space.stages

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        choices = tuple(
            StageChoice(
                trial.suggest_categorical(f"k{i}", list(s.k)),
                trial.suggest_categorical(f"m{i}", list(s.m or ())),
                trial.suggest_categorical(f"n{i}", list(s.n_layers)),
            )
            for i, s in enumerate(stages)
        )
        index = g.space.index_of(choices)
        m = g.evaluate(index, index + 1)
        trial.set_constraint("macs", float(m.macs[0] - BUDGET))  # feasible when <= 0
        trial.set_user_attr("index", index)
        return float(m.cio[0]), float(m.macs[0])

    rows = []
    for label, make in (
        ("TPE", lambda: optuna.samplers.TPESampler(seed=0)),
        ("NSGA-II", lambda: optuna.samplers.NSGAIISampler(seed=0)),
    ):
        for n in trials:
            study = optuna.create_study(directions=["minimize", "maximize"], sampler=make())
            start = time.perf_counter()
            study.optimize(objective, n_trials=n, timeout=timeout)
            seconds = time.perf_counter() - start
            ok = [t for t in study.trials if t.values and t.values[1] <= BUDGET]
            cio = np.array([t.values[0] for t in ok])
            macs = np.array([t.values[1] for t in ok])
            share = hypervolume(cio, -macs, ref_cio, -ref_macs) / best if ok else 0.0
            hits = len({t.user_attrs["index"] for t in ok} & on_front)
            rows.append(
                {
                    "sampler": label,
                    "trials": n,
                    "done": len(study.trials),
                    "seconds": round(seconds, 1),
                    "hv_share": share,
                    "front_members_found": hits,
                }
            )
            print(
                f"{label:8} {n:>7,} trials ({len(study.trials):,} done) {seconds:8.1f} s  "
                f"hypervolume {share:.4f}  exact front members found {hits} of {len(on_front)}",
                flush=True,
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--verify", action="store_true", help="sweep the 10^9 space too")
    parser.add_argument("--trials", type=int, nargs="*", default=[1000, 10000])
    parser.add_argument("--timeout", type=float, default=900, help="seconds per sampler run")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(case(*args.case)))
        return
    runs = []
    for name, method in [
        ("default", "sweep"),
        ("default", "stagewise"),
        ("1e9", "stagewise"),
        *([("1e9", "sweep")] if args.verify else []),
        ("1e12", "stagewise"),
    ]:
        runs.append(in_child(name, method))
        r = runs[-1]
        lo, hi = (v / 1e9 for v in r["macs_span"])
        print(
            f"{name:8} {method:9} {r['candidates']:>18,} candidates  front {r['front']:>7,} "
            f"({lo:.2f}-{hi:.2f} GMACs)  {r['seconds']:8.2f} s  {r['peak_mib']:6,} MiB",
            flush=True,
        )
    for name in ("default", "1e9"):
        found = {r["method"]: r["index"] for r in runs if r["space"] == name}
        if len(found) == 2:
            same = found["sweep"] == found["stagewise"]
            print(f"{name}: the sweep and the stage-wise front {'agree' if same else 'DIFFER'}")
    exact = next(r for r in runs if r["space"] == "1e9")
    samplers = sampler_table(args.trials, exact, args.timeout) if args.trials else []
    if args.out:
        for r in runs:
            r.pop("index")
        args.out.write_text(json.dumps({"runs": runs, "samplers": samplers}, indent=1) + "\n")


if __name__ == "__main__":
    main()
