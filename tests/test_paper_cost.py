"""The paper preset costs what the reference costs: FLOPs per training step (a count, not a timing); the
throughput tools say what they ran."""

import sys

import pytest
import torch

from methods.training import History
from tests.perf.paper_code_throughput import main as time_the_paper_code
from tests.perf.throughput import (
    OPTIONS,
    REFERENCE_GFLOP_PER_STEP,
    gflop_per_step,
    ran_as,
    random_cifar_like,
    throughput_line,
)
from tests.perf.throughput import main as throughput_main


def test_the_paper_preset_step_is_within_5_percent_of_the_references_flops():
    gflop = gflop_per_step(random_cifar_like())
    assert abs(gflop / REFERENCE_GFLOP_PER_STEP - 1) <= 0.05, f"{gflop:.1f} GFLOP per step"


def test_a_throughput_line_says_what_ran_on_the_device():
    # The CUDA default's label on a CPU runs as fp32, contiguous; "bf16" autocasts on a CPU too.
    assert ran_as(OPTIONS["bf16+channels_last+fused"], "cpu") == "fp32, contiguous"
    assert ran_as(OPTIONS["bf16+channels_last+fused"], "cuda") == "bf16, channels-last"
    assert ran_as(OPTIONS["bf16"], "cpu") == "bf16, contiguous"
    assert ran_as(OPTIONS["bf16+channels_last"], "cpu") == "bf16, channels-last"
    assert ran_as(OPTIONS["fp32+compile"], "cuda") == "fp32, contiguous, compiled"
    assert ran_as(OPTIONS["bf16+channels_last+fused+cudagraphs"], "cuda") == (
        "bf16, channels-last, compiled with CUDA graphs")
    assert ran_as(OPTIONS["bf16+channels_last+fused+cudagraphs"], "cpu") == "fp32, contiguous, compiled"


def test_a_cuda_throughput_line_gives_its_ratio_to_the_gpu_target(monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda: "NVIDIA H200")
    history = History(steps=50, images_per_s=6000.0, peak_memory_mb=2048.0)
    line = throughput_line(history, 100, 1.0, "bf16+channels_last+fused+cudagraphs", "cuda")
    assert "6000.0 images/s, peak 2048 MiB, 0.50x the target of 12,000 images/s" in line
    assert line.endswith("on NVIDIA H200")
    assert "target" not in throughput_line(history, 100, 1.0, "fp32", "cpu")  # a GPU target


def test_the_paper_code_timer_names_a_folder_without_the_reference(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        time_the_paper_code([str(tmp_path)])
    assert exit_.value.code == 2
    assert f"refdir {str(tmp_path)!r} holds no models/ncsnpp.py" in capsys.readouterr().err


@pytest.mark.parametrize(("args", "message"), [
    (["--set", "layout=nhwc"], "layout=nhwc is not allowed; valid: auto, channels_last, contiguous"),
    (["--set", "no_such=1"], "unknown setting 'no_such'"),
    (["--profile", "-1"], "--profile -1: give a number of operators"),
    (["--malloc", "jemalloc"], "invalid choice: 'jemalloc'"),
])
def test_the_throughput_command_refuses_a_bad_setting_in_one_line(monkeypatch, capsys, args, message):
    """--set takes the training options (compile, layout, precision) besides DRL's settings."""
    monkeypatch.setattr(sys, "argv", ["throughput", "--device", "cpu", "--steps", "1", *args])
    with pytest.raises(SystemExit) as exit_:
        throughput_main()
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_the_paper_code_timer_refuses_a_negative_profile(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        time_the_paper_code([str(tmp_path), "--profile", "-1"])
    assert exit_.value.code == 2 and "--profile -1" in capsys.readouterr().err
