"""The training loop's extension points: per-group optimiser settings and an after-step hook (what a
BYOL-like method with a momentum target needs), without touching the loop."""

from __future__ import annotations

import copy
import dataclasses

import torch

from methods.base import get_method_class
from tests.conftest import smoke_method


class _MomentumAE(get_method_class("ae")):
    """AE plus a momentum copy of its encoder; the decoder's group has its own (zero) learning rate."""

    momentum = 0.0  # the target follows the online encoder exactly: easy to check

    def build(self):
        modules = super().build()
        target = copy.deepcopy(modules["encoder"]).requires_grad_(False)
        return {**modules, "target": target}

    def param_groups(self):
        return [{"params": list(self.modules["encoder"].parameters())},
                {"params": list(self.modules["decoder"].parameters()), "lr": 0.0}]

    def after_step(self, step: int) -> None:
        self.steps_seen.append(step)
        with torch.no_grad():
            for t, o in zip(self.modules["target"].parameters(), self.modules["encoder"].parameters(), strict=True):
                t.lerp_(o, 1.0 - self.momentum)


def test_param_groups_and_after_step_reach_the_loop(toy_data):
    ae, budget = smoke_method("ae", toy_data)
    method = _MomentumAE(ae.cfg, ae.spec)  # the AE's settings, not registered: the loop needs no list
    method.steps_seen = []
    decoder_before = [p.detach().clone() for p in method.modules["decoder"].parameters()]
    encoder_before = [p.detach().clone() for p in method.modules["encoder"].parameters()]
    method.fit(toy_data.train, dataclasses.replace(budget, iterations=5), progress=False)
    assert method.steps_seen == list(range(5)), "after_step once per step, after the optimiser step"
    for before, after in zip(decoder_before, method.modules["decoder"].parameters(), strict=True):
        assert torch.equal(before, after), "the decoder's group has lr 0: its weights never move"
    assert any(not torch.equal(b, a) for b, a in zip(encoder_before, method.modules["encoder"].parameters(),
                                                    strict=True)), "the encoder's group trains at the budget's lr"
    for t, o in zip(method.modules["target"].parameters(), method.modules["encoder"].parameters(), strict=True):
        assert torch.equal(t, o), "momentum 0: the target is the online encoder after every step"


def test_the_default_groups_train_every_trainable_parameter(toy_data):
    method, _ = smoke_method("drl", toy_data)
    (group,) = method.param_groups()
    assert group["params"] == [p for p in method.modules.parameters() if p.requires_grad]
    assert set(group) == {"params"}, "the budget's lr and Adam's defaults apply"
