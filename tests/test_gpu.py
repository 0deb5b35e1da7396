"""GPU tests (``tox -e gpu``): the same contracts on a CUDA device, and CPU/GPU agreement."""

import pytest
import torch

from protocols.augment import SEMISUP_AUGMENT_BACKENDS
from protocols.batched import fit_select_score
from tests.conftest import smoke_method

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


@pytest.mark.parametrize("name", ["drl", "vdrl"])
def test_fit_and_encode_on_cuda(name, toy_data):
    method, budget = smoke_method(name, toy_data)
    method.to("cuda")
    history = method.fit(toy_data.train, budget, progress=False)
    assert history.images_per_s > 0 and history.peak_memory_mb > 0
    z = method.encode(toy_data.test.images, torch.full((len(toy_data.test),), 0.5))
    assert z.device.type == "cuda" and torch.isfinite(z).all()
    # The same weights on the CPU give the same codes, up to kernel differences.
    cpu_copy, _ = smoke_method(name, toy_data)
    cpu_copy.load_state_dict({k: {n: v.cpu() for n, v in d.items()} for k, d in method.state_dict().items()})
    z_cpu = cpu_copy.encode(toy_data.test.images, torch.full((len(toy_data.test),), 0.5))
    torch.testing.assert_close(z.cpu(), z_cpu, rtol=1e-3, atol=1e-3)


def test_normalise_keeps_the_device(toy_data):
    x = toy_data.train.images[:4].cuda()
    assert toy_data.normalise(x).device.type == "cuda"


def test_batched_probe_on_cuda():
    g = torch.Generator().manual_seed(0)
    y = torch.arange(300) % 2
    x = torch.randn(2, 300, 4, generator=g)
    x[1, :, 0] += 4 * (2 * y.float() - 1)
    split = (x.cuda(), y.cuda())
    sel = fit_select_score(split, split, split, n_classes=2, lrs=(1e-2,), epochs=5, batch_size=64,
                           hidden=16, dropout=0.0, weight_decay=0.0, seed=0)
    assert sel.test_accuracy[1] > 0.95


@pytest.mark.parametrize("backend", SEMISUP_AUGMENT_BACKENDS)
def test_laplacenet_on_cuda(backend, toy_data):
    from benchmarks.presets import preset_settings
    from methods.base import config_from_settings
    from protocols.semisup import LaplaceNet, SemisupConfig, balanced_subset

    method, _ = smoke_method("drl", toy_data)
    method.to("cuda")
    cfg = config_from_settings(SemisupConfig, {**preset_settings("smoke", toy_data.image_shape), "mixup": True,
                                               "semisup_augment_backend": backend})
    labelled = balanced_subset(toy_data.train.labels, 6, seed=0)
    net = LaplaceNet(method, toy_data, cfg, labelled, torch.arange(len(toy_data.train)), torch.device("cuda"))
    result = net.fit()
    assert next(net.model.parameters()).device.type == "cuda"
    # The batched augmentation reads its training images on the GPU, the per-image one on the CPU.
    assert net.pool_images.device.type == net.labelled_labels.device.type == (
        "cuda" if backend == "batched" else "cpu")
    assert result.test_accuracy > 0.6 and 0.0 < result.t_final < 1.0  # chance is 1/3


@pytest.mark.parametrize("options", [
    {"precision": "bf16", "layout": "channels_last"},
    {"precision": "bf16", "layout": "channels_last", "compile": True},
    {"precision": "bf16", "layout": "channels_last", "compile": True, "compile_mode": "reduce-overhead"},
    {"precision": "fp32", "layout": "contiguous"},
], ids=["bf16-channels_last", "bf16-channels_last-compile", "bf16-channels_last-cudagraphs", "fp32"])
def test_fit_with_the_gpu_training_options(options, toy_data, tmp_path):
    import dataclasses

    from methods.training import TrainOptions

    method, budget = smoke_method("drl", toy_data)
    method.to("cuda")
    budget = dataclasses.replace(budget, iterations=12)
    opts = TrainOptions(checkpoint_every=5, **options)
    history = method.fit(toy_data.train, budget, progress=False, options=opts, snapshot_path=tmp_path / "s.pt")
    assert history.steps == 12 and all(torch.isfinite(torch.tensor(history.losses)))
    assert history.images_per_s > 0 and history.peak_memory_mb > 0
    # Training layouts do not leak into the saved weights or the codes.
    assert all(p.is_contiguous() for p in method.modules.parameters())
    z = method.encode(toy_data.test.images, torch.full((len(toy_data.test),), 0.5))
    assert z.dtype == torch.float32 and torch.isfinite(z).all()


def test_resume_on_cuda_gives_the_same_weights(toy_data, tmp_path):
    """Same device, same seed: an interrupted and resumed fp32 run ends where an uninterrupted one does
    (up to cuDNN's non-deterministic kernels, see README, Determinism)."""
    import dataclasses

    from methods.training import TrainOptions
    from tests.test_resume import Interrupt, _stop_at

    opts = TrainOptions(precision="fp32", checkpoint_every=5)
    method, budget = smoke_method("drl", toy_data)
    budget = dataclasses.replace(budget, iterations=12)
    method.to("cuda").fit(toy_data.train, budget, progress=False, options=opts)
    expected = method.state_dict()
    method, _ = smoke_method("drl", toy_data)
    with pytest.raises(Interrupt):
        method.to("cuda").fit(toy_data.train, budget, progress=False, options=opts,
                              snapshot_path=tmp_path / "s.pt", on_step=_stop_at(7))
    method, _ = smoke_method("drl", toy_data)
    history = method.to("cuda").fit(toy_data.train, budget, progress=False, options=opts,
                                    snapshot_path=tmp_path / "s.pt")
    assert history.resumed_from == 5
    for part in expected:
        for name, tensor in expected[part].items():
            torch.testing.assert_close(method.state_dict()[part][name], tensor, rtol=1e-4, atol=1e-5)
