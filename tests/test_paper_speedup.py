"""The paper-speed comparison alternates the reference's step and the suite's and reports their ratios; the
timing commands are replaced by a fake that answers in their format (the real ones take minutes)."""

from collections.abc import Sequence

import pytest

from tests.perf.paper_speedup import MeasurementError, commands, images_per_s, main

SPEED = {  # images/s the fake reports: the reference by (precision, malloc), the suite by option
    ("fp32", "default"): 50.0, ("fp32", "retain"): 60.0, ("bf16", "retain"): 80.0,
    "fp32": 55.0, "fp32+channels_last": 75.0, "bf16": 100.0,
}


def fake_run(argv: Sequence[str]) -> str:
    """The line each tool prints, at the speed SPEED gives it."""
    def flag(name: str) -> str:
        return argv[argv.index(name) + 1]
    if "tests.perf.paper_code_throughput" in argv:
        speed = SPEED[(flag("--precision"), flag("--malloc"))]
        return (f"reference (NCSN++-small + WRN-28-2, 2.83 M parameters), batch 100, {flag('--precision')}: "
                f"{speed:.1f} images/s, 1.000 s a step on cpu (2 threads), malloc {flag('--malloc')}")
    option = flag("--option")
    return (f"drl paper preset, 32x32x3, batch 100, {option} (fp32, contiguous): {SPEED[option]:.1f} images/s, "
            f"235.6 GFLOP per step (1.009x the reference's), 70000 iterations = 30.0 h on cpu (2 threads), "
            f"malloc retain")


@pytest.fixture
def refdir(tmp_path):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "ncsnpp.py").write_text("")
    return tmp_path


def test_an_alternation_times_the_reference_as_shipped_and_like_for_like_then_the_suite(refdir):
    runs = commands(refdir, ["bf16", "fp32+channels_last"], steps=4)
    assert [run.label for run in runs] == [
        "reference fp32, as shipped", "reference fp32, memory retained", "reference bf16, memory retained",
        "suite bf16", "suite fp32+channels_last"]
    assert runs[0].argv[-4:] == ("--precision", "fp32", "--malloc", "default")
    assert runs[2].argv[-4:] == ("--precision", "bf16", "--malloc", "retain")
    assert runs[3].argv[-2:] == ("--option", "bf16") and "4" in runs[3].argv
    assert [run.precision for run in runs[3:]] == ["bf16", "fp32"]


def test_an_option_is_compared_with_the_reference_in_the_precision_it_runs_on_a_cpu(refdir):
    # The CUDA default's label runs fp32 and contiguous on a CPU: its like-for-like baseline is fp32.
    runs = commands(refdir, ["bf16+channels_last+fused"], steps=1)
    assert [run.label for run in runs][:2] == ["reference fp32, as shipped", "reference fp32, memory retained"]
    assert runs[-1].precision == "fp32" and len(runs) == 3


def test_the_report_gives_each_suite_options_ratio_to_both_baselines(refdir, capsys):
    assert main([str(refdir), "--alternations", "2", "--steps", "1"], run=fake_run) == 0
    out = capsys.readouterr().out
    assert out.count("[1/2] ") == 6 and out.count("[2/2] ") == 6  # every line as it is measured
    assert "| 2 | 50.0 | 60.0 | 80.0 | 55.0 | 75.0 | 100.0 |" in out
    assert "suite fp32+channels_last: 1.50x (1.50x to 1.50x) the reference as shipped, " \
           "1.25x (1.25x to 1.25x) the reference in fp32 with memory retained" in out
    assert "suite bf16: 2.00x (2.00x to 2.00x) the reference as shipped, " \
           "1.25x (1.25x to 1.25x) the reference in bf16 with memory retained" in out


def test_a_failed_command_keeps_the_alternations_already_measured(refdir, capsys):
    calls = []

    def failing_in_the_second_alternation(argv):
        calls.append(argv)
        if len(calls) == 8:  # the second alternation's second command
            raise MeasurementError("exited 1: RuntimeError: out of memory")
        return fake_run(argv)

    assert main([str(refdir), "--alternations", "3"], run=failing_in_the_second_alternation) == 1
    out, err = capsys.readouterr()
    assert "| 1 | 50.0 | 60.0 | 80.0 | 55.0 | 75.0 | 100.0 |" in out and "| 2 |" not in out
    assert "suite bf16: 2.00x the reference as shipped" in out
    assert ("stopped after 1 of 3 alternations: reference fp32, memory retained (alternation 2): exited 1: "
            "RuntimeError: out of memory") in err


def test_a_line_without_a_speed_is_an_error_naming_it():
    assert images_per_s(fake_run(commands(".", ["fp32"], 1)[-1].argv)) == 55.0
    with pytest.raises(MeasurementError, match="no images/s in the line 'Traceback'"):
        images_per_s("Traceback")


@pytest.mark.parametrize(("args", "message"), [
    (["--suite", "fp16"], "invalid choice: 'fp16'"),
    (["--alternations", "0"], "--alternations 0: give 1 or more"),
    (["--steps", "-2"], "--steps -2: give 1 or more"),
])
def test_a_bad_argument_is_refused_in_one_line(refdir, capsys, args, message):
    with pytest.raises(SystemExit) as exit_:
        main([str(refdir), *args], run=fake_run)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and message in err


def test_a_folder_without_the_reference_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([str(tmp_path)], run=fake_run)
    assert exit_.value.code == 2 and "holds no models/ncsnpp.py" in capsys.readouterr().err
