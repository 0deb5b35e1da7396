"""The datasets: in-memory uint8 tensors with fixed train / val / test splits.

Every dataset loads into a :class:`core.data.DataSplits`: ``uint8`` images ``(N, C, H, W)``,
``int64`` labels, the official test split, and a validation split carved from the
official train split once and for all (stratified, ``random_state=0``, independent
of any run seed, so every method and seed shares it). ``mean`` / ``std`` are the
per-channel statistics of the remaining train images, scaled to [0, 1].

Registered datasets (``available_datasets()``), loaded with
``load_dataset(name, root="data", download=False, val_fraction=None)``:

``digits`` (default, embedded)
    scikit-learn's bundled 8x8 digits, values 0..16 scaled to 0..255. No official
    test split: a fixed stratified 25 % is held out (``random_state=0``).
    Validation fraction 0.2.
``mnist``
    ``torchvision.datasets.MNIST``: ``ROOT/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte``.
``cifar10`` / ``cifar100``
    ``torchvision.datasets.CIFAR10`` / ``CIFAR100``: ``ROOT/cifar-10-batches-py/`` and
    ``ROOT/cifar-100-python/`` (the official pickles, md5-checked by torchvision).
    For cifar10 only, when none of the pickles is there but
    ``ROOT/cifar10-jpeg/{train,test}/<class>/*.jpg`` is (the offline JPEG copy), that
    folder layout is read instead, with the standard CIFAR-10 class order.
``miniimagenet``
    The 100-class Mini-ImageNet layout LaplaceNet uses, 84x84 RGB images:
    ``ROOT/miniimagenet/train/<class>/*.jpg`` and ``ROOT/miniimagenet/test/<class>/*.jpg``
    (any extension ``folder`` reads). It cannot be downloaded automatically.
``folder:PATH``
    Any class-per-folder set: ``PATH/train/<class>/*`` and ``PATH/test/<class>/*``
    (the files torchvision's ``ImageFolder`` reads, not recursive; a relative PATH is taken from the working
    directory, and the canonical name is ``folder:/absolute/path``). Classes are the sorted folder names of
    ``train``; ``test`` must have the same class set. All images must share one
    height and width; if every image is grayscale (PIL mode ``L``) the set has one
    channel, otherwise every image is converted to RGB.

Folder-based sets cache their decoded tensors in ``<folder>/.benchmarks-cache-<hash>.pt``
(the hash covers the relative file list, sizes and mtimes); the cache is written
atomically and skipped silently when the folder is read-only.

One module per dataset or family: ``digits``, ``mnist``, ``cifar`` (cifar10, cifar100),
``miniimagenet``, ``folder`` (the class-per-folder reader and its pixel cache); ``base``
holds the registry and ``load_dataset``. A new dataset is one new module here with a
function ``(root: Path, download: bool) -> RawDataset`` registered by
``@register_dataset("name")``: the registry imports every module of this package on its
first look-up, so nothing else lists it.
"""

from datasets.base import (
    DATASETS,
    available_datasets,
    dataset_module,
    load_dataset,
    register_dataset,
)

__all__ = ["DATASETS", "available_datasets", "dataset_module", "load_dataset", "register_dataset"]
