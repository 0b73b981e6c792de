"""Scaling AKS agent pools from BatchAICluster scaleSettings (only when spec.aks names the pool)."""

from .arm import ENV_ENDPOINT, AgentPoolScaler, ScaleError, ScaleResult
from .plan import DesiredScale, desired_scale, updated_properties

__all__ = [
    "ENV_ENDPOINT",
    "AgentPoolScaler",
    "DesiredScale",
    "ScaleError",
    "ScaleResult",
    "desired_scale",
    "updated_properties",
]
