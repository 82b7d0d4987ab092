"""Learning: the button policy, losses, metrics, thresholds, training, policy files and pilots.

``agents.PolicyPilot`` and ``agents.load_policy`` are imported on first use,
so importing ``agents.session`` alone does not load torch.
"""

from __future__ import annotations

from typing import Any

_LAZY = {
    "PolicyPilot": "agents.policy_pilot",
    "load_policy": "agents.policy_files",
    "ButtonPolicy": "agents.policy",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'agents' has no attribute {name!r}")
