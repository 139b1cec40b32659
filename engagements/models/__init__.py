from .clients import ClientAccount, Department, Stakeholder
from .portal import PortalLink

__all__ = ["ClientAccount", "Department", "PortalLink", "Stakeholder"]
