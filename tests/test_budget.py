"""The budget axis: images seen from the stored config, and the probe page's accuracy-against-budget section."""

from __future__ import annotations

import json

from benchmarks.leaderboard import generate
from benchmarks.leaderboard.budget import UNRECORDED, images_seen, split_budget
from benchmarks.store import ResultsStore, RunInfo
from core.records import Record


def test_budget_overrides_are_split_from_the_entry():
    assert split_budget("iterations=5000; latent_dim=2") == ("latent_dim=2", "iterations=5000")
    assert split_budget("batch_size=64; iterations=10") == ("", "batch_size=64; iterations=10")
    assert split_budget("") == ("", "")


def test_images_seen_is_iterations_times_batch_size():
    assert images_seen(json.dumps({"budget": {"iterations": 1000, "batch_size": 128}})) == 128_000
    assert images_seen("") == UNRECORDED and images_seen('{"method": {}}') == UNRECORDED


def _store(tmp_path, budgets: dict[int, dict[str, float]]) -> ResultsStore:
    store = ResultsStore(tmp_path / "store")
    for iterations, accuracies in budgets.items():
        for method, acc in accuracies.items():
            for seed, jitter in enumerate((0.0, 0.01, -0.01)):
                config = {"budget": {"iterations": iterations, "batch_size": 128}}
                run = RunInfo(dataset="digits", method=method, protocol="probe", preset="quick", seed=seed,
                              variant="" if iterations == 1000 else f"iterations={iterations}", config=config,
                              config_hash=f"{method}-{iterations}", commit="abc123",
                              command=f"python -m benchmarks run --method {method} --protocol probe")
                store.write(run, [Record("best_t_accuracy", acc + jitter, head="linear")])
    return store


def test_the_probe_page_shows_accuracy_against_images_seen(tmp_path):
    store = _store(tmp_path, {1000: {"drl": 0.90, "ae": 0.95}, 10_000: {"drl": 0.97, "ae": 0.96}})
    out = tmp_path / "lb"
    generate(store.frame(), out)
    page = (out / "digits" / "probe.md").read_text()
    section = page[page.index("## Accuracy against pretraining budget"):]
    assert "![best_t_accuracy against images seen](probe_accuracy_vs_budget.png)" in section
    assert "| method | preset | head | 128,000 | 1,280,000 |" in section
    assert "| drl | quick | linear | 90.00 ± 1.00 [87.52, 92.48] (3) | 97.00 ± 1.00 [94.52, 99.48] (3) |" in section
    assert (out / "digits" / "probe_accuracy_vs_budget.png").is_file()


def test_one_budget_draws_no_budget_figure(tmp_path):
    out = tmp_path / "lb"
    generate(_store(tmp_path, {1000: {"drl": 0.90, "ae": 0.95}}).frame(), out)
    assert "Accuracy against pretraining budget" not in (out / "digits" / "probe.md").read_text()
    assert not (out / "digits" / "probe_accuracy_vs_budget.png").exists()


def test_a_variant_at_one_budget_is_left_out_of_the_budget_axis(tmp_path):
    store = _store(tmp_path, {1000: {"drl": 0.90}, 10_000: {"drl": 0.97}})
    config = {"budget": {"iterations": 1000, "batch_size": 128}}
    for seed in range(3):
        run = RunInfo(dataset="digits", method="drl", protocol="probe", preset="quick", seed=seed,
                      variant="reg_weight=0.01", config=config, config_hash="drl-tuned", commit="abc123",
                      command="python -m benchmarks run --method drl --protocol probe --set reg_weight=0.01")
        store.write(run, [Record("best_t_accuracy", 0.93, head="linear")])
    out = tmp_path / "lb"
    generate(store.frame(), out)
    page = (out / "digits" / "probe.md").read_text()
    section = page[page.index("## Accuracy against pretraining budget"):].split("\n## ")[0]
    assert "| drl | quick | linear |" in section
    assert "reg_weight" not in section, "a point, not a curve: the variant's own table has it"
    assert "drl [reg_weight=0.01]" in page
