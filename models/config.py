"""Hardware configuration: attrs classes with units in field names, loadable from TOML.

`HardwareConfig.from_dict` / `load_hw` build the classes from nested tables and reject unknown
keys with the dotted key path and the known keys. Built-in configs: `common` (the
apples-to-apples budget of ../shared/design/common-config.md) and per-design paper configs
registered by the designs themselves.
"""

from __future__ import annotations

import os
import tomllib
import typing
from typing import Any

import attrs

from .checks import bounds, check_fields
from .errors import ConfigError

_pos = attrs.validators.gt(0)
_nonneg = attrs.validators.ge(0)

MAX_ARRAY_DIM = 1 << 16
"""Largest PE-array `rows`, `cols` or `lanes` (and vector `lanes`) a config may ask for."""
MAX_BUFFER_KIB = float(1 << 30)
"""Largest buffer `capacity_kib` (1 TiB)."""


@attrs.frozen
class PeArrayConfig:
    """PE array geometry and cycle model."""

    model: str = attrs.field(default="broadcast", validator=attrs.validators.in_(("broadcast", "systolic")))
    """`broadcast`: rows × cols PEs each doing a `lanes`-wide dot product per cycle (inputs
    broadcast along a row, weights along a column); `systolic`: a rows × cols systolic array
    with the SCALE-Sim-style fold model of `dataflow`."""
    rows: int = attrs.field(default=32, validator=_pos, metadata=bounds(le=MAX_ARRAY_DIM))
    cols: int = attrs.field(default=32, validator=_pos, metadata=bounds(le=MAX_ARRAY_DIM))
    lanes: int = attrs.field(default=1, validator=_pos, metadata=bounds(le=MAX_ARRAY_DIM))
    """MACs per PE per cycle (dot-product width) in the broadcast model."""
    dataflow: str = attrs.field(default="os", validator=attrs.validators.in_(("os", "ws", "is")))
    """Systolic dataflow: output, weight or input stationary (systolic model only)."""


@attrs.frozen
class BufferConfig:
    """One on-chip SRAM buffer."""

    capacity_kib: float = attrs.field(validator=_pos, metadata=bounds(le=MAX_BUFFER_KIB))
    bytes_per_cycle: int = attrs.field(default=64, validator=_pos, metadata=bounds(le=1 << 20))
    """Port width: bytes moved in or out per accelerator clock cycle."""
    double_buffer: bool = True
    """Tiles take at most half the capacity so the next tile loads while one is in use."""

    @property
    def capacity_bytes(self) -> int:
        return int(self.capacity_kib * 1024)


@attrs.frozen
class BuffersConfig:
    """The four buffers of the common budget (MHDiff's sizes: 360/132/48/132 KiB)."""

    global_buffer: BufferConfig = BufferConfig(360)
    activation: BufferConfig = BufferConfig(132)
    weight: BufferConfig = BufferConfig(48)
    output: BufferConfig = BufferConfig(132)


def _vector_kinds(table: dict) -> None:
    from workloads.schema import VECTOR_KINDS

    for kind in table:
        if kind not in VECTOR_KINDS:
            raise ConfigError(f"ops_per_element.{kind}: not a vector op kind; "
                              f"known: {', '.join(VECTOR_KINDS)}")


@attrs.frozen
class VectorUnitConfig:
    """Vector unit for nonlinear and elementwise ops."""

    lanes: int = attrs.field(default=32, validator=_pos, metadata=bounds(le=MAX_ARRAY_DIM))
    """Elements per cycle (assumption A-21: 32 elements/cycle, the output-buffer rate)."""
    ops_per_element: dict[str, float] = attrs.field(
        factory=lambda: {"groupnorm": 2.0, "layernorm": 2.0, "softmax": 3.0},
        metadata=bounds(ge=0, le=1e6), validator=lambda _i, _a, v: _vector_kinds(v),
    )
    """Passes per element by op kind (norms: statistics + normalise; softmax: max, exp-sum,
    divide); kinds not listed take one pass."""


@attrs.frozen
class MemoryConfig:
    """Which registered memory model serves DRAM traffic, with parameter overrides."""

    model: str = "lpddr4-3200-4ch"
    params: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class HardwareConfig:
    name: str = "custom"
    freq_mhz: float = attrs.field(default=500.0, validator=_pos, metadata=bounds(le=1e6))
    """Accelerator clock (PE array, buffers, vector unit), MHz."""
    node_nm: int = attrs.field(default=28, validator=_pos, metadata=bounds(le=1000))
    """Technology node the energy tables are scaled to."""
    pe_array: PeArrayConfig = PeArrayConfig()
    buffers: BuffersConfig = BuffersConfig()
    vector: VectorUnitConfig = VectorUnitConfig()
    memory: MemoryConfig = MemoryConfig()
    weight_residency: str = attrs.field(
        default="auto", validator=attrs.validators.in_(("auto", "never", "always"))
    )
    """Weights re-read from DRAM every step unless the whole model fits in the global buffer
    (`auto`; common-config rule, dataflows.md §8.2 item 9); `never` always re-reads."""
    residency: str = attrs.field(default="auto", validator=attrs.validators.in_(("auto", "never")))
    """Activation residency (A-38, parity rule 2): `auto` keeps a tensor in the global buffer from
    its producer to its last consumer while the live set fits; `never` sends every tensor through
    DRAM (the ablation)."""
    onchip_byte_cost: float = attrs.field(default=0.25, validator=attrs.validators.and_(
        attrs.validators.ge(0), attrs.validators.le(1)))
    """Assumption A-39: what the tiler charges per byte of an operand served by the on-chip
    residency store (resident activations, resident weights), relative to a DRAM byte, when it
    chooses tile sizes and loop order (the same for every design). 0.25 ~ a 360 KiB SRAM access
    against an LPDDR4 access per byte in this project's energy tables."""
    designs: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    """Per-design parameter overrides, by design name (each design validates its own)."""
    compute_budget_units: int | None = attrs.field(default=None, metadata=bounds(gt=0, le=1 << 48))
    """Silicon budget for the MAC array in bit-product units (an a-bit × b-bit multiplier costs
    a·b; int8×int8 = 64) — assumption A-35. None: the `pe_array`'s own size as int8 MACs
    (rows · cols · lanes · 64). Designs size their own PE arrays from it in the common config."""

    def budget_units(self) -> int:
        """The compute budget in bit-product units (assumption A-35)."""
        if self.compute_budget_units is not None:
            return self.compute_budget_units
        p = self.pe_array
        return p.rows * p.cols * p.lanes * 64

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "hw") -> "HardwareConfig":
        return structure(cls, data, where)

    def evolve(self, **changes) -> "HardwareConfig":
        return attrs.evolve(self, **changes)


def structure(cls: type, data: Any, where: str):
    """Build attrs class `cls` from nested dicts; errors name the dotted key and the fix."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a table, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in attrs.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}: unknown key; known keys: {', '.join(fields)}")
    check_fields(cls, data, where)
    kwargs = {}
    for name, value in data.items():
        typ = hints[name]
        if attrs.has(typ) and not isinstance(value, typ):
            if isinstance(value, dict):
                base = attrs.asdict(fields[name].default, recurse=False) if fields[name].default is not attrs.NOTHING else {}
                value = structure(typ, {**base, **value}, f"{where}.{name}")
            else:
                raise ConfigError(f"{where}.{name}: expected a table")
        kwargs[name] = value
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        msg = str(exc)
        head = msg.split(":")[0].split(".")[0]
        raise ConfigError(f"{where}.{msg}" if head in fields else f"{where}: {msg}") from None


def load_hw(spec: str | os.PathLike | None) -> HardwareConfig:
    """A built-in config by name (`common`) or a TOML file; None gives `common`."""
    if spec is None or spec == "common":
        return COMMON
    path = os.fspath(spec)
    if not path.endswith(".toml"):
        raise ConfigError(
            f"--hw {path!r}: not a known config; use 'common', 'paper' (compare only) or a .toml file"
        )
    data = read_toml(path, f"--hw {path}")
    data.setdefault("name", os.path.splitext(os.path.basename(path))[0])
    return HardwareConfig.from_dict(data)


def read_toml(path: str, what: str) -> dict[str, Any]:
    """A TOML file's table; a missing, unreadable or malformed file is a one-line ConfigError
    starting with `what`."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{what}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"{what}: is a directory; give a .toml file") from None
    except OSError as exc:
        raise ConfigError(f"{what}: cannot read ({exc.strerror or exc})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{what}: invalid TOML ({str(exc).splitlines()[0]})") from None


COMMON = HardwareConfig(name="common")
"""The common comparison budget: 500 MHz, 28 nm, 32×32 int8 MACs (broadcast array), MHDiff's
672 KiB of SRAM, LPDDR4-3200 with 4 × 16-bit channels (../shared/design/common-config.md)."""


def kib(nbytes: float) -> str:
    return f"{nbytes / 1024:.1f} KiB" if nbytes < 1 << 20 else f"{nbytes / (1 << 20):.2f} MiB"


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


__all__ = [
    "BufferConfig", "BuffersConfig", "COMMON", "HardwareConfig", "MemoryConfig", "PeArrayConfig",
    "VectorUnitConfig", "ceil_div", "kib", "load_hw", "structure",
]
