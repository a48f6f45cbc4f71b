"""Module hierarchy and elaboration (the `sc_module` idea).

A `Module` has a dotted hierarchical name, children and sockets. `elaborate(top)` walks the tree
before time 0 and fails with the name of the first socket that is not bound.
"""

from __future__ import annotations

from typing import Iterator


class ElaborationError(RuntimeError):
    """The module tree is not ready to simulate (e.g. an unbound socket)."""


class Module:
    """A named hardware block. Children register themselves with their parent."""

    def __init__(self, name: str, parent: "Module | None" = None):
        if not name or "." in name:
            raise ElaborationError(f"module name {name!r} must be non-empty and contain no '.'")
        self.basename = name
        self.parent = parent
        self.children: dict[str, Module] = {}
        self.sockets: list = []
        if parent is not None:
            if name in parent.children:
                raise ElaborationError(f"{parent.name} already has a child named {name!r}")
            parent.children[name] = self

    @property
    def name(self) -> str:
        """Dotted hierarchical name, e.g. `acc.pe_array`."""
        return self.basename if self.parent is None else f"{self.parent.name}.{self.basename}"

    def walk(self) -> Iterator["Module"]:
        """This module and all descendants, depth first, in creation order."""
        yield self
        for child in self.children.values():
            yield from child.walk()

    def end_of_elaboration(self) -> None:
        """Hook called once by `elaborate` after all sockets were checked."""

    def report(self) -> dict:
        """Result hook called once after the simulation: what this module measured, as a dict
        whose keys name their units (merged into the run's summary by the caller). An empty
        dict (the default) reports nothing."""
        return {}


def elaborate(top: Module) -> None:
    """Check every socket in the tree is bound, then run `end_of_elaboration` hooks."""
    modules = list(top.walk())
    for module in modules:
        for socket in module.sockets:
            if not socket.bound:
                raise ElaborationError(
                    f"socket {socket.name} is not bound; bind it before the simulation starts"
                )
    for module in modules:
        module.end_of_elaboration()
