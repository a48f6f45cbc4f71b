"""Generic transaction-level modelling kernel on SimPy (no accelerator or diffusion knowledge)."""

from .activity import ActivityRecorder, Breakdown, write_json_atomic
from .channel import Channel
from .clock import PS_PER_NS, Clock, ns_to_ps
from .module import ElaborationError, Module, elaborate
from .payload import Command, Status, Transaction
from .quantum import QuantumKeeper
from .socket import InitiatorSocket, TargetSocket

__all__ = [
    "ActivityRecorder", "Breakdown", "Channel", "Clock", "Command", "ElaborationError",
    "InitiatorSocket", "Module", "PS_PER_NS", "QuantumKeeper", "Status", "TargetSocket",
    "Transaction", "elaborate", "ns_to_ps", "write_json_atomic",
]
