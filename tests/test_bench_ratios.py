"""The batched-vs-loop speed-ups printed after ``tox -e bench`` (tests/perf/ratios.py)."""

import json
from types import SimpleNamespace

from tests.perf.conftest import pytest_collection_modifyitems
from tests.perf.ratios import main, ratio_lines


def _bench(name, group, seconds):
    return {"name": name, "group": group, "stats": {"min": seconds, "median": 2 * seconds}}


BENCHMARKS = [
    _bench("test_probe_batched[linear]", "probe", 0.5),
    _bench("test_probe_loop[linear]", "probe", 12.0),
    _bench("test_probe_batched[mlp]", "probe", 1.0),
    _bench("test_probe_loop[mlp]", "probe", 30.0),
    _bench("test_probe_batched[mlp-quick-cpu]", "probe", 1.0),
    _bench("test_probe_loop[mlp-quick-cpu]", "probe", 3.0),
    _bench("test_logistic_batched", "logistic", 1.0),
    _bench("test_logistic_loop", "logistic", 12.0),
    _bench("test_encode_trajectory_batched", "trajectory", 2.0),
    _bench("test_encode_trajectory_loop", "trajectory", 2.2),
    _bench("test_encode_trajectory_loop_at_its_best_batch", "trajectory", 1.0),  # a variant: no target
    _bench("test_svm_fit", "svm", 3.0),            # no pair: no line
    _bench("test_widget_batched", "widget", 1.0),  # no loop to compare with: no line
]


def test_ratio_is_loop_over_batched_min_time_per_group_and_param():
    assert ratio_lines(BENCHMARKS) == [
        "logistic: batched is 12.0x faster than loop (target 10x)",
        "probe[linear]: batched is 24.0x faster than loop (target 20x)",
        "probe[mlp-quick-cpu]: batched is 3.0x faster than loop (target 4x, not met)",  # the CPU's own target
        "probe[mlp]: batched is 30.0x faster than loop (target 20x)",
        "trajectory: batched is 1.1x faster than loop (target 1.5x, not met)",
        "trajectory: batched is 0.5x faster than loop_at_its_best_batch",
    ]


def test_script_reads_pytest_benchmark_json(tmp_path, capsys):
    path = tmp_path / "bench.json"
    path.write_text(json.dumps({"benchmarks": BENCHMARKS}))
    assert main([str(path)]) == 0
    assert "trajectory: batched is 1.1x faster" in capsys.readouterr().out
    assert main([str(tmp_path / "missing.json")]) == 2
    assert "cannot read benchmarks from" in capsys.readouterr().err


def test_each_loop_benchmark_runs_right_after_its_batched_partner():
    """Measured minutes apart, a pair would carry the machine's drift into its ratio."""
    names = ["test_probe_batched[a]", "test_probe_batched[b]", "test_svm_fit", "test_probe_loop[a]",
             "test_probe_loop[b]", "test_encode_batched", "test_encode_loop", "test_encode_loop_at_its_best_batch",
             "test_widget_loop[a]"]  # no batched partner in its module: stays where it was
    items = [SimpleNamespace(name=n, path="probe.py") for n in names[:5]]
    items += [SimpleNamespace(name=n, path="other.py") for n in names[5:]]
    pytest_collection_modifyitems(items)
    assert [item.name for item in items] == [
        "test_probe_batched[a]", "test_probe_loop[a]", "test_probe_batched[b]", "test_probe_loop[b]",
        "test_svm_fit", "test_encode_batched", "test_encode_loop", "test_encode_loop_at_its_best_batch",
        "test_widget_loop[a]"]
