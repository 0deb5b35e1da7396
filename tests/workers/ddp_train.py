"""Worker for tests/test_distributed.py, launched by ``torchrun``: pretrain a method, rank 0 saves the weights.

The method is a deterministic autoencoder without BatchNorm: BatchNorm over a
rank's slice differs from BatchNorm over the global batch on the CPU (torch's
SyncBatchNorm needs CUDA), and random draws differ per rank by design. What
remains to compare is exactly what the loop distributes: the global batch,
its slices, gradient averaging, the optimiser and the EMA.
"""

import sys

import torch
from torch import nn

from core.distributed import init_distributed, is_main_process
from core.seeding import seed_everything
from methods import training
from methods.base import Budget, DataSpec, Method, MethodConfig, register_method
from tests.conftest import make_splits


@register_method
class LinearAutoencoder(Method):
    name = "test-linear-ae"
    time_conditioned = False

    def build(self) -> dict[str, nn.Module]:
        d = int(torch.tensor(self.spec.image_shape).prod())
        return {"encoder": nn.Sequential(nn.Flatten(), nn.Linear(d, 16), nn.Tanh(), nn.Linear(16, 8)),
                "decoder": nn.Linear(8, d)}

    def loss(self, x):
        recon = self.modules["decoder"](self.modules["encoder"](x))
        loss = nn.functional.mse_loss(recon, x.flatten(1))
        return loss, {"mse": loss.detach()}

    def codes(self, encoder, x, t):
        return encoder(x)


WRAPPED: list[int] = []  # how many times the loop wrapped its objective in DistributedDataParallel


class _CountingDDP(training.DistributedDataParallel):
    def __init__(self, *args, **kwargs):
        WRAPPED.append(1)
        super().__init__(*args, **kwargs)


def main(out: str) -> None:
    training.DistributedDataParallel = _CountingDDP
    init_distributed()
    data = make_splits(n_train=96)
    seed_everything(0)
    method = LinearAutoencoder(MethodConfig(), DataSpec(data.image_shape, data.mean, data.std))
    budget = Budget(iterations=30, batch_size=32, lr=1e-2, warmup=3, ema_decay=0.9)
    history = method.fit(data.train, budget, progress=False)
    if is_main_process():
        torch.save({"state": method.state_dict(), "losses": history.losses, "ddp": len(WRAPPED)}, out)


if __name__ == "__main__":
    main(sys.argv[1])
