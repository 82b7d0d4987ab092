"""A button loss as the ``loss_calculator`` of imitation's ``bc.BC`` (imitation 1.0.1).

``bc.BC``'s stock loss is the summed Bernoulli negative log-likelihood, which
is unweighted BCE. Assigning ``ButtonLossCalculator(loss)`` to
``bc_trainer.loss_calculator`` trains the same policy with a weighted loss
inside imitation's own loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from imitation.algorithms.bc import BCTrainingMetrics
from imitation.data import types
from imitation.util import util

from agents.losses import ButtonLoss
from agents.policy import ButtonPolicy


@dataclass
class ButtonLossCalculator:
    """Callable ``(policy, obs, acts) -> BCTrainingMetrics`` that optimises ``loss`` on the policy's logits."""

    loss: ButtonLoss

    def __call__(self, policy: ButtonPolicy, obs, acts) -> BCTrainingMetrics:
        if isinstance(obs, types.DictObs):
            obs = obs.unwrap()
        tensor_obs = types.map_maybe_dict(util.safe_to_tensor, obs)
        tensor_obs = {key: value.to(policy.device) for key, value in tensor_obs.items()}
        targets = util.safe_to_tensor(acts).to(policy.device).float()
        logits = policy.button_logits(tensor_obs)
        terms = self.loss.to(policy.device)(logits, targets)
        zero = torch.zeros((), device=logits.device)
        with torch.no_grad():
            probabilities = torch.sigmoid(logits)
            prob_true_act = torch.where(targets > 0.5, probabilities, 1 - probabilities).prod(dim=1).mean()
        return BCTrainingMetrics(
            neglogp=terms.bce * targets.shape[1], entropy=None, ent_loss=zero, prob_true_act=prob_true_act,
            l2_norm=zero, l2_loss=zero, loss=terms.loss,
        )
