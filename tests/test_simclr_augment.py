"""SimCLR's batched kornia augmentation: shapes and devices, per-sample randomness, and statistics that
agree with lightly's per-image ``SimCLRTransform`` given the same keywords.

Tolerances come from the seed-to-seed spread measured on these inputs (8 seeds per backend): the full
pipeline's summary statistics vary by about 0.02-0.05 per seed on either backend, the blur-only
per-image std by 0.002. Each test also names a wrong setting its tolerance rejects.
"""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from lightly.transforms import SimCLRTransform

from benchmarks.__main__ import main
from methods.augmentations import KorniaSimCLRTransform
from methods.simclr import AUGMENT_BACKENDS, SimCLRConfig, simclr_transform_kwargs
from tests.conftest import smoke_method

NO_COLOUR = dict(cj_prob=0.0, random_gray_scale=0.0, gaussian_blur=0.0)


def realish(n: int, channels: int, size: int, seed: int = 0) -> torch.Tensor:
    """Smooth random colour fields plus pixel noise, as uint8: crops, jitter and blur all change them."""
    g = torch.Generator().manual_seed(seed)
    low = F.interpolate(torch.rand(n, channels, 4, 4, generator=g), size=(size, size), mode="bicubic")
    img = low + 0.1 * torch.randn(n, channels, size, size, generator=g)
    return (img.clamp(0, 1) * 255).round().to(torch.uint8)


def ramps(n: int, size: int = 32) -> torch.Tensor:
    """Red = 8 x column, green = 8 x row: a crop's size and place can be read off its corners."""
    cols = torch.arange(size).view(1, size).expand(size, size)
    img = torch.stack([8 * cols, 8 * cols.T, torch.zeros_like(cols)]).to(torch.uint8)
    return img.expand(n, -1, -1, -1).clone()


def simclr_params(images: torch.Tensor, **overrides) -> dict:
    """The keywords ``SimCLR.build`` passes, for these images' shape and statistics."""
    x = images.float() / 255
    params = simclr_transform_kwargs(tuple(images.shape[1:]), x.mean(dim=(0, 2, 3)).tolist(),
                                     x.std(dim=(0, 2, 3)).tolist(), SimCLRConfig(hflip=True))
    return {**params, **overrides}


def both_views(backend: str, images: torch.Tensor, params: dict, seed: int = 0) -> torch.Tensor:
    torch.manual_seed(seed)
    np.random.seed(seed)  # lightly's blur draws from numpy
    if backend == "kornia":
        return torch.cat(KorniaSimCLRTransform(**params)(images))
    transform = SimCLRTransform(**params)
    pairs = [transform(img) for img in images]
    return torch.cat([torch.stack([p[i] for p in pairs]) for i in (0, 1)])


def summary(views: torch.Tensor) -> dict[str, float]:
    return {"mean": views.mean().item(), "std": views.std().item(),
            "spread of image means": views.mean(dim=(1, 2, 3)).std().item(),
            "mean image std": views.std(dim=(1, 2, 3)).mean().item()}


def crop_sizes(views: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Width and height of each crop (as a fraction of the image) from un-normalised ramp views."""
    size = views.shape[-1]
    w = ((views[:, 0, :, -1] - views[:, 0, :, 0]).mean(1) * 255 / 8).round() + 1
    h = ((views[:, 1, -1, :] - views[:, 1, 0, :]).mean(1) * 255 / 8).round() + 1
    return w / size, h / size


def test_defaults_are_lightlys():
    lightly = inspect.signature(SimCLRTransform).parameters
    ours = inspect.signature(KorniaSimCLRTransform).parameters
    for name, p in ours.items():
        assert p.default == lightly[name].default, name
    # The steps left out are off by default in lightly.
    assert lightly["vf_prob"].default == 0.0 and lightly["rr_prob"].default == 0.0


@pytest.mark.parametrize("shape", [(3, 32, 32), (1, 28, 28)])
def test_shapes_dtype_device_and_two_different_views(shape):
    images = realish(16, shape[0], shape[1])
    first, second = KorniaSimCLRTransform(**simclr_params(images))(images)
    assert first.shape == second.shape == (16, *shape)
    assert first.dtype == second.dtype == torch.float32
    assert first.device == second.device == images.device
    assert torch.isfinite(first).all()
    assert (first - second).abs().flatten(1).amax(1).min() > 0.01  # every image's two views differ


def test_float_input_in_unit_range_gives_the_same_views_as_uint8():
    images = realish(8, 3, 32)
    transform = KorniaSimCLRTransform(**simclr_params(images))
    torch.manual_seed(3)
    from_uint8 = transform(images)
    torch.manual_seed(3)
    from_float = transform(images.float() / 255)
    for a, b in zip(from_uint8, from_float):
        torch.testing.assert_close(a, b)


def test_every_sample_draws_its_own_crop():
    views = both_views("kornia", ramps(256), {**simclr_params(ramps(1)), **NO_COLOUR, "hf_prob": 0.0,
                                              "normalize": None})
    w, h = crop_sizes(views)
    x0 = (views[:, 0, 0, 0] * 255 / 8).round()
    y0 = (views[:, 1, 0, 0] * 255 / 8).round()
    crops = set(zip(w.tolist(), h.tolist(), x0.tolist(), y0.tolist()))
    assert len(crops) > 0.8 * len(views), len(crops)  # 512 identical inputs, hardly a repeated crop


def test_crop_sizes_match_lightlys():
    """Area fraction and aspect ratio of 2 x 512 crops; min_scale=0.2 moves the mean area by 0.06."""
    images = ramps(512)
    params = {**simclr_params(images), **NO_COLOUR, "hf_prob": 0.0, "normalize": None}
    stats = {}
    for backend in AUGMENT_BACKENDS:
        w, h = crop_sizes(both_views(backend, images, params))
        log_ratio = torch.log(w / h)
        stats[backend] = ((w * h).mean().item(), log_ratio.mean().item(), log_ratio.std().item())
    (area_l, ratio_l, spread_l), (area_k, ratio_k, spread_k) = stats["lightly"], stats["kornia"]
    assert abs(area_k - area_l) < 0.03, stats
    assert abs(ratio_k - ratio_l) < 0.03, stats
    assert abs(spread_k - spread_l) < 0.1 * spread_l, stats
    assert max(w.max().item(), h.max().item()) <= 1.0


def test_blur_matches_lightlys():
    """Blur only, always on: the mean image std agrees within 1% (a largest sigma of 1.5 is 2.5% off)."""
    images = realish(256, 3, 32)
    params = simclr_params(images, cj_prob=0.0, random_gray_scale=0.0, gaussian_blur=1.0, min_scale=1.0, hf_prob=0.0)
    lightly = summary(both_views("lightly", images, params))["mean image std"]
    kornia = summary(both_views("kornia", images, params))["mean image std"]
    assert abs(kornia - lightly) < 0.01 * lightly, (kornia, lightly)


@pytest.mark.parametrize("shape", [(3, 32), (1, 28)])
def test_full_pipeline_statistics_match_lightlys(shape):
    """Both views of 256 images through every step; cj_strength=0.5 moves std by 13%, the spread by 40%."""
    images = realish(256, *shape)
    params = simclr_params(images)
    lightly = summary(both_views("lightly", images, params))
    kornia = summary(both_views("kornia", images, params))
    assert abs(kornia["mean"] - lightly["mean"]) < 0.15, (kornia, lightly)
    for name in ("std", "spread of image means", "mean image std"):
        assert abs(kornia[name] - lightly[name]) < 0.08 * lightly[name], (name, kornia, lightly)


def test_flip_and_greyscale_fractions_are_the_configured_probabilities():
    n = 2048  # 4096 views: the fractions' standard errors are 0.008 and 0.006
    flip_views = both_views("kornia", ramps(n), {**simclr_params(ramps(1)), **NO_COLOUR, "min_scale": 1.0,
                                                 "normalize": None})
    flipped = (flip_views[:, 0, 0, 0] > flip_views[:, 0, 0, -1]).float().mean().item()
    assert abs(flipped - 0.5) < 0.04, flipped

    images = realish(n, 3, 32)
    params = simclr_params(images)
    views = both_views("kornia", images, params)
    mean = torch.tensor(params["normalize"]["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(params["normalize"]["std"]).view(1, 3, 1, 1)
    pixels = views * std + mean
    grey = (pixels - pixels.mean(dim=1, keepdim=True)).abs().flatten(1).amax(1) < 1e-4
    assert abs(grey.float().mean().item() - 0.2) < 0.03, grey.float().mean().item()


def test_grey_images_get_no_colour_steps():
    images = realish(4, 1, 28)
    steps = [type(m).__name__ for m in KorniaSimCLRTransform(**simclr_params(images)).view]
    assert "RandomGrayscale" not in steps and "RandomHorizontalFlip" in steps


@pytest.mark.parametrize("channels", [1, 3])
def test_simclr_fits_with_the_kornia_backend(channels):
    from tests.conftest import make_splits

    data = make_splits(size=16, channels=channels)
    method, budget = smoke_method("simclr", data, augment_backend="kornia")
    assert isinstance(method.transform, KorniaSimCLRTransform)
    history = method.fit(data.train, budget, progress=False)
    assert history.losses and all(math.isfinite(loss) for loss in history.losses)


def test_bad_backend_is_one_line_naming_the_valid_ones(tmp_path, capsys):
    with pytest.raises(ValueError, match="augment_backend=gpu is not allowed; valid: lightly, kornia"):
        SimCLRConfig(augment_backend="gpu")
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--method", "simclr", "--protocol", "probe", "--preset", "smoke", "--no-progress",
              "--results", str(tmp_path / "r"), "--leaderboards", str(tmp_path / "b"),
              "--set", "augment_backend=gpu"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "augment_backend=gpu is not allowed; valid: lightly, kornia" in err, err


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_kornia_pipeline_stays_on_cuda():
    images = realish(128, 3, 32).cuda()
    first, second = KorniaSimCLRTransform(**simclr_params(images.cpu()))(images)
    assert first.device.type == second.device.type == "cuda"
    assert first.shape == (128, 3, 32, 32) and torch.isfinite(first).all()
    data_views = summary(torch.cat([first, second]).cpu())
    assert abs(data_views["std"] - 1.0) < 0.15, data_views  # normalised pixels, as on the CPU
