"""Leaderboard generation: determinism, aggregation, plots, stale pages, names."""

from __future__ import annotations

import filecmp
import math
import statistics

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from benchmarks.leaderboard import format_summary, generate
from benchmarks.store import ResultsStore, RunInfo
from core.files import safe_name
from core.records import Record

ACC = {  # (method, seed) -> accuracy at t = 0.0, 0.1
    ("drl", 0): (0.90, 0.80),
    ("drl", 1): (0.92, 0.82),
    ("drl", 2): (0.97, 0.78),
    ("ae", 0): (0.85, 0.70),
}


def _frame(tmp_path, dataset: str = "digits") -> pd.DataFrame:
    store = ResultsStore(tmp_path / "store")
    for (method, seed), (a0, a1) in ACC.items():
        run = RunInfo(
            dataset=dataset,
            method=method,
            protocol="probe",
            preset="tiny",
            seed=seed,
            commit="abc123",
            config_hash=f"h-{method}",
            pretrain_wall_time_s=10.0 + seed,
            images_per_s=100.0,
            command=f"python -m benchmarks run {method} --seed {seed}",
        )
        recs = [
            Record("accuracy", a0, t=0.0, head="linear"),
            Record("accuracy", a1, t=0.1, head="linear"),
            Record("accuracy", a0 - 0.1, t=0.0, head="mlp"),
            Record("loss", 1.5 + seed, head="linear"),
        ]
        store.write(run, recs)
    lat = RunInfo(
        dataset=dataset,
        method="drl",
        protocol="svm",
        preset="tiny",
        seed=0,
        variant="latent_dim=2",
        command="python -m benchmarks run drl -o latent_dim=2",
    )
    store.write(lat, [Record("accuracy", 0.5, labels=100), Record("accuracy", 0.6, labels=1000)])
    return store.frame()


def _files(root):
    return sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file())


def test_deterministic_bytes(tmp_path):
    frame = _frame(tmp_path)
    a = generate(frame, tmp_path / "a")
    # A shuffled frame must give the same output too.
    b = generate(frame.sample(frac=1.0, random_state=0), tmp_path / "b")
    assert [p.relative_to(tmp_path / "a") for p in a] == [p.relative_to(tmp_path / "b") for p in b]
    assert _files(tmp_path / "a") == _files(tmp_path / "b")
    for rel in _files(tmp_path / "a"):
        assert filecmp.cmp(tmp_path / "a" / rel, tmp_path / "b" / rel, shallow=False), rel
    assert {str(p) for p in _files(tmp_path / "a")} == {
        "README.md",
        "claims.md",
        "digits/probe.md",
        "digits/probe.csv",
        "digits/probe_accuracy_vs_t.png",
        "digits/svm.md",
        "digits/svm.csv",
        "digits/svm_accuracy_vs_labels.png",  # numbers at several label counts and no t
        "index.html",
        "configs/h-ae.json",
        "configs/h-drl.json",
        "commits/abc123.md",
    }


def test_mean_std_n_in_table(tmp_path):
    generate(_frame(tmp_path), tmp_path / "lb")
    page = (tmp_path / "lb" / "digits" / "probe.md").read_text()
    drl_t0 = [0.90, 0.92, 0.97]
    mean, std = 100 * statistics.mean(drl_t0), 100 * statistics.stdev(drl_t0)
    # 95% interval by hand: t_{0.975, 2} = 4.302653 (tables), half-width t * std / sqrt(3).
    half = 4.302653 * std / 3**0.5
    assert f"**{mean:.2f}** ± {std:.2f} [{mean - half:.2f}, {mean + half:.2f}] (3)" in page  # best at t=0.0
    assert "[84.04, 101.96]" in page
    assert "| ae | tiny | linear | 85.00 ± – (1) | 70.00 ± – (1) |" in page
    # The non-accuracy metric: raw numbers, no bold, after accuracy.
    assert page.index("## accuracy") < page.index("## loss")
    assert f"{2.5:.4f} ± {1.0:.4f} [{2.5 - 4.302653 / 3**0.5:.4f}, {2.5 + 4.302653 / 3**0.5:.4f}] (3)" in page
    assert "![accuracy against t](probe_accuracy_vs_t.png)" in page

    csv = pd.read_csv(tmp_path / "lb" / "digits" / "probe.csv")
    assert list(csv.columns) == [
        "method",
        "variant",
        "preset",
        "metric",
        "head",
        "labels",
        "points",
        "t2",
        "t",
        "mean",
        "std",
        "n",
        "ci_low",
        "ci_high",
        "at_edge",
        "edge_n",
    ]
    row = csv[
        (csv.method == "drl")
        & (csv.metric == "accuracy")
        & (csv["head"] == "linear")
        & (csv.t == 0.0)
    ].iloc[0]
    assert row["n"] == 3
    assert row["mean"] == pytest.approx(statistics.mean(drl_t0), abs=1e-6)
    assert row["std"] == pytest.approx(statistics.stdev(drl_t0), abs=1e-6)
    ae = csv[(csv.method == "ae") & (csv.t == 0.1)].iloc[0]
    assert math.isnan(ae["std"]) and ae["n"] == 1


def test_variant_and_settings_columns(tmp_path):
    generate(_frame(tmp_path), tmp_path / "lb")
    page = (tmp_path / "lb" / "digits" / "svm.md").read_text()
    assert "| method | preset | labels | value |" in page
    # One row per labels setting: nothing competes, so nothing is bold.
    assert "| drl [latent_dim=2] | tiny | 100 | 50.00 ± – (1) |" in page
    assert "| drl [latent_dim=2] | tiny | 1000 | 60.00 ± – (1) |" in page


def test_compute_table(tmp_path):
    generate(_frame(tmp_path), tmp_path / "lb")
    page = (tmp_path / "lb" / "digits" / "probe.md").read_text()
    # drl: 3 runs, pretrain wall times 10, 11, 12 -> 11.0
    assert "| drl | tiny | 3 | 11.0 | 100.0 |" in page
    assert "`abc123`" in page and "`h-drl`" in page


def test_png_written(tmp_path):
    paths = generate(_frame(tmp_path), tmp_path / "lb")
    png = tmp_path / "lb" / "digits" / "probe_accuracy_vs_t.png"
    assert png in paths
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"Software" not in png.read_bytes()


def test_stale_pages_removed(tmp_path):
    frame = _frame(tmp_path)
    out = tmp_path / "lb"
    generate(frame, out)
    (out / "old-dataset").mkdir()
    (out / "old-dataset" / "probe.md").write_text("stale")
    (out / "digits" / "gone.csv").write_text("stale")
    (out / "digits" / "notes.txt").write_text("not ours")
    generate(frame[frame.protocol == "probe"], out)
    assert not (out / "old-dataset").exists()
    assert not (out / "digits" / "gone.csv").exists()
    assert not (out / "digits" / "svm.md").exists()
    assert (out / "digits" / "probe.md").exists()
    assert (out / "digits" / "notes.txt").exists()  # only generated kinds are removed
    assert "svm" not in (out / "README.md").read_text()


def test_folder_dataset_name_sanitised(tmp_path):
    assert safe_name("folder:/x/y") == "folder-x-y"
    assert safe_name("../..") == "unnamed"
    generate(_frame(tmp_path, dataset="folder:/data/mini"), tmp_path / "lb")
    assert (tmp_path / "lb" / "folder-data-mini" / "probe.md").exists()
    page = (tmp_path / "lb" / "folder-data-mini" / "probe.md").read_text()
    assert page.startswith("# folder:/data/mini — probe")
    index = (tmp_path / "lb" / "README.md").read_text()
    assert "(folder-data-mini/probe.md)" in index


def test_page_lists_commands(tmp_path):
    generate(_frame(tmp_path), tmp_path / "lb")
    page = (tmp_path / "lb" / "digits" / "probe.md").read_text()
    assert "## Produced by" in page
    block = page.split("## Produced by")[1].split("## accuracy")[0]
    assert block.count("python -m benchmarks run") == 4
    assert "\npython -m benchmarks run drl --seed 2\n" in block
    assert "-o latent_dim=2" not in page  # that command produced the svm page only


def test_index(tmp_path):
    generate(_frame(tmp_path), tmp_path / "lb")
    index = (tmp_path / "lb" / "README.md").read_text()
    assert "python -m benchmarks leaderboard" in index
    assert "| digits | [probe](digits/probe.md) | 2 | 3 | [csv](digits/probe.csv) |" in index


def test_empty_frame(tmp_path):
    out = tmp_path / "lb"
    generate(_frame(tmp_path), out)
    generate(ResultsStore(tmp_path / "empty").frame(), out)
    assert [str(f) for f in _files(out)] == ["README.md", "claims.md", "index.html"]


def test_format_summary(tmp_path):
    text = format_summary(_frame(tmp_path), "digits", "probe")
    lines = text.splitlines()
    assert lines[0] == "digits / probe: accuracy (%), mean over seeds"
    drl = next(line for line in lines if line.startswith("drl") and "linear" in line)
    assert drl.split()[-2:] == [f"{100 * statistics.mean([0.90, 0.92, 0.97]):.2f}", "80.00"]
    assert "loss" in text
    assert format_summary(_frame(tmp_path), "digits", "nope").startswith("no results")


def _rows(protocol, records_by_seed):
    rows = []
    for seed, records in records_by_seed.items():
        for r in records:
            rows.append({"dataset": "toy", "method": "drl", "protocol": protocol, "seed": seed,
                         "metric": r.metric, "value": r.value, "t": r.t, "t2": r.t2, "head": r.head,
                         "points": r.points})
    return pd.DataFrame(rows)


def test_trajectory_page_has_a_column_per_k_and_a_plot(tmp_path):
    frame = _rows("trajectory", {s: [Record("accuracy", 0.5 + 0.01 * k + 0.001 * s, head=h, points=k)
                                     for h in ("gru", "mlp") for k in (1, 3, 21)] for s in (0, 1)})
    generate(frame, tmp_path)
    page = (tmp_path / "toy" / "trajectory.md").read_text()
    assert "| method | preset | head | K=1 | K=3 | K=21 |" in page
    assert "![accuracy against the number of points K](trajectory_accuracy_vs_points.png)" in page
    assert (tmp_path / "toy" / "trajectory_accuracy_vs_points.png").stat().st_size > 0


def test_pairwise_metric_gets_a_heatmap_and_per_t_metrics_lines_or_bars(tmp_path):
    ts = (0.0, 0.5, 1.0)
    records = [Record("nmi", 1.0 if a == b else 0.5, t=a, t2=b) for a in ts for b in ts]
    records += [Record("attention", 1 / 3, t=t) for t in ts] + [Record("label_nmi", t, t=t) for t in ts]
    generate(_rows("mi", {0: records, 1: records}), tmp_path)
    page = (tmp_path / "toy" / "mi.md").read_text()
    assert "![nmi over pairs of t](mi_nmi_heatmap.png)" in page
    assert "![attention over t](mi_attention_bars.png)" in page
    assert "![label_nmi against t](mi_label_nmi_vs_t.png)" in page
    assert "| method | preset | t2 | 0.0 | 0.5 | 1.0 |" in page
    for name in ("mi_nmi_heatmap.png", "mi_attention_bars.png", "mi_label_nmi_vs_t.png"):
        assert (tmp_path / "toy" / name).stat().st_size > 0
    again = tmp_path / "again"
    generate(_rows("mi", {0: records, 1: records}), again)
    assert (again / "toy" / "mi_nmi_heatmap.png").read_bytes() == (tmp_path / "toy" / "mi_nmi_heatmap.png").read_bytes()


def test_semisup_page_has_the_shape_of_table_1(tmp_path):
    jitter = {("none", "no mixup"): (0.0, -0.001, 0.002), ("drl", "no mixup"): (0.0, 0.002, -0.001),
              ("drl", "mixup"): (0.001, 0.0, 0.002)}  # paired differences that spread, as real ones do
    rows = []
    for method, head, acc in (("none", "no mixup", 0.70), ("drl", "no mixup", 0.80), ("drl", "mixup", 0.75)):
        for seed in (0, 1, 2):
            for labels in (10, 100):
                rows.append({"dataset": "toy", "method": method, "protocol": "semisup", "seed": seed,
                             "metric": "accuracy", "value": acc + labels / 1000 + seed / 100
                             + jitter[method, head][seed], "head": head, "labels": labels})
    generate(pd.DataFrame(rows), tmp_path)
    page = (tmp_path / "toy" / "semisup.md").read_text()
    assert "## Table 1: test accuracy by label count, initialisation and mixup" in page
    assert "| labels | drl · mixup | drl · no mixup | none · no mixup |" in page

    def cell(method: str, head: str, best: bool = False) -> str:  # mean ± std [95% t interval] (n), in %
        v = 100 * (np.array([0.70 if method == "none" else 0.80 if head == "no mixup" else 0.75] * 3)
                   + 0.01 + np.arange(3) / 100 + np.array(jitter[method, head]))
        half = scipy_stats.t.ppf(0.975, 2) * v.std(ddof=1) / np.sqrt(3)
        mean = f"**{v.mean():.2f}**" if best else f"{v.mean():.2f}"
        return f"{mean} ± {v.std(ddof=1):.2f} [{v.mean() - half:.2f}, {v.mean() + half:.2f}] (3)"

    # Rows sorted as numbers; the best of a row in bold. drl · no mixup beats drl · mixup by about
    # 5 points in every seed (paired t-test, p < 0.05): a dagger; and drl · mixup beats none likewise.
    assert (f"| 10 | {cell('drl', 'mixup')} † | {cell('drl', 'no mixup', best=True)} † "
            f"| {cell('none', 'no mixup')} |") in page
    # Paired over seeds, drl beats none (same head, "no mixup") by 10 points in every seed: a dagger.
    assert f"| drl |  | no mixup | 10 | {cell('drl', 'no mixup', best=True)} † |" in page
    assert page.index("| 10 |") < page.index("| 100 |")
    assert "![accuracy against the number of labelled images](semisup_accuracy_vs_labels.png)" in page


def test_index_ranks_methods_per_protocol(tmp_path):
    generate(_frame(tmp_path), tmp_path / "lb")
    index = (tmp_path / "lb" / "README.md").read_text()
    # probe: drl has the higher mean in all three accuracy cells (linear t=0, t=0.1; mlp t=0).
    main, variants = index.split("Variants (overridden settings):")
    assert "| method | probe |" in main and "| drl | 1.00 (1) |" in main and "| ae | 2.00 (1) |" in main
    assert "latent_dim" not in main, "variants are ranked apart from the main entries"
    assert "| method | probe | svm |" in variants and "| drl [latent_dim=2] |  | 1.00 (1) |" in variants


def test_html_leaderboard_is_one_file_with_every_page_sortable_tables_and_plots(tmp_path):
    generate(_frame(tmp_path), tmp_path / "lb")
    page = (tmp_path / "lb" / "index.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "<script>" in page
    for anchor in ("claims", "digits-probe", "digits-svm"):
        assert f'<section id="{anchor}">' in page and f'href="#{anchor}"' in page  # index -> section
    pages = [tmp_path / "lb" / "README.md", tmp_path / "lb" / "claims.md", *(tmp_path / "lb" / "digits").glob("*.md")]
    tables = sum(p.read_text().count("\n|---") for p in pages)
    assert page.count('<table class="sortable">') == tables  # every markdown table, sortable
    assert '<img src="digits/probe_accuracy_vs_t.png"' in page
    assert '<strong>93.00</strong>' in page  # bold best mean survives


def test_every_entry_links_its_full_config_and_commit(tmp_path):
    generate(_frame(tmp_path), tmp_path / "lb")
    page = (tmp_path / "lb" / "digits" / "probe.md").read_text()
    assert "[`h-drl`](../configs/h-drl.json)" in page
    assert (tmp_path / "lb" / "configs" / "h-drl.json").is_file()
    assert "[`abc123`](../commits/abc123.md)" in page
    commit_page = (tmp_path / "lb" / "commits" / "abc123.md").read_text()
    assert "git show abc123" in commit_page and "| digits | probe | drl | tiny | 0,1,2 |" in commit_page


def test_markdown_to_html_rewrites_links_images_and_headings():
    from benchmarks.leaderboard.html import markdown_to_html

    out = markdown_to_html("# T\n\npara with `x<y` and **b**\nnext line\n\n| a | b |\n|---|---|\n| 1 | [z](f.md) |\n"
                           "\n![cap](p.png)\n\n- item\n\n```sh\nrun > x\n```", link=lambda t: "L:" + t,
                           image=lambda s: "I:" + s, heading_offset=1)
    assert "<h2>T</h2>" in out and "<code>x&lt;y</code> and <strong>b</strong>" in out
    assert '<td><a href="L:f.md">z</a></td>' in out and '<img src="I:p.png" alt="cap" />' in out
    assert '<table class="sortable">' in out and "<li>item</li>" in out and "run &gt; x" in out


def _count_drawings(monkeypatch) -> list[str]:
    """Record every figure drawn (by file name), drawing it as usual."""
    from benchmarks.leaderboard import plots

    drawn = []

    def counting(draw):
        def counted(*args, **kwargs):
            drawn.append(args[3].name)  # every plot function takes (rows, metric, title, path, ...)
            return draw(*args, **kwargs)
        return counted

    for name in ("plot_metric_vs_t", "plot_metric_vs_count", "plot_heatmaps", "plot_bars_over_t"):
        monkeypatch.setattr(plots, name, counting(getattr(plots, name)))
    return drawn


def test_generate_redraws_only_the_figures_whose_data_changed(tmp_path, monkeypatch):
    frame = _frame(tmp_path)
    out = tmp_path / "lb"
    drawn = _count_drawings(monkeypatch)
    generate(frame, out)
    assert sorted(drawn) == ["probe_accuracy_vs_t.png", "svm_accuracy_vs_labels.png"]
    drawn.clear()
    generate(frame, out)
    assert drawn == [], "an up-to-date figure is not drawn again"
    changed = frame.copy()
    changed.loc[(changed.protocol == "probe") & (changed.metric == "accuracy"), "value"] -= 0.01
    generate(changed, out)
    assert drawn == ["probe_accuracy_vs_t.png"]
    (out / "digits" / "svm_accuracy_vs_labels.png").write_bytes(b"not a png")
    drawn.clear()
    generate(changed, out)
    assert drawn == ["svm_accuracy_vs_labels.png"], "a damaged figure is drawn again"


def test_check_draws_nothing_and_flags_a_figure_drawn_from_other_data(tmp_path, monkeypatch):
    from benchmarks.leaderboard import check

    frame = _frame(tmp_path)
    out = tmp_path / "lb"
    generate(frame, out)
    drawn = _count_drawings(monkeypatch)
    assert check(frame, out) == []
    changed = frame.copy()
    changed.loc[changed.protocol == "svm", "value"] += 0.01
    problems = check(changed, out)
    assert drawn == []
    assert "changed: digits/svm_accuracy_vs_labels.png" in problems
    assert "changed: digits/probe_accuracy_vs_t.png" not in problems
    (out / "digits" / "probe_accuracy_vs_t.png").unlink()
    assert "missing: digits/probe_accuracy_vs_t.png" in check(frame, out)


def test_cells_with_a_selection_at_an_edge_are_marked_and_counted(tmp_path):
    import json as _json

    from benchmarks.leaderboard import EDGE_MARK, generate

    rows = []
    for seed in (0, 1):
        for t, edge in ((0.0, seed == 1), (1.0, False)):
            rows.append({"dataset": "digits", "protocol": "probe", "method": "drl", "seed": seed, "metric": "accuracy",
                         "value": 0.9, "t": t, "head": "linear", "setting": _json.dumps({"at_edge": edge})})
    rows.append({"dataset": "digits", "protocol": "probe", "method": "drl", "seed": 0, "metric": "best_t",
                 "value": 0.0, "head": "linear", "setting": "{}"})
    generate(pd.DataFrame(rows), tmp_path / "lb")
    page = (tmp_path / "lb" / "digits" / "probe.md").read_text()
    assert f"(2) {EDGE_MARK} |" in page and page.count(f" {EDGE_MARK} |") == 1
    assert "**1 of 2 cells (50.0 %)**; counted per seed, 1 of 4 selections (25.0 %)" in page
    csv = pd.read_csv(tmp_path / "lb" / "digits" / "probe.csv")
    acc = csv[csv.metric == "accuracy"].sort_values("t")
    assert acc["at_edge"].tolist() == [1, 0] and acc["edge_n"].tolist() == [2, 2]
    assert csv[csv.metric == "best_t"]["edge_n"].tolist() == [0]


def test_a_method_whose_code_does_not_depend_on_t_counts_its_edges_once(tmp_path):
    """SimCLR's one code per seed is shown in every t column; its selections are one per seed, so
    its cells of a head count once, at an edge if any is (DRL's, time-conditioned, count per t)."""
    import json as _json

    from benchmarks.leaderboard import generate

    rows = [{"dataset": "digits", "protocol": "probe", "method": method, "seed": 0, "metric": "accuracy",
             "value": 0.9, "t": t, "head": "mlp", "setting": _json.dumps({"at_edge": method == "simclr"})}
            for method in ("simclr", "drl") for t in (0.0, 0.5, 1.0)]
    generate(pd.DataFrame(rows), tmp_path / "lb")
    page = (tmp_path / "lb" / "digits" / "probe.md").read_text()
    assert "**1 of 4 cells (25.0 %)**; counted per seed, 1 of 4 selections (25.0 %)" in page


def test_a_page_opens_with_its_answer_ranked_main_entries_apart_from_variants(tmp_path):
    store = ResultsStore(tmp_path / "store")
    for method, variant, acc in (("drl", "", 0.95), ("ae", "", 0.97), ("drl", "latent_dim=2", 0.80)):
        for seed in (0, 1):
            run = RunInfo(dataset="digits", method=method, protocol="probe", preset="quick", seed=seed,
                          variant=variant, config={"budget": {"iterations": 1000, "batch_size": 128}},
                          command=f"python -m benchmarks run --method {method} --protocol probe")
            store.write(run, [Record("best_t_accuracy", acc + seed / 100, head="linear"),
                              Record("accuracy", acc, t=0.0, head="linear")])
    generate(store.frame(), tmp_path / "lb")
    page = (tmp_path / "lb" / "digits" / "probe.md").read_text()
    answer = page[page.index("## Answer"):page.index("## Produced by")]
    assert answer.index("![accuracy against t](probe_accuracy_vs_t.png)") < answer.index("| method |")
    main, variants = answer.split("Variants (overridden settings):")
    assert main.index("| ae | quick | 128,000 | 1.0 | 97.50") < main.index("| drl | quick | 128,000 | 2.0 | 95.50")
    assert "drl [latent_dim=2]" in variants and "drl [latent_dim=2]" not in main
    assert page.count("](probe_accuracy_vs_t.png)") == 1, "the main figure is shown once, in the answer"


def _tuned_store(tmp_path, trials_of: dict[str, int]):
    store = ResultsStore(tmp_path / "store")
    entries = [("drl", "", None, 0.95), ("ae", "", None, 0.97), ("drl", "latent_dim=2", None, 0.80)]
    entries += [(m, f"lr=0.0003; study={m}", n, 0.96) for m, n in trials_of.items()]
    for method, variant, trials, acc in entries:
        config = {"budget": {"iterations": 1000, "batch_size": 128}}
        if trials:
            config["sweep"] = {"study": f"digits-{method}-probe-quick", "trials": trials, "best_value": 0.9}
        for seed in (0, 1):
            run = RunInfo(dataset="digits", method=method, protocol="probe", preset="quick", seed=seed,
                          variant=variant, config=config, command=f"python -m benchmarks run --method {method}")
            store.write(run, [Record("best_t_accuracy", acc + seed / 100, head="linear")])
    generate(store.frame(), tmp_path / "lb")
    page = (tmp_path / "lb" / "digits" / "probe.md").read_text()
    return page[page.index("## Answer"):page.index("## Produced by")]


def test_tuned_entries_get_their_own_table_saying_how_many_trials_each_method_had(tmp_path):
    answer = _tuned_store(tmp_path, {"drl": 8, "ae": 8})
    main, rest = answer.split("Tuned on validation")
    tuned, variants = rest.split("Variants (overridden settings):")
    assert tuned.startswith(" (Optuna, `python -m benchmarks sweep`), 8 trials each")
    assert "drl [lr=0.0003; study=drl]" in tuned and "ae [lr=0.0003; study=ae]" in tuned
    assert "study=" not in main and "study=" not in variants and "drl [latent_dim=2]" in variants


def test_unequal_tuning_effort_is_spelled_out(tmp_path):
    answer = _tuned_store(tmp_path, {"drl": 20, "ae": 8})
    assert "unequal effort: ae 8, drl 20 trials" in answer
