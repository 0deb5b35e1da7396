"""LaplaceNet's pseudo-labelling: a k-NN graph on the classifier's codes, label
spreading solved by conjugate gradient, distribution alignment, hard labels.

No faiss: the exact k-NN is a chunked matrix product with top-k in torch (on the
codes' device, so a GPU does it when the run has one); the graph and the linear
solve are scipy's sparse matrices and conjugate gradient.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse
import scipy.sparse.linalg
import torch
from torch import Tensor

KNN_CHUNK = 4096  # query rows per matrix product: bounds memory at chunk x N similarities


def knn_graph(codes: Tensor, k: int) -> scipy.sparse.csr_matrix:
    """Symmetric cosine k-NN affinities: self excluded, negatives clipped to 0, W = max(W, W^T)."""
    n = codes.shape[0]
    k = min(k, n - 1)
    if k < 1:
        raise ValueError(f"a k-NN graph needs at least 2 points; got {n}")
    unit = torch.nn.functional.normalize(codes.float(), dim=1)
    rows, cols, vals = [], [], []
    for start in range(0, n, KNN_CHUNK):
        sims = unit[start:start + KNN_CHUNK] @ unit.T
        span = torch.arange(start, start + sims.shape[0], device=sims.device)
        sims[span - start, span] = -float("inf")  # a point is not its own neighbour
        top, index = sims.topk(k, dim=1)
        rows.append(span.repeat_interleave(k).cpu())
        cols.append(index.flatten().cpu())
        vals.append(top.flatten().clamp_min(0).cpu())  # cosine < 0: no affinity (keeps W >= 0)
    w = scipy.sparse.csr_matrix(
        (torch.cat(vals).double().numpy(), (torch.cat(rows).numpy(), torch.cat(cols).numpy())), shape=(n, n))
    w = w.maximum(w.T).tocsr()
    w.setdiag(0)
    w.eliminate_zeros()
    return w


def normalised_adjacency(w: scipy.sparse.spmatrix) -> scipy.sparse.csr_matrix:
    """D^-1/2 W D^-1/2 (an isolated point keeps a zero row)."""
    degree = np.asarray(w.sum(axis=1)).ravel()
    inv_sqrt = np.zeros_like(degree)
    inv_sqrt[degree > 0] = degree[degree > 0] ** -0.5
    d = scipy.sparse.diags(inv_sqrt)
    return (d @ w @ d).tocsr()


def spread_labels(w_norm: scipy.sparse.spmatrix, labelled: Tensor, labels: Tensor, num_classes: int,
                  alpha: float = 0.99, iterations: int = 30, tol: float = 1e-3) -> np.ndarray:
    """Solve (I - alpha W) Z = Y per class by conjugate gradient; Y is one-hot on the labelled rows.

    I - alpha W is symmetric positive definite for 0 < alpha < 1 (W's eigenvalues lie in
    [-1, 1]), which is what conjugate gradient needs.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1); got {alpha}")
    n = w_norm.shape[0]
    system = scipy.sparse.eye(n, format="csr") - alpha * w_norm
    targets = np.zeros((n, num_classes))
    targets[labelled.numpy(), labels.numpy()] = 1.0
    z = np.zeros_like(targets)
    for c in range(num_classes):
        z[:, c], _ = scipy.sparse.linalg.cg(system, targets[:, c], rtol=tol, maxiter=iterations)
    return z


def align_distribution(probs: np.ndarray, target: np.ndarray, iterations: int = 100,
                       step_clip: tuple[float, float] = (0.99, 1.01)) -> np.ndarray:
    """Nudge class columns until the hard labels' class frequencies approach ``target``.

    Each iteration multiplies column c by target_c / (current frequency of c), clipped to
    ``step_clip`` so no class is forced in one jump, then renormalises the rows.
    """
    probs = probs.copy()
    n, num_classes = probs.shape
    for _ in range(iterations):
        counts = np.bincount(probs.argmax(axis=1), minlength=num_classes) / n
        ratio = np.divide(target, counts, out=np.full(num_classes, np.inf), where=counts > 0)
        probs *= np.clip(ratio, *step_clip)
        probs /= probs.sum(axis=1, keepdims=True)
    return probs


def pseudo_labels(codes: Tensor, labelled: Tensor, labels: Tensor, num_classes: int, k: int = 50,
                  alpha: float = 0.99, cg_iterations: int = 30, cg_tol: float = 1e-3,
                  align_iterations: int = 100) -> Tensor:
    """Hard pseudo-labels for every row of ``codes``; labelled rows keep their labels."""
    w_norm = normalised_adjacency(knn_graph(codes, k))
    z = spread_labels(w_norm, labelled, labels, num_classes, alpha, cg_iterations, cg_tol)
    z = np.clip(z, 0.0, None)
    mass = z.sum(axis=1, keepdims=True)
    # A point the spreading never reached (no path to a label) gets a uniform row.
    z = np.divide(z, mass, out=np.full_like(z, 1.0 / num_classes), where=mass > 0)
    z[labelled.numpy()] = np.eye(num_classes)[labels.numpy()]
    target = np.bincount(labels.numpy(), minlength=num_classes) / len(labels)
    z = align_distribution(z, target, align_iterations)
    z[labelled.numpy()] = np.eye(num_classes)[labels.numpy()]  # alignment must not move a known label
    return torch.from_numpy(z.argmax(axis=1))
