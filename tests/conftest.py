"""Shared fixtures: a tiny, learnable image dataset, the smoke settings, the results store's databases."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import torch

from benchmarks.presets import preset_settings
from benchmarks.store import ResultsStore
from core.data import DataSplits, ImageData
from core.seeding import seed_everything
from methods.base import Budget, DataSpec, config_from_settings, create_method, get_method_class
from tests import postgres


def make_images(n: int, n_classes: int = 3, size: int = 8, channels: int = 1, seed: int = 0) -> ImageData:
    """Class k lights up the k-th horizontal band of the image, plus noise: learnable in seconds."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % n_classes
    images = torch.randint(0, 60, (n, channels, size, size), generator=g).float()
    band = size // n_classes
    for k in range(n_classes):
        images[labels == k, :, k * band:(k + 1) * band, :] += 180
    return ImageData(images.clamp(0, 255).to(torch.uint8), labels.long())


def make_splits(n_train: int = 96, n_val: int = 48, n_test: int = 48, size: int = 8,
                channels: int = 1) -> DataSplits:
    train = make_images(n_train, size=size, channels=channels, seed=1)
    scaled = train.images.float() / 255
    mean = tuple(scaled.mean(dim=(0, 2, 3)).tolist())
    std = tuple(scaled.std(dim=(0, 2, 3)).tolist())
    return DataSplits(name="toy", train=train, val=make_images(n_val, size=size, channels=channels, seed=2),
                      test=make_images(n_test, size=size, channels=channels, seed=3), num_classes=3,
                      classes=("a", "b", "c"), mean=mean, std=std)


@pytest.fixture(scope="session")
def toy_data() -> DataSplits:
    return make_splits()


def preset_method(name: str, data: DataSplits, preset: str = "smoke", **overrides):
    """A freshly initialised method (seed 0) with ``preset``'s settings for ``data``, and its budget."""
    settings = {**preset_settings(preset, data.image_shape), **overrides}
    cfg = config_from_settings(get_method_class(name).config_cls, settings)
    seed_everything(0)
    method = create_method(name, cfg, DataSpec(data.image_shape, data.mean, data.std))
    return method, config_from_settings(Budget, settings)


def smoke_method(name: str, data: DataSplits, **overrides):
    return preset_method(name, data, "smoke", **overrides)


def assert_same_weights(a: dict, b: dict) -> None:
    """Two ``Method.state_dict()``s hold bit-identical tensors, part by part."""
    for part in a:
        for name, tensor in a[part].items():
            assert torch.equal(tensor, b[part][name]), f"{part}.{name} differs"


@pytest.fixture(autouse=True)
def _no_results_db_from_the_environment(monkeypatch):
    """A BENCHMARKS_RESULTS_DB set in the shell must not send the tests' runs to that database."""
    monkeypatch.delenv("BENCHMARKS_RESULTS_DB", raising=False)


@pytest.fixture(scope="session", autouse=True)
def _runs_record_uncommitted_code() -> Iterator[None]:
    """The tests' runs count as made from uncommitted code, in a developer's checkout and in CI's clean one
    alike: a run already stored at a clean commit is skipped, so a test (or fixture) that runs the same thing
    twice would otherwise behave differently in the two. tests/test_rerun.py sets a clean commit itself."""
    from benchmarks import provenance

    head = provenance.git_commit().removesuffix("+dirty") + "+dirty"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(provenance, "git_commit", lambda: head)
        yield


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[postgres.PostgresServer]:
    """One real PostgreSQL server for the session (tests/postgres.py); skips, saying why, where it cannot run."""
    why = postgres.missing()
    if why:
        pytest.skip(why)
    server = postgres.PostgresServer()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request) -> Callable[..., str | None]:
    """Each store test once per database: ``store_url(name)`` is None for SQLite (the file under the test's
    folder ``name``) and, for PostgreSQL, the URL of a fresh database, the same one for the same name."""
    if request.param == "sqlite":
        return lambda name="res": None
    server = request.getfixturevalue("postgres_server")
    urls: dict[str, str] = {}

    def url(name: str = "res") -> str:
        if name not in urls:
            urls[name] = server.url()
        return urls[name]

    return url


@pytest.fixture
def open_store(tmp_path, store_url) -> Callable[..., ResultsStore]:
    """``open_store(name)``: the store of folder ``tmp_path / name`` in this test's database."""
    def open_(name: str = "res", read_only: bool = False) -> ResultsStore:
        return ResultsStore(tmp_path / name, read_only=read_only, url=store_url(name))

    return open_


def usage_error(args: list[str], capsys) -> str:
    """The one-line error of ``python -m benchmarks ARGS`` (exit status 2, no traceback)."""
    from benchmarks.__main__ import main

    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err
