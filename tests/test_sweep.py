"""Optuna sweeps: validation-only objective, resumable studies, pruning, shared workers, finalize."""

import dataclasses
import json
import subprocess
import sys

import optuna
import pytest
import torch

from benchmarks import sweep
from benchmarks.__main__ import main
from benchmarks.store import ResultsStore
from methods.base import METHODS, suggest
from methods.training import Budget

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _request(tmp_path, **kw):
    args = {"method": "drl", "protocol": "probe", "preset": "smoke", "trials": 2,
            "storage": str(tmp_path / "journal.log"), "results": str(tmp_path / "r")}
    return sweep.SweepRequest(**{**args, **kw})


def test_tuning_view_never_holds_the_test_split(toy_data):
    view = sweep.tuning_view(toy_data, seed=0)
    assert view.test is toy_data.val  # the trial's "test" is the real validation split
    assert len(view.train) + len(view.val) == len(toy_data.train)
    assert not any(torch.equal(a, b) for a in view.val.images for b in toy_data.test.images[:5])


def test_study_resumes_and_its_best_value_never_drops(tmp_path, toy_data):
    req = _request(tmp_path)
    first = sweep.run_sweep(req, toy_data, torch.device("cpu"))
    best_first = first.best_value
    second = sweep.run_sweep(req, toy_data, torch.device("cpu"))  # the same storage: trials are added
    assert len(second.trials) == 4 and [t.number for t in second.trials] == [0, 1, 2, 3]
    assert second.best_value >= best_first
    saved = json.loads((tmp_path / "r" / "sweeps" / f"{second.study_name}.json").read_text())
    assert saved["trials"] == 4 and saved["best_value"] == second.best_value


def test_a_deliberately_bad_trial_is_pruned(tmp_path, toy_data, monkeypatch):
    # The pruning signal, made to depend only on the regulariser: reg_weight >= 1e-4 is "bad".
    monkeypatch.setattr(sweep, "proxy_score", lambda method, data: 0.9 if method.cfg.reg_weight < 1e-4 else 0.1)
    req = _request(tmp_path, trials=3)
    study = sweep.load_study(req)
    for reg in (1e-6, 1e-6, 1e-3):  # two good trials start the median pruner, then a bad one
        study.enqueue_trial({"lr": 1e-3, "reg_weight": reg, "t_sampling": "uniform"})
    study = sweep.run_sweep(req, toy_data, torch.device("cpu"))
    states = [t.state for t in study.trials]
    assert states == [optuna.trial.TrialState.COMPLETE] * 2 + [optuna.trial.TrialState.PRUNED]
    assert study.trials[2].intermediate_values == {5: 0.1}  # stopped at its first report (smoke: 20 steps)


def test_two_workers_share_a_journal_study_and_finalize_records_the_budget(tmp_path):
    journal, results = tmp_path / "study.log", tmp_path / "r"
    cmd = [sys.executable, "-m", "benchmarks", "sweep", "--method", "drl", "--protocol", "probe",
           "--preset", "smoke", "--trials", "2", "--storage", str(journal), "--study", "shared",
           "--results", str(results), "--no-progress"]
    workers = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    for w in workers:
        _, err = w.communicate(timeout=600)
        assert w.returncode == 0, err.decode()[-2000:]
    study = sweep.load_study(_request(tmp_path, storage=str(journal), study="shared"))
    assert sorted(t.number for t in study.trials) == [0, 1, 2, 3]  # none lost, none duplicated
    assert all(t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED) for t in study.trials)

    args = ["sweep", "--method", "drl", "--protocol", "probe", "--preset", "smoke", "--storage", str(journal),
            "--study", "shared", "--finalize", "--seeds", "0", "--results", str(results),
            "--leaderboards", str(tmp_path / "b"), "--no-progress"]
    assert main(args) == 0
    frame = ResultsStore(results).frame()
    config = json.loads(frame["config"].iloc[0])
    assert config["sweep"] == {"study": "shared", "trials": 4, "best_value": study.best_value}
    assert set(study.best_params) <= {k.split("=")[0] for k in frame["variant"].iloc[0].split("; ")}
    assert "| 4 (shared) |" in (tmp_path / "b" / "digits" / "probe.md").read_text()


def test_trials_and_cores_are_shared_out_evenly(monkeypatch):
    assert sweep.trial_shares(5, 2) == [3, 2]
    assert sweep.trial_shares(2, 4) == [1, 1]  # no worker without a trial
    assert sweep.fair_share(2, cores=2) == 1 and sweep.fair_share(3, cores=16) == 5
    assert sweep.fair_share(4, cores=2) == 1  # never zero threads
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert sweep.worker_threads(2) == sweep.fair_share(2)
    assert sweep.worker_threads(2, requested=3) == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    assert sweep.worker_threads(2) == 7  # the user's setting beats the default


def test_workers_split_the_trials_of_one_study_and_take_their_share_of_the_cores(tmp_path, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)  # the spawned workers inherit the environment
    results = tmp_path / "r"
    args = ["sweep", "--method", "ae", "--protocol", "probe", "--preset", "smoke", "--trials", "3",
            "--workers", "2", "--results", str(results), "--no-progress"]
    assert main(args) == 0
    # the default storage (SQLite) under two writers: no trial lost, none doubled
    study = sweep.load_study(sweep.SweepRequest(method="ae", protocol="probe", preset="smoke",
                                                results=str(results)))
    assert sorted(t.number for t in study.trials) == [0, 1, 2]
    assert all(t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED) for t in study.trials)
    assert {t.user_attrs["threads"] for t in study.trials} == {sweep.fair_share(2)}
    assert json.loads((results / "sweeps" / f"{study.study_name}.json").read_text())["trials"] == 3


def test_a_failing_worker_is_reported_not_swallowed(tmp_path, toy_data):
    req = _request(tmp_path, method="no-such-method")  # each worker fails when it builds its objective
    with pytest.raises(sweep.SweepWorkerError, match="2 of 2 sweep workers failed"):
        sweep.run_sweep(req, toy_data, torch.device("cpu"), workers=2, threads=1)


@pytest.mark.parametrize("extra,message", [
    (["--workers", "0"], "'0' is not a positive number of workers"),
    (["--method", "drl,ae"], "sweep tunes one method on one protocol"),
    (["--trials", "0"], "--trials 0: give a positive number of trials"),
    (["--finalize"], "has no finished trial yet"),
    (["--method", "drll"], "unknown method 'drll'"),
])
def test_bad_sweep_input_is_one_line_and_exit_2(tmp_path, capsys, extra, message):
    args = ["sweep", "--method", "drl", "--protocol", "probe", "--preset", "smoke", "--results", str(tmp_path),
            "--storage", str(tmp_path / "j.log"), *extra]
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err


def test_the_pruning_proxy_encodes_in_chunks_as_one_forward_would(toy_data, monkeypatch):
    from benchmarks import cache
    from tests.conftest import smoke_method

    method, _ = smoke_method("drl", toy_data)
    forwards = []
    encode_times = method.encode_times
    monkeypatch.setattr(method, "encode_times", lambda x, ts: forwards.append(len(x)) or encode_times(x, ts))
    monkeypatch.setitem(cache.ROWS_PER_FORWARD, "cpu", 10)
    score = sweep.proxy_score(method, toy_data)
    assert 0.0 <= score <= 1.0
    assert max(forwards) == 10 and sum(forwards) == len(toy_data.train) + len(toy_data.val)
    chunked = cache.encode_in_chunks(method, toy_data.val.images, [sweep.PROXY_T])[0]
    whole = method.encode(toy_data.val.images, torch.full((len(toy_data.val),), sweep.PROXY_T))
    torch.testing.assert_close(chunked, whole.cpu(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", METHODS.names())
def test_every_method_declares_a_search_space_its_config_accepts(name):
    # Generated for every registered method: the sampled settings are fields of its config, and each
    # trained method tunes its pretraining learning rate first (equal tuning effort starts there).
    method_cls = METHODS.get(name)
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask()
    params = method_cls.search_space(trial)
    own = {k: v for k, v in params.items() if k != "lr"}  # the learning rate is the budget's
    fields = {f.name for f in dataclasses.fields(method_cls.config_cls)}
    assert set(own) <= fields, set(own) - fields
    if method_cls.pretrains:
        assert list(params)[:1] == ["lr"] and set(own) == set(method_cls.tuned)
        Budget(lr=params["lr"])
    method_cls.config_cls(**own)  # every sampled value passes the config's declared checks


def test_an_unsupported_search_space_is_named():
    trial = optuna.create_study().ask()
    with pytest.raises(TypeError, match="steps: unsupported search space"):
        suggest(trial, "steps", optuna.distributions.IntDistribution(1, 5))
