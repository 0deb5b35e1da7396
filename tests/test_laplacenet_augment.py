"""LaplaceNet's batched augmentation against torchvision's per-image one: shapes and devices, draws
made per image, the same distribution of every random choice, and the same pixels for the same draws.

Statistical tests compare counts with a chi-square test at p > 1e-3 on fixed seeds (deterministic); a
choice drawn once per batch instead of per image puts every count in one bin (p ~ 0) and fails them.
"""

from __future__ import annotations

import collections
import dataclasses

import pytest
import torch
import torch.nn.functional as nnf
from scipy.stats import chi2_contingency, chisquare
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from benchmarks.__main__ import main
from benchmarks.presets import preset_settings
from methods.base import config_from_settings
from protocols.augment import (
    NO_OP,
    RAND_AUGMENT_OPS,
    Augmenter,
    BatchedAugmenter,
    apply_rand_augment_groups,
    crop_padding,
    crop_windows,
    cutout_side,
    erase_squares,
    laplacenet_transform,
    rand_augment_groups,
    rand_augment_magnitudes,
)
from protocols.semisup import LaplaceNet, SemisupConfig
from tests.conftest import smoke_method

DEVICES = ["cpu", pytest.param("cuda", marks=[pytest.mark.gpu, pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA device")])]
P_MIN = 1e-3


def natural(n: int, channels: int = 3, size: int = 32, seed: int = 0) -> torch.Tensor:
    """Smooth random colour fields plus pixel noise, as uint8: every RandAugment op changes them."""
    g = torch.Generator().manual_seed(seed)
    low = nnf.interpolate(torch.rand(n, channels, 4, 4, generator=g), size=(size, size), mode="bicubic")
    return ((low + 0.1 * torch.randn(n, channels, size, size, generator=g)).clamp(0, 1) * 255).round().to(torch.uint8)


def coordinates(channels: int, size: int) -> torch.Tensor:
    """An image without zeros whose every flipped or shifted window differs: its place can be read back."""
    rows, cols = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    if channels == 1:
        return (1 + rows * size + cols).to(torch.uint8)[None]  # size <= 15 keeps it below 256
    return torch.stack([1 + 7 * cols, 1 + 7 * rows, torch.full_like(rows, 128)]).to(torch.uint8)


def decode(out: torch.Tensor, image: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per output image: flipped, crop top and left, Cutout's zero count and its top-left corner."""
    size, padding = image.shape[-1], crop_padding(image.shape[-1])
    keys, matches = [], []
    for flip in (False, True):
        padded = F.pad(image.flip(-1) if flip else image, [padding], padding_mode="reflect")
        for top in range(2 * padding + 1):
            for left in range(2 * padding + 1):
                window = padded[:, top:top + size, left:left + size]
                matches.append(((out == window) | (out == 0)).flatten(1).all(1))  # zeros: the Cutout square
                keys.append((flip, top, left))
    matches = torch.stack(matches)
    assert (matches.sum(0) == 1).all(), "every output must be exactly one flipped/cropped window"
    flip, top, left = torch.tensor(keys)[matches.int().argmax(0)].T
    zeros = (out == 0).all(1)
    rows, cols = torch.arange(size).view(1, -1, 1), torch.arange(size).view(1, 1, -1)
    return dict(flip=flip, top=top, left=left, zeros=zeros.flatten(1).sum(1),
                erase_top=torch.where(zeros, rows, size).flatten(1).min(1).values,
                erase_left=torch.where(zeros, cols, size).flatten(1).min(1).values)


def both_backends(channels: int, size: int, n: int, hflip: bool, seed: int = 0) -> tuple[dict, dict]:
    """Flip, crop and Cutout (RandAugment with 0 ops) of ``n`` copies of the coordinate image, decoded."""
    image = coordinates(channels, size)
    images = image.expand(n, -1, -1, -1).clone()
    torch.manual_seed(seed)
    reference = laplacenet_transform(size, 0, hflip)
    per_image = torch.stack([reference(img) for img in images])
    batched = BatchedAugmenter(size, hflip, torch.Generator().manual_seed(seed)).augment(images, 0)
    return decode(per_image, image), decode(batched, image)


def counts(values: torch.Tensor, bins: int) -> torch.Tensor:
    return torch.bincount(values, minlength=bins)


def rand_augment_step(images: torch.Tensor, ops: torch.Tensor, negative: torch.Tensor) -> torch.Tensor:
    """One batched RandAugment step given its draws: the host's grouping, then the pixels."""
    order, runs = rand_augment_groups(ops, negative)
    return apply_rand_augment_groups(images, order.to(images.device), runs, rand_augment_magnitudes(*images.shape[-2:]))


def spy_on_rand_augment(monkeypatch, spy) -> None:
    """Route torchvision's RandAugment dispatch (both backends call it) through ``spy(real, ...)``."""
    real = v2.RandAugment._apply_image_or_video_transform
    monkeypatch.setattr(v2.RandAugment, "_apply_image_or_video_transform",
                        lambda self, image, op, magnitude, **kwargs: spy(
                            lambda: real(self, image, op, magnitude, **kwargs), image, op, magnitude))


# -- shapes, devices, independence ------------------------------------------------------------------


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("channels,size", [(3, 32), (1, 28), (1, 8)])
def test_shape_dtype_and_device_are_kept(device, channels, size):
    images = natural(12, channels, size).to(device)
    aug = BatchedAugmenter(size, hflip=channels == 3)
    for out in (aug.weak(images), aug.strong(images)):
        assert out.shape == images.shape and out.dtype == torch.uint8 and out.device == images.device
        assert not torch.equal(out, images)
    views = aug.views(images, torch.arange(12) >= 4, copies=3)
    assert views.shape == (36, *images.shape[1:]) and views.dtype == torch.uint8 and views.device == images.device
    assert not torch.equal(views[:12], views[12:24])  # every copy draws its own augmentations


def test_identical_images_are_augmented_independently():
    images = natural(1).expand(64, -1, -1, -1).clone()
    out = BatchedAugmenter(32, hflip=True, generator=torch.Generator().manual_seed(0)).strong(images)
    assert len(torch.unique(out.flatten(1), dim=0)) >= 60  # a batch-wide draw gives 1


# -- a step's views -----------------------------------------------------------------------------------


@pytest.mark.parametrize("strong", [[0, 1, 0, 0, 1, 1, 0, 1], [0] * 8, [1] * 8], ids=["mixed", "weak", "strong"])
def test_torchvision_views_make_the_draws_of_the_per_copy_calls(strong):
    # The committed results were drawn with this call sequence: per copy the weak rows, then the strong ones.
    images, strong, copies = natural(8, size=16), torch.tensor(strong, dtype=torch.bool), 3
    weak_transform, strong_transform = laplacenet_transform(16, 1, hflip=True), laplacenet_transform(16, 2, hflip=True)
    torch.manual_seed(0)
    expected = []
    for _ in range(copies):
        view = images.clone()
        for rows, transform in ((~strong, weak_transform), (strong, strong_transform)):
            if rows.any():
                view[rows] = torch.stack([transform(img) for img in images[rows]])
        expected.append(view)
    next_draws = torch.rand(4)
    torch.manual_seed(0)
    out = Augmenter(16, hflip=True).views(images, strong, copies)
    assert torch.equal(out, torch.cat(expected))
    assert torch.equal(torch.rand(4), next_draws)  # and no draw more or less


def test_batched_views_follow_the_label_order_with_one_weak_and_two_strong_ops_per_row(monkeypatch):
    n, copies = 10, 3
    images = torch.arange(1, n + 1, dtype=torch.uint8).view(-1, 1, 1, 1).expand(n, 3, 16, 16).clone()  # row r: r + 1
    strong = torch.arange(n) % 3 == 0
    ops_per_image = collections.Counter()

    def identity(real, image, op, magnitude):  # keeps each row's constant value: the row is read back from it
        ops_per_image.update(image.flatten(1).amax(1).tolist())
        return image

    spy_on_rand_augment(monkeypatch, identity)
    out = BatchedAugmenter(16, hflip=True, generator=torch.Generator().manual_seed(0)).views(images, strong, copies)
    values = out.flatten(1).amax(1).long()
    assert torch.equal(values, torch.arange(1, n + 1).repeat(copies))  # copy after copy, as labels.repeat(copies)
    assert ((out == 0) | (out == values.view(-1, 1, 1, 1))).all()  # flip, crop and Cutout kept each row's own
    assert ops_per_image == {r + 1: copies * (2 if strong[r] else 1) for r in range(n)}


# -- the distribution of each random choice --------------------------------------------------------


def test_flip_crop_and_cutout_draws_match_torchvision_on_colour_images():
    n, size = 450, 32
    reference, batched = both_backends(3, size, n, hflip=True)
    offsets, side = 2 * crop_padding(size) + 1, cutout_side(size, size)
    for drawn in (reference, batched):
        assert abs(drawn["flip"].float().mean() - 0.5) < 4 * (0.25 / n) ** 0.5  # 4 binomial sigmas
        assert (drawn["zeros"] == size * size // 4).all()  # exactly a quarter of every image, one square
        for name, bins in (("top", offsets), ("left", offsets), ("erase_top", size - side + 1),
                           ("erase_left", size - side + 1)):
            assert chisquare(counts(drawn[name], bins)).pvalue > P_MIN, name  # uniform, as RandomCrop/Erasing
    for name, bins in (("top", offsets), ("erase_top", size - side + 1)):
        table = torch.stack([counts(reference[name], bins), counts(batched[name], bins)])
        assert chi2_contingency(table).pvalue > P_MIN, name


def test_grey_images_are_never_flipped_and_lose_a_quarter():
    reference, batched = both_backends(1, 8, 200, hflip=False)
    for drawn in (reference, batched):
        assert not drawn["flip"].any() and (drawn["zeros"] == 16).all()
        assert chisquare(counts(drawn["top"], 3)).pvalue > P_MIN


def rand_augment_draws(monkeypatch, run) -> collections.Counter:
    """How many images each (op, magnitude) was applied to, through torchvision's RandAugment dispatch."""
    drawn = collections.Counter()

    def count(real, image, op, magnitude):
        drawn[op, magnitude] += image.shape[0] if image.ndim == 4 else 1
        return real()

    with monkeypatch.context() as patch:
        spy_on_rand_augment(patch, count)
        run()
    return drawn


def test_rand_augment_op_and_sign_draws_match_torchvision(monkeypatch):
    images = natural(700)
    signed = {op for op, (_, is_signed) in v2.RandAugment._AUGMENTATION_SPACE.items() if is_signed}
    torch.manual_seed(0)
    reference = rand_augment_draws(monkeypatch, lambda: Augmenter(32, hflip=True).strong(images))
    batched_aug = BatchedAugmenter(32, hflip=True, generator=torch.Generator().manual_seed(0))
    batched = rand_augment_draws(monkeypatch, lambda: batched_aug.strong(images))  # one call: one batch
    assert set(batched) == set(reference)  # the same ops with the same magnitudes and signs
    assert len(reference) == len(RAND_AUGMENT_OPS) + len(signed)  # every op, the signed ones with both signs
    per_op = collections.Counter()
    for (op, _), k in batched.items():
        per_op[op] += k
    assert sum(per_op.values()) == 2 * len(images)
    assert chisquare([per_op[op] for op in RAND_AUGMENT_OPS]).pvalue > P_MIN  # uniform over the table
    negative = sum(k for (_, m), k in batched.items() if m < 0)
    n_signed = sum(k for (op, _), k in batched.items() if op in signed)
    assert abs(negative / n_signed - 0.5) < 4 * (0.25 / n_signed) ** 0.5
    keys = sorted(reference)
    assert chi2_contingency([[reference[k] for k in keys], [batched[k] for k in keys]]).pvalue > P_MIN


def test_rand_augment_table_is_torchvisions_with_identity():
    assert RAND_AUGMENT_OPS == ("Identity", "ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate", "Brightness",
                                "Color", "Contrast", "Sharpness", "Posterize", "Solarize", "AutoContrast", "Equalize")
    assert tuple(v2.RandAugment._AUGMENTATION_SPACE) == RAND_AUGMENT_OPS


# -- the same pixels for the same draws -------------------------------------------------------------


def test_rand_augment_steps_equal_torchvision_given_its_draws(monkeypatch):
    images, num_ops = natural(140, seed=1), 2
    torch.manual_seed(0)
    reference_aug = v2.RandAugment(num_ops=num_ops)
    recorded: list[tuple[str, float]] = []

    def record(real, image, op, magnitude):
        recorded.append((op, magnitude))
        return real()

    with monkeypatch.context() as patch:
        spy_on_rand_augment(patch, record)
        expected = torch.stack([reference_aug(img) for img in images])
    assert {op for op, _ in recorded} == set(RAND_AUGMENT_OPS)  # every op is checked
    ops = torch.tensor([RAND_AUGMENT_OPS.index(op) for op, _ in recorded]).view(len(images), num_ops)
    negative = torch.tensor([m < 0 for _, m in recorded]).view(len(images), num_ops)
    out = images
    for step in range(num_ops):
        out = rand_augment_step(out, ops[:, step], negative[:, step])
    assert torch.equal(out, expected)


def test_rows_without_a_step_pass_it_unchanged():
    images, g = natural(30, seed=3), torch.Generator().manual_seed(0)
    ops, negative = torch.randint(len(RAND_AUGMENT_OPS), (30,), generator=g), torch.rand(30, generator=g) < 0.5
    skipped = torch.arange(30) % 3 == 0
    out = rand_augment_step(images, torch.where(skipped, NO_OP, ops), negative)
    assert torch.equal(out[skipped], images[skipped])
    assert torch.equal(out[~skipped], rand_augment_step(images[~skipped], ops[~skipped], negative[~skipped]))


def test_crop_and_cutout_equal_torchvision_functionals():
    images, g = natural(20, seed=2), torch.Generator().manual_seed(0)
    padding, side = crop_padding(32), cutout_side(32, 32)
    tops, lefts = torch.randint(0, 2 * padding + 1, (2, 20), generator=g)
    expected = torch.stack([F.crop(F.pad(img, [padding], padding_mode="reflect"), int(top), int(left), 32, 32)
                            for img, top, left in zip(images, tops, lefts)])
    assert torch.equal(crop_windows(images, padding, tops, lefts, 32), expected)
    tops, lefts = torch.randint(0, 32 - side + 1, (2, 20), generator=g)
    expected = torch.stack([F.erase(img, int(top), int(left), side, side, torch.zeros(1, 1, 1))
                            for img, top, left in zip(images, tops, lefts)])
    assert torch.equal(erase_squares(images, tops, lefts, side), expected)


@pytest.mark.parametrize("height,width", [(32, 32), (28, 28), (8, 8), (1, 1), (1, 16), (3, 40)])
def test_cutout_side_follows_random_erasing(height, width):
    erasing = v2.RandomErasing(p=1.0, scale=(0.25, 0.25), ratio=(1.0, 1.0), value=0)
    params = erasing.make_params([torch.zeros(1, height, width, dtype=torch.uint8)])
    assert params["v"] is None or params["h"] == params["w"]  # a square where it fits
    assert cutout_side(height, width) == (None if params["v"] is None else params["h"])


# -- the protocol's setting ------------------------------------------------------------------------


def test_semisup_builds_the_chosen_backend_and_trains_with_it(toy_data):
    method, _ = smoke_method("none", toy_data)
    cfg = config_from_settings(SemisupConfig, preset_settings("smoke", toy_data.image_shape))
    assert cfg.semisup_augment_backend == "torchvision"
    pool = torch.arange(len(toy_data.train))
    for backend, kind in (("torchvision", Augmenter), ("batched", BatchedAugmenter)):
        net = LaplaceNet(method, toy_data, dataclasses.replace(cfg, semisup_augment_backend=backend),
                         torch.arange(6), pool, torch.device("cpu"))
        assert isinstance(net.augment, kind)
        net.warmup_epoch()
        assert net.step > 0


def test_unknown_backend_is_one_line_and_exit_2(tmp_path, capsys):
    with pytest.raises(ValueError, match="semisup_augment_backend=gpu is not allowed; valid: torchvision, batched"):
        SemisupConfig(semisup_augment_backend="gpu")
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--method", "ae", "--protocol", "semisup", "--preset", "smoke", "--no-progress",
              "--set", "semisup_augment_backend=gpu", "--results", str(tmp_path / "r"),
              "--leaderboards", str(tmp_path / "b")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1
    assert "semisup_augment_backend=gpu is not allowed; valid: torchvision, batched" in err
