"""LaplaceNet: the graph, the label-spreading solver, the learnable t, label splits, and smoke runs."""

import dataclasses
import re

import numpy as np
import pytest
import scipy.sparse
import torch

from benchmarks.__main__ import main
from benchmarks.presets import preset_settings
from benchmarks.store import ResultsStore
from datasets import load_dataset
from datasets.base import DATASETS
from methods.base import config_from_settings
from protocols.augment import Augmenter
from protocols.label_spreading import (
    align_distribution,
    knn_graph,
    normalised_adjacency,
    pseudo_labels,
    spread_labels,
)
from protocols.semisup import (
    T_SCAN,
    LaplaceNet,
    SemisupClassifier,
    SemisupConfig,
    balanced_subset,
    semisup_ladder,
    training_pool,
)
from tests.conftest import smoke_method


def _blobs(n_per_class: int, n_classes: int = 3, dim: int = 8, spread: float = 0.3, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.eye(n_classes, dim) * 4
    labels = torch.arange(n_classes).repeat_interleave(n_per_class)
    return centres[labels] + spread * torch.randn(len(labels), dim, generator=g), labels


# -- the graph and the solver ------------------------------------------------------------


def test_knn_graph_is_symmetric_nonnegative_without_self_loops():
    codes, _ = _blobs(20)
    w = knn_graph(codes, k=5)
    dense = w.toarray()
    assert np.allclose(dense, dense.T) and (dense >= 0).all() and (np.diag(dense) == 0).all()
    assert ((dense > 0).sum(axis=1) >= 5).all()  # every point keeps its own 5 neighbours (max-symmetrised)
    # The neighbours are the most similar points: a point's largest weight is its nearest cosine neighbour.
    unit = torch.nn.functional.normalize(codes, dim=1)
    sims = (unit @ unit.T).fill_diagonal_(-2)
    assert (dense.argmax(axis=1) == sims.argmax(dim=1).numpy()).all()


def test_normalised_adjacency_has_spectrum_in_unit_interval():
    w = knn_graph(_blobs(15)[0], k=4)
    eig = np.linalg.eigvalsh(normalised_adjacency(w).toarray())
    assert eig.max() <= 1 + 1e-9 and eig.min() >= -1 - 1e-9


def test_conjugate_gradient_matches_the_exact_solution_on_a_small_graph():
    rng = np.random.default_rng(0)
    a = rng.random((12, 12))
    w = scipy.sparse.csr_matrix(np.triu(a, 1) + np.triu(a, 1).T)
    w_norm = normalised_adjacency(w)
    labelled, labels = torch.tensor([0, 5, 9]), torch.tensor([0, 1, 2])
    got = spread_labels(w_norm, labelled, labels, 3, alpha=0.9, iterations=100, tol=1e-12)
    y = np.zeros((12, 3))
    y[[0, 5, 9], [0, 1, 2]] = 1
    exact = np.linalg.solve(np.eye(12) - 0.9 * w_norm.toarray(), y)
    np.testing.assert_allclose(got, exact, atol=1e-8)


def test_labels_spread_within_connected_components_only():
    # Two cliques, one labelled point each: each clique takes its own label, none leaks across.
    block = np.ones((4, 4)) - np.eye(4)
    w = scipy.sparse.block_diag([block, block]).tocsr()
    z = spread_labels(normalised_adjacency(w), torch.tensor([0, 4]), torch.tensor([0, 1]), 2)
    assert (z[:4, 1] == 0).all() and (z[4:, 0] == 0).all()
    assert (z[:4, 0] > 0).all() and (z[4:, 1] > 0).all()


def test_distribution_alignment_moves_class_frequencies_towards_the_target():
    rng = np.random.default_rng(1)
    probs = rng.dirichlet([1, 1, 1], size=300)
    probs[:, 0] += 0.4  # class 0 dominates the hard labels
    probs /= probs.sum(axis=1, keepdims=True)
    target = np.full(3, 1 / 3)
    before = np.bincount(probs.argmax(1), minlength=3) / 300
    after = np.bincount(align_distribution(probs, target, iterations=100).argmax(1), minlength=3) / 300
    assert np.abs(after - target).sum() < np.abs(before - target).sum() / 2


def test_pseudo_labels_beat_chance_on_separable_codes_and_keep_known_labels():
    codes, truth = _blobs(40, n_classes=4)
    labelled = torch.tensor([0, 40, 80, 120])  # one label per class
    predicted = pseudo_labels(codes, labelled, truth[labelled], 4, k=10)
    assert (predicted[labelled] == truth[labelled]).all()
    assert (predicted == truth).float().mean() > 0.9  # chance is 0.25


# -- label splits ----------------------------------------------------------------------------


def test_ladders_the_papers_and_proportional():
    published = {name: DATASETS.get(name).semisup_labels for name in ("cifar10", "cifar100", "miniimagenet")}
    assert published == {"cifar10": (100, 500, 1000, 2000, 4000), "cifar100": (1000, 4000, 10000, 20000),
                         "miniimagenet": (4000, 10000)}, "the registrations carry the papers' counts"
    assert semisup_ladder(published["cifar10"], 45000, 10) == (100, 500, 1000, 2000, 4000)
    assert semisup_ladder((), 1077, 10) == (10, 20, 40, 90)  # digits: CIFAR-10's fractions, whole per class
    assert semisup_ladder((), 1077, 10, (30,)) == (30,)
    assert load_dataset("digits").semisup_labels == ()


def test_balanced_subset_is_balanced_seeded_and_checked():
    labels = torch.arange(300) % 3
    a, b = balanced_subset(labels, 30, seed=4), balanced_subset(labels, 30, seed=4)
    assert torch.equal(a, b) and not torch.equal(a, balanced_subset(labels, 30, seed=5))
    assert torch.bincount(labels[a]).tolist() == [10, 10, 10]
    with pytest.raises(ValueError, match="valid: multiples of 3 up to 300"):
        balanced_subset(labels, 31, seed=0)
    with pytest.raises(ValueError, match="cannot draw a balanced set of 303"):
        balanced_subset(labels, 303, seed=0)


def test_training_pool_holds_the_labelled_images():
    labelled = torch.tensor([3, 7, 50])
    pool = training_pool(100, labelled, 20, seed=0)
    assert len(pool) == 20 and torch.isin(labelled, pool).all() and len(set(pool.tolist())) == 20
    assert torch.equal(training_pool(100, labelled, 0, seed=0), torch.arange(100))


# -- the classifier and its learnable t ---------------------------------------------------------


def test_learnable_t_receives_gradients_only_through_running_statistics(toy_data):
    """t enters each block as a per-channel bias just before a BatchNorm. With running statistics (eval
    mode) the loss reaches t; in training mode the batch's statistics remove a bias the whole batch
    shares, so the loss gradient reaching t is zero (as in the reference's WRN-28-2): only weight decay
    (``t_weight_decay``) can move it there."""
    method, _ = smoke_method("drl", toy_data)
    x, y = method.normalise(toy_data.train.images[:16]), toy_data.train.labels[:16]
    grads = {}
    for mode in ("eval", "train"):
        model = SemisupClassifier(method, num_classes=3, t_init=0.9)
        assert model.t == pytest.approx(0.9)
        model.train(mode == "train")
        torch.nn.functional.cross_entropy(model(x), y).backward()
        grads[mode] = model.t_logit.grad.abs().item()
    assert grads["eval"] > 1e-4 and grads["train"] < 1e-3 * grads["eval"], grads
    # The evaluated method's encoder is a copy: training the classifier never touches it.
    assert all(p.grad is None for p in method.ema.module.parameters())


def test_t_weight_decay_pulls_t_to_half_as_the_reference(toy_data):
    method, _ = smoke_method("drl", toy_data)
    settings = preset_settings("smoke", toy_data.image_shape)
    t_after = {}
    for decay in (False, True):
        cfg = config_from_settings(SemisupConfig, {**settings, "t_init": 0.9, "t_weight_decay": decay,
                                                   "semisup_weight_decay": 0.1})
        net = LaplaceNet(method, toy_data, cfg, torch.arange(6), torch.arange(len(toy_data.train)),
                         torch.device("cpu"))
        for _ in range(3):
            net._train_step(net.labelled_images, net.labelled_labels, torch.zeros(6, dtype=torch.bool))
        t_after[decay] = net.model.t
    assert t_after[False] == pytest.approx(0.9, abs=1e-4)  # no force on t but a zero loss gradient
    assert 0.5 < t_after[True] < 0.9 - 1e-3


def test_a_static_or_frozen_t_gets_no_gradient(toy_data):
    x = toy_data.train.images[:8]
    for name, learn_t in (("none", True), ("drl", False)):
        method, _ = smoke_method(name, toy_data)
        model = SemisupClassifier(method, num_classes=3, learn_t=learn_t)
        model(method.normalise(x)).sum().backward()
        assert model.t_logit.grad is None
    assert SemisupClassifier(smoke_method("none", toy_data)[0], 3).t is None


def test_t_scan_starts_from_the_lowest_labelled_loss(toy_data, monkeypatch):
    method, _ = smoke_method("drl", toy_data)
    cfg = config_from_settings(SemisupConfig, preset_settings("smoke", toy_data.image_shape))
    net = LaplaceNet(method, toy_data, cfg, torch.arange(6), torch.arange(len(toy_data.train)), torch.device("cpu"))
    losses = {round(t, 6): abs(t - 0.7) for t in T_SCAN}  # lowest at the grid point nearest 0.7
    monkeypatch.setattr(net, "_labelled_loss", lambda: losses[min(losses, key=lambda t: abs(t - net.model.t))])
    chosen = net.scan_t()
    assert chosen == pytest.approx(0.7, abs=0.051) and net.model.t == pytest.approx(chosen, abs=1e-6)


def test_augmentations_keep_shape_and_dtype_and_change_images():
    images = torch.randint(0, 255, (6, 3, 16, 16), dtype=torch.uint8)
    aug = Augmenter(16, hflip=True)
    for out in (aug.weak(images), aug.strong(images)):
        assert out.shape == images.shape and out.dtype == torch.uint8 and not torch.equal(out, images)
        assert (out.flatten(1) == 0).float().mean(1).min() >= 0.2  # Cutout blanks a quarter of each image


def test_mixup_run_learns_the_toy_task(toy_data):
    method, _ = smoke_method("drl", toy_data)
    settings = {**preset_settings("smoke", toy_data.image_shape), "mixup": True}
    cfg = config_from_settings(SemisupConfig, settings)
    labelled = balanced_subset(toy_data.train.labels, 6, seed=0)
    torch.manual_seed(0)
    result = LaplaceNet(method, toy_data, cfg, labelled, torch.arange(len(toy_data.train)), torch.device("cpu")).fit()
    assert len(result.pseudo_label_accuracy) == cfg.semisup_rounds
    assert result.test_accuracy > 0.6  # chance is 1/3


def test_a_diverging_step_stops_the_epoch_naming_it(toy_data, monkeypatch):
    # Checked once per epoch (no device sync per step), yet the first non-finite step is named.
    method, _ = smoke_method("drl", toy_data)
    cfg = config_from_settings(SemisupConfig, {**preset_settings("smoke", toy_data.image_shape),
                                               "semisup_batch_size": 2, "semisup_labelled_batch": 1})
    net = LaplaceNet(method, toy_data, cfg, torch.arange(6), torch.arange(len(toy_data.train)), torch.device("cpu"))
    real_ce = net.soft_ce
    monkeypatch.setattr(net, "soft_ce", lambda out, soft: real_ce(out, soft) * (float("nan") if net.step >= 1 else 1))
    with pytest.raises(FloatingPointError, match=r"semisup \(drl\): non-finite loss at step 1; lower semisup_lr"):
        net.warmup_epoch()  # 6 labelled images, batches of 2: steps 0, 1, 2


# -- end to end ---------------------------------------------------------------------------------


def test_smoke_runs_from_scratch_and_from_a_drl_encoder(tmp_path):
    args = ["run", "--method", "none,drl", "--protocol", "semisup", "--preset", "smoke", "--no-progress",
            "--set", "semisup_labels=10", "--results", str(tmp_path / "r"), "--leaderboards", str(tmp_path / "b")]
    assert main(args) == 0
    frame = ResultsStore(tmp_path / "r").frame()
    by_method = {m: set(g["metric"]) for m, g in frame.groupby("method")}
    assert by_method["none"] == {"accuracy", "warmup_accuracy", "val_accuracy", "pseudo_label_accuracy"}
    assert by_method["drl"] == by_method["none"] | {"t_final"}
    assert set(frame["labels"]) == {10} and set(frame["head"]) == {"no mixup"}
    accuracy = frame[frame["metric"] == "accuracy"]
    assert accuracy["value"].between(0, 1).all()
    split = tmp_path / "r" / "artifacts" / "splits" / "digits-semisup-10-seed0.json"
    assert split.exists()  # the labelled images, shared by both initialisations
    page = (tmp_path / "b" / "digits" / "semisup.md").read_text()
    assert "Table 1" in page and "none" in page and "drl" in page


def test_config_rejects_bad_values():
    base = SemisupConfig()
    for change, message in (({"semisup_labelled_batch": 100}, "semisup_labelled_batch=100 is not allowed; valid: integers < semisup_batch_size (100)"),
                            ({"t_init": 0.0}, "t_init=0.0 is not allowed; valid: finite numbers in (0, 1)"),
                            ({"semisup_alpha": 1.0}, "semisup_alpha=1.0 is not allowed; valid: finite numbers in (0, 1)"),
                            ({"semisup_rounds": 0}, "semisup_rounds=0 is not allowed; valid: integers >= 1")):
        with pytest.raises(ValueError, match=re.escape(message)):
            dataclasses.replace(base, **change)
