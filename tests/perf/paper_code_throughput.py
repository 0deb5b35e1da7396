"""The papers' own training step, timed like ``tests.perf.throughput`` times the suite's, in fp32 or bf16.

    python -m tests.perf.paper_code_throughput REFDIR --steps 3 --precision bf16
    python -m tests.perf.paper_code_throughput REFDIR --steps 3 --profile 25   # where its time goes
    python -m tests.perf.paper_code_throughput REFDIR --steps 3 --malloc retain   # the suite's malloc setting

REFDIR is the ``score_sde_pytorch`` folder of korabs-x/representation_score_based
(``git archive HEAD score_sde_pytorch``), with ``ml-collections`` installed. Its
DRL setting is built from its own modules, unmodified: NCSN++-small
(``configs/ve/cifar10_ncsnpp_small_continuous``) with the WRN-28-2 encoder, the
continuous VE SDE's denoising loss with the L1 penalty on the code, Adam at
2e-4, gradients clipped to norm 1, batch 100 on 32x32x3 images. ``--precision
bf16`` runs that step under ``torch.autocast(dtype=torch.bfloat16)``, which the
reference code never does: the like-for-like baseline for the suite's
``--option bf16``, as plain fp32 is for ``--option fp32``. It runs with
glibc's malloc defaults, as shipped; ``--malloc retain`` keeps freed memory for
reuse as the suite's command line does (core.host_memory), which speeds this
step and not the suite's. Prints one line: images/s over ``--steps`` steps
after 2 warm-up steps, and the malloc setting it ran with.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from core.host_memory import MALLOC_CHOICES, malloc_in_effect

PRECISIONS = ("fp32", "bf16")


def reference_step(refdir: Path, batch: int, device: str):
    """The reference's model and one training step on random images: (step function, parameter count)."""
    sys.path.insert(0, str(refdir))
    import losses  # noqa: PLC0415  (the reference's modules, importable only once REFDIR is on the path)
    import sde_lib  # noqa: PLC0415
    from configs.ve import cifar10_ncsnpp_small_continuous as small  # noqa: PLC0415
    from models import ncsnpp  # noqa: PLC0415

    config = small.get_config()
    config.training.include_encoder = True  # DRL: the score net reads the encoder's code
    config.training.lambda_z = 1e-5         # the L1 penalty on the code of the papers' CIFAR-10 runs
    config.training.batch_size = batch
    config.device = torch.device(device)
    model = ncsnpp.NCSNpp(config).to(device)
    sde = sde_lib.VESDE(sigma_min=config.model.sigma_min, sigma_max=config.model.sigma_max,
                        N=config.model.num_scales)
    loss_fn = losses.get_sde_loss_fn(sde, train=True, reduce_mean=False, continuous=True,
                                     likelihood_weighting=False, config=config)
    optimiser = torch.optim.Adam(model.parameters(), lr=2e-4)
    images = torch.randn(batch, 3, 32, 32, device=device)

    def step(bf16: bool) -> None:
        optimiser.zero_grad(set_to_none=True)
        with torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=bf16):
            loss = loss_fn(model, images)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()

    return step, sum(p.numel() for p in model.parameters())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.perf.paper_code_throughput",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("refdir", type=Path, help="the score_sde_pytorch folder of the DRL paper's code")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--precision", default="fp32", choices=PRECISIONS)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=("cpu", "cuda"))
    parser.add_argument("--malloc", default="default", choices=MALLOC_CHOICES,
                        help="default: glibc's settings, as the reference runs; retain: the suite's "
                             "(core.host_memory), for a like-for-like comparison")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="also print the N operators that took most time over the timed steps, as "
                             "tests.perf.throughput --profile does for the suite's step")
    args = parser.parse_args(argv)
    if args.profile < 0:
        parser.error(f"--profile {args.profile}: give a number of operators, 1 or more (0: no profile)")
    if not (args.refdir / "models" / "ncsnpp.py").is_file():
        parser.error(f"refdir {str(args.refdir)!r} holds no models/ncsnpp.py; "
                     "give the score_sde_pytorch folder of korabs-x/representation_score_based")
    malloc = malloc_in_effect(args.malloc)
    step, n_params = reference_step(args.refdir, args.batch, args.device)
    bf16 = args.precision == "bf16"
    for _ in range(2):
        step(bf16)
    synchronize = torch.cuda.synchronize if args.device == "cuda" else lambda: None
    synchronize()

    def timed() -> float:
        start = time.perf_counter()
        for _ in range(args.steps):
            step(bf16)
        synchronize()
        return (time.perf_counter() - start) / args.steps

    if args.profile:
        from tests.perf.throughput import profiled  # noqa: PLC0415  (the suite's imports, only when asked)
        seconds = profiled(args.profile)(timed)
    else:
        seconds = timed()
    print(f"reference (NCSN++-small + WRN-28-2, {n_params / 1e6:.2f} M parameters), batch {args.batch}, "
          f"{args.precision}: {args.batch / seconds:.1f} images/s, {seconds:.3f} s a step on "
          f"{args.device} ({torch.get_num_threads()} threads), malloc {malloc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
