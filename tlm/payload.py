"""The generic payload: one coarse transaction (a tile or DMA burst, never a single beat)."""

from __future__ import annotations

import enum
from typing import Any

import attrs


class Command(enum.Enum):
    READ = "read"
    WRITE = "write"


class Status(enum.Enum):
    INCOMPLETE = "incomplete"
    OK = "ok"
    ADDRESS_ERROR = "address_error"


@attrs.define(slots=True)
class Transaction:
    """A read or write of `nbytes` at `address`.

    `kind` names what the bytes are (the kernel does not interpret it: designs use tensor kinds
    such as "weight" or "act"); `op_id`/`step` tag it for per-op and per-step accounting.
    Timestamps are integer ps: `issued_ps` when the initiator sent it, `accepted_ps` when the
    target took it, `first_data_ps` when data started moving, `done_ps` when it completed.
    `segments`, when set, makes it a scatter-gather transaction: (addresses, lengths) arrays of
    the runs it moves, all issued together; `address` is then the first run's and `nbytes` the
    total. A target without batched timing for them times each run as a transaction of its own.
    """

    command: Command
    address: int
    nbytes: int
    kind: str = ""
    op_id: int = -1
    step: int = -1
    status: Status = Status.INCOMPLETE
    issued_ps: int = -1
    accepted_ps: int = -1
    first_data_ps: int = -1
    done_ps: int = -1
    extensions: dict[str, Any] = attrs.field(factory=dict)
    segments: Any = None

    @property
    def is_write(self) -> bool:
        return self.command is Command.WRITE
