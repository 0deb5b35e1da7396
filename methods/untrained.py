"""``none``: no pretraining. The shared encoder at its random initialisation.

Two uses: the lower bound every representation should beat (a probe on random
features), and LaplaceNet's own baseline in the ``semisup`` protocol, which
trains its classifier from scratch. The encoder has no time path, as
LaplaceNet's WRN-28-2 has none.
"""

from __future__ import annotations

from typing import Any, ClassVar

from torch import Tensor, nn

from core.data import ImageData
from methods.base import Budget, History, Method, register_method
from methods.nets.encoders import create_encoder


@register_method
class NoPretraining(Method):
    name = "none"
    time_conditioned = False
    pretrains: ClassVar[bool] = False

    def build(self) -> dict[str, nn.Module]:
        cfg = self.cfg
        encoder = create_encoder(cfg.encoder, self.spec.image_shape[0], cfg.latent_dim, cfg.encoder_width,
                                 time_conditioned=False)
        return {"encoder": encoder}

    @classmethod
    def search_space(cls, trial: Any) -> dict[str, Any]:
        return {}  # nothing is trained, nothing to tune

    def fit(self, train: ImageData, budget: Budget, progress: bool = True, on_step: Any = None,
            **training: Any) -> History:
        self.modules.eval()
        return History()  # nothing learned: steps = 0, no losses

    def codes(self, encoder: nn.Module, x: Tensor, t: Tensor) -> Tensor:
        return encoder(x)
