"""Counter tools: parsing ncu/nvprof/perf output in their documented layouts, command lines,
NVTX naming, the capability probe and its fallbacks (no GPU needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hardnet_analysis.backends import get_backend
from hardnet_analysis.profiler import probe as probe_mod
from hardnet_analysis.profiler.counters import CounterError, ncu, nvprof, perf

DATA = Path(__file__).parent / "data"


def test_ncu_raw_page_rows_and_ranges() -> None:
    rows = ncu.parse_raw_csv((DATA / "ncu_raw.csv").read_text())
    assert [r.id for r in rows] == [0, 1, 2, 3]
    assert rows[0].ranges == ("hda", "(model)", "base.0", "base.0.conv")
    assert rows[0].kernel.startswith("void cudnn::cnn::conv2d_grouped_direct_kernel")
    # thousands separators and base units: 152,064 bytes, 3,424 ns
    assert rows[0].metrics["dram__bytes_read.sum"] == 152_064
    assert rows[0].metrics["gpu__time_duration.sum"] == pytest.approx(3.424e-6)


def test_ncu_per_layer_groups_by_innermost_range() -> None:
    layers = ncu.per_layer(ncu.parse_raw_csv((DATA / "ncu_raw.csv").read_text()))
    assert set(layers) == {"base.0.conv", "base.0.relu", "layer1.0.relu:2", "base.3"}
    conv = layers["base.0.conv"]
    assert (conv.read_bytes, conv.write_bytes, conv.kernels) == (152_064, 401_920, 1)
    assert layers["base.3"].read_bytes == 1536  # a container's own torch.cat


def test_ncu_prefixed_units_and_ranges_outside_hda() -> None:
    rows = ncu.parse_raw_csv((DATA / "ncu_raw_units.csv").read_text())
    layers = ncu.per_layer(rows)
    assert set(layers) == {"fc"}  # the warm-up kernel outside "hda" is dropped
    assert layers["fc"].read_bytes == pytest.approx(2500)
    assert layers["fc"].write_bytes == pytest.approx(1.25e6)
    assert layers["fc"].time_s == pytest.approx(3.5e-6)


def test_ncu_permission_and_garbage() -> None:
    text = "==PROF== Connected\n==ERROR== ERR_NVGPUCTRPERM - The user does not have permission"
    with pytest.raises(CounterError, match="ERR_NVGPUCTRPERM"):
        ncu.parse_raw_csv(text)
    with pytest.raises(CounterError, match="no raw CSV"):
        ncu.parse_raw_csv("==PROF== nothing profiled\n")


def test_nvtx_names_round_trip_and_avoid_colons() -> None:
    assert ncu.nvtx_name("layer1.0.relu:2") == "layer1.0.relu#2"
    assert ncu.layer_key(ncu.nvtx_name("layer1.0.relu:2")) == "layer1.0.relu:2"


def test_ncu_command_sets_controls_explicitly() -> None:
    cmd = ncu.ncu_command("ncu", ["python", "-m", "x"], "/tmp/log.csv")
    joined = " ".join(cmd)
    assert "--metrics dram__bytes_read.sum,dram__bytes_write.sum,gpu__time_duration.sum" in joined
    assert "--nvtx --nvtx-include hda/" in joined
    assert "--cache-control all" in joined and "--clock-control base" in joined
    assert "--csv --page raw" in joined and cmd[-3:] == ["python", "-m", "x"]


def test_nvprof_metric_totals() -> None:
    totals = nvprof.parse_metrics_csv((DATA / "nvprof_metrics.csv").read_text())
    # Avg x Invocations summed by hand: 2048*3 + 800*2 read, 1024*3 + 800*2 written
    assert (totals.read_bytes, totals.write_bytes, totals.kernels) == (7744, 4672, 2)
    cmd = nvprof.nvprof_command("nvprof", ["python"], "log.csv")
    assert cmd[:3] == ["nvprof", "--profile-from-start", "off"]
    assert "dram_read_bytes,dram_write_bytes" in cmd and "--csv" in cmd
    with pytest.raises(CounterError):
        nvprof.parse_metrics_csv("==1== Profiling result:\n")


def test_perf_stat_totals_and_events(tmp_path: Path) -> None:
    totals = perf.parse_perf_stat((DATA / "perf_stat.csv").read_text())
    assert totals.read_bytes == 22.5 * 2**20 and totals.write_bytes == 4.25 * 2**20
    with pytest.raises(CounterError, match="not supported"):
        perf.parse_perf_stat("<not supported>,,uncore_imc_0/cas_count_read/,0,100.00,,")
    events = tmp_path / "uncore_imc_0" / "events"
    events.mkdir(parents=True)
    (events / "cas_count_read").write_text("event=0x04,umask=0x03")
    assert perf.imc_events(tmp_path) == ["uncore_imc_0/cas_count_read/"]
    assert perf.perf_command("perf", ["e1"], "o.csv")[:4] == ["perf", "stat", "-a", "-x"]


def test_probe_without_tools_falls_back_to_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shutil.which", lambda name: None)
    choice = probe_mod.probe(get_backend("cuda"), (9, 0))
    assert choice.source == "model"
    assert "ncu not on PATH" in choice.summary() and "nvprof not on PATH" in choice.summary()
    assert probe_mod.probe(get_backend("cpu")).source == "model"
    assert probe_mod.probe(get_backend("cpu"), wanted="none").source == "model"


def test_probe_picks_ncu_then_nvprof_by_capability(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shutil.which", lambda name: f"/usr/bin/{name}")
    cuda = get_backend("cuda")
    assert probe_mod.probe(cuda, (9, 0)).source == "ncu"
    assert probe_mod.probe(cuda, (9, 0), wanted="nvprof").source == "model"  # 9.0 >= 8.0
    assert probe_mod.probe(cuda, (7, 0), wanted="nvprof").source == "nvprof"
    assert probe_mod.probe(get_backend("cpu"), wanted="ncu").source == "model"


def test_run_ncu_missing_binary_is_a_counter_error(tmp_path: Path) -> None:
    with pytest.raises((CounterError, OSError)):
        ncu.run_ncu(str(tmp_path / "no-ncu"), ["true"], tmp_path / "log.csv", timeout=10)
