"""Initiator and target sockets with blocking transport and timing annotation (TLM-2.0 LT style).

`InitiatorSocket.b_transport(txn, delay_ps)` forwards to the bound target's transport function,
which computes when the transaction completes *without* waiting in SimPy and returns the delay
annotated onto the initiator's local time. The initiator decides when to synchronise with the
kernel (e.g. through a `QuantumKeeper`), so a transaction costs no SimPy event of its own.
"""

from __future__ import annotations

from typing import Callable, Protocol

from .module import ElaborationError, Module
from .payload import Transaction


class TransportFn(Protocol):
    def __call__(self, txn: Transaction, delay_ps: int) -> int: ...


class TargetSocket:
    """Receives transactions; `transport(txn, delay_ps) -> delay_ps` does the work."""

    def __init__(self, owner: Module, name: str, transport: TransportFn):
        self.owner = owner
        self.name = f"{owner.name}.{name}"
        self.transport = transport
        self.initiators: list[InitiatorSocket] = []
        owner.sockets.append(self)

    @property
    def bound(self) -> bool:
        return bool(self.initiators)


class InitiatorSocket:
    """Sends transactions to exactly one target socket."""

    def __init__(self, owner: Module, name: str):
        self.owner = owner
        self.name = f"{owner.name}.{name}"
        self.target: TargetSocket | None = None
        self._transport: Callable[[Transaction, int], int] | None = None
        owner.sockets.append(self)

    @property
    def bound(self) -> bool:
        return self.target is not None

    def bind(self, target: TargetSocket) -> None:
        if self.target is not None:
            raise ElaborationError(f"socket {self.name} is already bound to {self.target.name}")
        self.target = target
        self._transport = target.transport
        target.initiators.append(self)

    def b_transport(self, txn: Transaction, delay_ps: int = 0) -> int:
        """Send `txn` with the initiator's local time offset; return the annotated offset."""
        if self._transport is None:
            raise ElaborationError(f"socket {self.name} is not bound")
        return self._transport(txn, delay_ps)
