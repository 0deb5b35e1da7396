"""What makes each baseline itself (the shared contract is in test_method_contract.py)."""

import pytest
import torch

from methods.sde import VESDE, VPSDE
from tests.conftest import smoke_method


def _capture_encoder_inputs(method):
    seen = []
    encoder = method.modules["encoder"]
    original = encoder.forward

    def spy(x, *args, **kwargs):
        seen.append(x.detach().clone())
        return original(x, *args, **kwargs)

    encoder.forward = spy
    return seen


def test_dae_encodes_the_noisy_image_in_training(toy_data):
    method, _ = smoke_method("dae", toy_data)
    seen = _capture_encoder_inputs(method)
    x0 = method.normalise(toy_data.train.images[:64])
    torch.manual_seed(0)
    method.loss(x0)
    residual = seen[0] - x0
    assert residual.abs().mean() > 0.5  # t ~ U(0, 1) on sigma up to 50: mostly noise
    # Per sample, the residual's std is sigma(t) of the t drawn: it spans small and large noise.
    per_sample = residual.flatten(1).std(dim=1)
    assert per_sample.min() < 0.5 and per_sample.max() > 5


def test_dae_code_is_of_a_noisy_input_and_degrades_with_t(toy_data):
    method, _ = smoke_method("dae", toy_data)
    x = toy_data.test.images[:16]
    noise_a, noise_b = method.eval_noise(method.normalise(x)), method.eval_noise(method.normalise(x[:4]))
    torch.testing.assert_close(noise_a[:4], noise_b)  # keyed by the image, not its place in the batch
    assert noise_a.std() > 0.5
    clean = method.normalise(x)
    level = method.sde.noise_level(torch.full((16,), 1.0))
    encoder = method.ema.module.eval()
    noisy_code = method.encode(x, torch.full((16,), 1.0))
    clean_code = encoder(clean, level)
    assert not torch.allclose(noisy_code, clean_code)


def test_cdae_predicts_x0_and_its_code_is_the_clean_encoding(toy_data):
    method, _ = smoke_method("cdae", toy_data)
    x = toy_data.test.images[:8]
    t = torch.full((8,), 0.4)
    expected = method.ema.module.eval()(method.normalise(x), method.sde.noise_level(t))
    torch.testing.assert_close(method.encode(x, t), expected)
    seen = _capture_encoder_inputs(method)
    x0 = method.normalise(toy_data.train.images[:8])
    method.loss(x0)
    torch.testing.assert_close(seen[0], x0)  # the encoder sees the clean image


def test_vae_trains_on_samples_and_encodes_the_mean(toy_data):
    method, _ = smoke_method("vae", toy_data)
    x0 = method.normalise(toy_data.train.images[:16])
    _, terms = method.loss(x0)
    assert terms["kl"] > 0 and "recon" in terms
    torch.manual_seed(1)
    a = method.loss(x0)[0]
    torch.manual_seed(2)
    b = method.loss(x0)[0]
    assert a != b  # reparameterised sampling
    out = method.ema.module.eval()(x0, method.sde.noise_level(torch.zeros(16)))
    assert out.shape[1] == 2 * method.cfg.latent_dim
    torch.testing.assert_close(method.encode(toy_data.train.images[:16], torch.zeros(16)),
                               out[:, : method.cfg.latent_dim])


def test_ae_loss_is_reconstruction(toy_data):
    method, _ = smoke_method("ae", toy_data)
    x0 = method.normalise(toy_data.train.images[:16])
    decoded = method.modules["decoder"](method.modules["encoder"](x0, torch.zeros(16)))
    assert decoded.shape == x0.shape


def test_simclr_gauss_uses_additive_noise_and_nothing_else(toy_data):
    method, _ = smoke_method("simclr-gauss", toy_data, gauss_std=0.3)
    images = toy_data.train.images
    clean = method.normalise(images)
    a, b = method.prepare(images)
    for view in (a, b):
        residual = view - clean
        assert abs(residual.mean().item()) < 0.02 and abs(residual.std().item() - 0.3) < 0.02
    assert not torch.allclose(a, b)  # two independent draws
    quiet, _ = smoke_method("simclr-gauss", toy_data, gauss_std=0.0)
    for view in quiet.prepare(images):
        torch.testing.assert_close(view, clean, rtol=0, atol=0)  # no crop, flip, jitter...


def test_simclr_uses_lightly_transform_sized_for_grey_images(toy_data):
    method, _ = smoke_method("simclr", toy_data)
    a, b = method.prepare(toy_data.train.images[:32])
    assert a.shape == b.shape == (32, *toy_data.image_shape)
    assert not torch.allclose(a, b)
    assert type(method.transform).__module__.startswith("lightly")
    assert type(method.criterion).__name__ == "NTXentLoss"


@pytest.mark.parametrize("name", ["simclr", "simclr-gauss"])
def test_contrastive_encoders_have_no_time_path(name, toy_data):
    method, _ = smoke_method(name, toy_data)
    assert method.time_conditioned is False
    assert method.modules["encoder"].time_embed is None


@pytest.mark.parametrize("name,sde", [("drl", VESDE), ("vdrl", VESDE), ("drl-vp", VPSDE), ("vdrl-vp", VPSDE)])
def test_diffusion_methods_use_their_sde(name, sde, toy_data):
    method, _ = smoke_method(name, toy_data)
    assert type(method.sde) is sde


@pytest.mark.parametrize("name", ["vae", "vdrl"])
def test_the_posterior_std_can_fall_below_one(name, toy_data):
    """2 * latent_dim equal to the pooled width (16 x 2 = 32 for cnn width 8): the encoder still ends in
    its own Linear, so the log-variance can go negative and a short fit makes the posterior confident."""
    from methods.base import Budget

    method, _ = smoke_method(name, toy_data, encoder_width=8, latent_dim=16)
    assert method.modules["encoder"].feature_dim == 2 * method.cfg.latent_dim
    assert isinstance(method.modules["encoder"].project, torch.nn.Linear)
    method.fit(toy_data.train, Budget(iterations=60, batch_size=32, lr=3e-3, warmup=0, ema_decay=0.0),
               progress=False)
    encoder = method.modules["encoder"].eval()
    with torch.no_grad():
        x0 = method.normalise(toy_data.train.images)
        log_var = encoder(x0, method.sde.noise_level(torch.full((len(x0),), 0.3)))[:, method.cfg.latent_dim:]
    assert float(torch.exp(0.5 * log_var).min()) < 1.0
