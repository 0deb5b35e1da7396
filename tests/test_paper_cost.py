"""The paper preset costs what the reference costs: FLOPs per training step (a count, not a timing)."""

from tests.perf.throughput import REFERENCE_GFLOP_PER_STEP, gflop_per_step, random_cifar_like


def test_the_paper_preset_step_is_within_5_percent_of_the_references_flops():
    gflop = gflop_per_step(random_cifar_like())
    assert abs(gflop / REFERENCE_GFLOP_PER_STEP - 1) <= 0.05, f"{gflop:.1f} GFLOP per step"
