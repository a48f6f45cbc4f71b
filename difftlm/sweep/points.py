"""The points of a sweep: every (trace, design, axis values) combination resolved to the exact
replay inputs and a config hash, and `run_point`, which replays one (in any worker process)."""

from __future__ import annotations

import hashlib
import itertools
import json
import time
from typing import Any

import attrs

from models.config import HardwareConfig, load_hw
from models.designs import create_design, get_design
from models.errors import ConfigError
from models.memory import create_memory_model, memory_model_config

from .spec import Spec, applies, split_design_key


@attrs.frozen
class Point:
    index: int
    design: str
    trace: str
    """As the spec names it: `bundled` or a path."""
    trace_path: str
    trace_id: str
    values: dict[str, Any]
    """Axis key → value, for the axes that apply to this design."""
    hw: HardwareConfig | None
    memory: str | None
    memory_params: dict[str, Any]
    design_params: dict[str, Any]
    config_hash: str
    error: str | None = None
    """Why the point's configuration cannot be built (it is recorded as failed, never run)."""
    quality: dict[str, int] | None = None
    """The spec's `[quality]` settings: the point also samples the tiny model (None: it does not)."""

    def task(self) -> dict[str, Any]:
        """What a worker needs to replay the point (picklable, no open files)."""
        return {"config_hash": self.config_hash, "design": self.design, "trace_path": self.trace_path,
                "trace_id": self.trace_id, "hw": self.hw, "memory": self.memory,
                "memory_params": self.memory_params, "design_params": self.design_params,
                "quality": self.quality}


def _digest(obj: Any) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _settings(design: str, items: dict[str, Any]) -> tuple[dict, str | None, dict, dict]:
    """Settings → (hw overrides as nested tables, memory name, memory params, design params)."""
    hw: dict[str, Any] = {}
    memory, mem_params, params = None, {}, {}
    for key, value in items.items():
        if key == "memory":
            memory = value
        elif key.startswith("memory."):
            mem_params[key[len("memory."):]] = value
        elif key.startswith("design."):
            if applies(key, design):
                params[split_design_key(key)[1]] = value
        else:
            node = hw
            *parents, leaf = key[len("hw."):].split(".")
            for p in parents:
                node = node.setdefault(p, {})
            node[leaf] = value
    return hw, memory, mem_params, params


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def resolve(design: str, base: HardwareConfig, items: dict[str, Any], trace_id: str,
            quality: dict[str, int] | None = None):
    """(hw, memory, memory params, design params, config hash) of one point; ConfigError when
    its configuration is invalid. The hash covers the fully resolved inputs (and the quality
    settings, when the point records quality)."""
    overrides, memory, mem_params, params = _settings(design, items)
    hw = HardwareConfig.from_dict(_merge(base.to_dict(), overrides)) if overrides else base
    mem_name = memory or hw.memory.model
    model = create_memory_model(mem_name, mem_params if memory is not None else {**hw.memory.params, **mem_params})
    resolved_params = attrs.asdict(create_design(design, hw, params).params)
    inputs = {"trace_id": trace_id, "design": design, "hw": hw.to_dict(),
              "memory": memory_model_config(mem_name, model), "design_params": resolved_params}
    digest = _digest(inputs if quality is None else {**inputs, "quality": quality})
    return hw, memory, mem_params, params, digest


def plan(spec: Spec) -> list[Point]:
    """Every point of `spec`, in spec order (trace, design, then the axes as a grid of zip
    groups); points whose resolved inputs coincide are kept once. When no point's configuration
    can be built the spec itself is wrong: ConfigError with the first point's reason."""
    from difftlm.api import default_trace_path
    from workloads import Trace

    base = load_hw(spec.hw)
    groups = spec.groups()
    ids: dict[str, str] = {}
    points: list[Point] = []
    seen: set[str] = set()
    for trace in spec.traces:
        for design in spec.designs:
            path = default_trace_path(get_design(design).trace_activation) if trace == "bundled" else trace
            if path not in ids:
                ids[path] = Trace(path).trace_id
            for combo in itertools.product(*(range(len(g[0].values)) for g in groups)):
                values = {a.key: a.values[i] for g, i in zip(groups, combo) for a in g if applies(a.key, design)}
                try:
                    hw, memory, mem_params, params, digest = resolve(
                        design, base, {**spec.fixed, **values}, ids[path], spec.quality)
                    error = None
                except ConfigError as exc:
                    hw, memory, mem_params, params = None, None, {}, {}
                    digest = _digest({"trace_id": ids[path], "design": design, "settings": {**spec.fixed, **values}})
                    error = str(exc).splitlines()[0]
                if digest in seen:
                    continue
                seen.add(digest)
                points.append(Point(len(points), design, trace, path, ids[path], values, hw, memory,
                                    mem_params, params, digest, error, spec.quality))
    if points and all(p.error for p in points):
        raise ConfigError(f"no point of the sweep can run: {points[0].error}")
    return points


_TRACES: dict[str, Any] = {}


def one_line(exc: BaseException) -> str:
    """The first line of an error; other than for configuration and trace errors, with its type."""
    from tlm import ElaborationError
    from workloads.errors import TraceError

    text = str(exc).splitlines()[0] if str(exc) else ""
    if text and isinstance(exc, (ConfigError, TraceError, ElaborationError)):
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def run_point(task: dict[str, Any]) -> dict[str, Any]:
    """Replay one point; never raises: a failure is returned as a one-line `error`. Each worker
    opens a trace once and checks that it is the one the sweep was planned with."""
    from models.replay import replay
    from workloads import Trace

    t0 = time.perf_counter()
    try:
        tr = _TRACES.get(task["trace_path"])
        if tr is None:
            tr = Trace(task["trace_path"])
            if tr.trace_id != task["trace_id"]:
                raise ConfigError(f"trace {task['trace_path']} on this worker has id {tr.trace_id}, the "
                                  f"sweep was planned with {task['trace_id']}; give workers the same file")
            _TRACES[task["trace_path"]] = tr
        res = replay(tr, task["design"], task["hw"], task["memory"], task["memory_params"],
                     design_params=task["design_params"])
        if task.get("quality"):
            from difftlm.api import add_quality

            q = task["quality"]
            add_quality({task["design"]: res}, {task["design"]: task["design_params"]}, q["samples"], q["seed"])
        return {"config_hash": task["config_hash"], "status": "ok", "error": None,
                "wall_s": time.perf_counter() - t0, "result": res.to_dict()}
    except Exception as exc:  # recorded with the point; the sweep goes on
        return {"config_hash": task["config_hash"], "status": "failed", "error": one_line(exc),
                "wall_s": time.perf_counter() - t0, "result": None}
