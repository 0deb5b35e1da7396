"""The command line end to end on the smoke preset, its caches, and its one-line errors."""

import csv
import io
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from benchmarks.__main__ import main
from benchmarks.store import ResultsStore
from datasets import available_datasets, dataset_module
from methods.base import METHODS, Method, available_methods, get_method_class
from protocols.base import PROTOCOLS, available_protocols


def _run_args(tmp_path: Path, *extra: str) -> list[str]:
    return ["run", "--method", "drl", "--protocol", "probe", "--preset", "smoke", "--no-progress",
            "--results", str(tmp_path / "results"), "--leaderboards", str(tmp_path / "boards"), *extra]


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    assert main(_run_args(tmp, "--seeds", "0,1")) == 0
    return tmp


def test_run_stores_numbers_and_generates_leaderboards(smoke_run, capsys):
    assert (smoke_run / "results" / "results.sqlite").exists()
    page = (smoke_run / "boards" / "digits" / "probe.md").read_text()
    assert "python -m benchmarks run --method drl --protocol probe --preset smoke" in page
    assert (smoke_run / "boards" / "digits" / "probe_accuracy_vs_t.png").exists()
    assert main(["results", "--results", str(smoke_run / "results"), "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert {"dataset", "method", "protocol", "seed", "metric", "value", "t", "labels", "head", "points"} <= set(rows[0])
    acc = [r for r in rows if r["metric"] == "accuracy"]
    assert {r["seed"] for r in acc} == {"0", "1"}
    assert {r["t"] for r in acc} == {"0.0", "0.5", "1.0"}
    assert all(0 <= float(r["value"]) <= 1 for r in acc)
    assert all(r["labels"] == "" and r["points"] == "" for r in acc)
    assert all(r["commit"] is not None and r["images_per_s"] for r in acc)


def test_second_run_reuses_checkpoint_and_features(smoke_run, monkeypatch, capsys):
    def no_training(*_a, **_k):
        raise AssertionError("a second run must not pretrain again")

    def no_encoding(*_a, **_k):
        raise AssertionError("a second run must read codes from the feature cache")

    monkeypatch.setattr(Method, "fit", no_training)
    monkeypatch.setattr(Method, "encode", no_encoding)
    assert main(_run_args(smoke_run, "--seeds", "1")) == 0
    assert "reusing pretrained checkpoint" in capsys.readouterr().err


def test_override_changes_the_checkpoint_and_is_labelled(smoke_run, capsys):
    assert main(_run_args(smoke_run, "--set", "latent_dim=2", "--set", "t_values=0,1")) == 0
    err = capsys.readouterr().err
    assert "pretraining" in err
    page = (smoke_run / "boards" / "digits" / "probe.md").read_text()
    assert "drl [latent_dim=2; t_values=0.0,1.0]" in page


def test_leaderboard_command_is_deterministic(smoke_run, tmp_path):
    results = str(smoke_run / "results")
    assert main(["leaderboard", "--results", results, "--leaderboards", str(tmp_path / "a")]) == 0
    assert main(["leaderboard", "--results", results, "--leaderboards", str(tmp_path / "b")]) == 0
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert files
    for rel in files:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()


def test_list_names_every_registered_component_and_the_module_that_defines_it(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    listed: dict[str, dict[str, str]] = {}
    kind = ""
    for line in out.splitlines():
        if line.startswith("  "):
            name, module = line.split()
            listed[kind][name] = module
        else:
            kind = line.partition(":")[0]
            listed[kind] = {}
    assert "presets: smoke, quick, paper" in out
    assert listed["methods"] == {n: METHODS.module_of(n) for n in available_methods()}
    assert listed["protocols"] == {n: PROTOCOLS.module_of(n) for n in available_protocols()}
    assert listed["datasets"] == {n: dataset_module(n) for n in available_datasets()}
    for name, module in listed["methods"].items():
        assert get_method_class(name).__module__ == module
    for name, module in listed["protocols"].items():
        assert PROTOCOLS.get(name).__module__ == module
    assert listed["methods"]["drl"] == "methods.drl" and listed["protocols"]["probe"] == "protocols.probe"
    assert listed["datasets"]["folder:PATH"] == "datasets.folder"
    assert main(["list", "protocols"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "protocols:"


PROTOCOL_NAMES = ", ".join(available_protocols())  # what the registry found, not a hand-kept list


BAD_INPUT = [
    (["--method", "drll"], "unknown method 'drll'; valid: "),
    (["--protocol", "prob"], f"unknown protocol 'prob'; valid: {PROTOCOL_NAMES}"),
    (["--dataset", "imagenet"], "unknown dataset 'imagenet'; valid: "),
    (["--preset", "fast"], "unknown preset 'fast'; valid: smoke, quick, paper"),
    (["--seeds", "0,a"], "not a comma-separated list of integers"),
    (["--set", "latent_dim"], "malformed --set 'latent_dim'; expected key=value"),
    (["--set", "latentdim=2"], "unknown setting 'latentdim'"),
    (["--set", "latent_dim=two"], "--set latent_dim='two': expected int"),
    (["--set", "t_values=0,1.5"], "t_values=0.0,1.5 is not allowed; valid: non-empty lists of finite numbers in [0, 1]"),
    (["--set", "heads=svm"], "heads=svm is not allowed; valid: non-empty lists drawn from linear, mlp, linear-sgd"),
    (["--device", "tpu"], "invalid choice: 'tpu'"),
    (["--protocol", "semisup", "--set", "init=ae"], "--set init=ae: the semisup initialisation is the method"),
    (["--protocol", "semisup", "--set", "semisup_labels=7"], "cannot draw a balanced set of 7 labels"),
    (["--protocol", "semisup", "--set", "t_init=1.0"], "t_init=1.0 is not allowed; valid: finite numbers in (0, 1)"),
    (["--protocol", "lowlabel", "--set", "label_counts=5000"], "cannot draw 5000 labelled images"),
    (["--dataset", "mnist", "--data-root", "/nonexistent"], "/nonexistent"),
    (["--set", "sigma_max=0.001"], "sigma_max=0.001 is not allowed; valid: finite numbers > sigma_min (0.01)"),
    (["--set", "beta_min=-1"], "beta_min=-1.0 is not allowed; valid: finite numbers >= 0"),
    (["--set", "score_z_map=maybe"], "--set score_z_map='maybe': expected a boolean"),
    (["--set", "probe_Cs=0,1"], "probe_Cs=0.0,1.0 is not allowed; valid: non-empty lists of finite numbers > 0"),
    (["--set", "probe_patience=0"], "probe_patience=0 is not allowed; valid: integers >= 1"),
    (["--results-db", "mysql://me@db/results"],
     "--results-db mysql://me@db/results: unknown scheme 'mysql'; valid: postgresql://USER[:PASSWORD]@HOST[:PORT]/"),
    (["--results-db", "postgresql://me:secret@/results?host=/nonexistent&port=1"],
     "cannot open results store postgresql://me:***@/results"),
]


@pytest.mark.parametrize("extra,message", BAD_INPUT, ids=[m for _, m in BAD_INPUT])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, extra, message):
    args = ["run", "--method", "drl", "--protocol", "probe", "--preset", "smoke", "--no-progress",
            "--results", str(tmp_path / "r"), "--leaderboards", str(tmp_path / "b")]
    for flag_value in zip(extra[::2], extra[1::2]):  # the later flag wins in argparse
        args += list(flag_value)
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "r" / "checkpoints").exists(), "nothing may be computed for bad input"


def test_unwritable_results_folder_is_a_usage_error(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--method", "drl", "--protocol", "probe", "--results", str(blocker / "results")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(blocker) in err


def test_real_process_error_has_no_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "run", "--method", "nope", "--protocol", "probe",
                           "--results", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and proc.stderr.strip().count("\n") == 0
    assert "unknown method 'nope'" in proc.stderr


def test_leaderboard_check_passes_on_generated_and_fails_on_a_hand_edit(smoke_run, capsys):
    results, boards = str(smoke_run / "results"), smoke_run / "checked"
    assert main(["leaderboard", "--results", results, "--leaderboards", str(boards)]) == 0
    assert main(["leaderboard", "--check", "--results", results, "--leaderboards", str(boards)]) == 0
    page = boards / "digits" / "probe.md"
    page.write_text(page.read_text().replace("| drl |", "| drl (edited) |", 1))
    (boards / "digits" / "old.csv").write_text("stale\n")
    capsys.readouterr()
    assert main(["leaderboard", "--check", "--results", results, "--leaderboards", str(boards)]) == 1
    out = capsys.readouterr().out
    assert "changed: digits/probe.md" in out and "stale (no longer generated): digits/old.csv" in out
    assert "(edited)" in page.read_text(), "--check writes nothing"


def test_a_diverging_pretraining_stops_with_one_line_naming_method_step_and_terms(tmp_path, capsys, monkeypatch):
    from methods.drl import DRL

    real_loss = DRL.loss

    def diverging(self, batch):
        loss, terms = real_loss(self, batch)
        return loss * float("nan"), terms

    monkeypatch.setattr(DRL, "loss", diverging)
    with pytest.raises(SystemExit) as exit_info:
        main(_run_args(tmp_path))
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "Traceback" not in err
    assert "drl: non-finite loss nan at step 0; loss terms {" in err and "the runs stored before this are kept" in err


def test_a_stored_command_names_no_output_folder(smoke_run):
    frame = ResultsStore(smoke_run / "results").frame()
    for command in set(frame["command"]):
        assert "--results" not in command and "--leaderboards" not in command and str(smoke_run) not in command
        assert "--no-progress" not in command  # how a run displays is not how its numbers came about


def test_reproduction_command_drops_only_folder_and_display_options():
    from benchmarks.provenance import reproduction_command

    argv = ["run", "--method", "drl", "--results", "/abs/r", "--leaderboards=/abs/b", "--no-progress",
            "--set", "latent_dim=2", "--data-root", "/abs/data", "--dataset", "mnist", "--rerun"]
    assert reproduction_command(argv) == ("python -m benchmarks run --method drl --set latent_dim=2 "
                                          "--dataset mnist")


def test_threads_sets_this_processes_intra_op_threads(tmp_path):
    before = torch.get_num_threads()
    try:
        assert main(["run", "--method", "drl", "--protocol", "probe", "--preset", "smoke", "--threads", "1",
                     "--results", str(tmp_path / "r"), "--dry-run"]) == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_every_command_keeps_freed_memory_for_reuse(monkeypatch, capsys):
    """The process setting of core.host_memory, before any work (what tests/perf times)."""
    import benchmarks.__main__ as cli

    calls = []
    monkeypatch.setattr(cli, "retain_freed_memory", lambda: calls.append("retain") or True)
    assert main(["list", "methods"]) == 0
    assert calls == ["retain"]
