"""Activity recording: busy intervals per component, and the breakdowns derived from them.

Components record `(start_ps, end_ps)` busy intervals tagged with an integer label (designs use
one label per (step, op)). Intervals are kept in compact integer arrays, and back-to-back
intervals of the same component and label are merged on the fly, so recording stays cheap.

Each component belongs to a class, "compute" or "memory" (or "other", which is recorded but does
not count towards either). The breakdown of a time window is measured from the recorded intervals:

    compute = |union of compute intervals|,  memory = |union of memory intervals|,
    overlap = |compute ∩ memory|,            idle = window − |compute ∪ memory|,

so compute + memory − overlap + idle = window holds exactly (integer picoseconds).
"""

from __future__ import annotations

import json
import os
import tempfile
from array import array
from typing import Callable, Iterable, Sequence

import attrs
import numpy as np

CLASSES = ("compute", "memory", "other")


@attrs.frozen
class Breakdown:
    """Compute/memory/overlap/idle of one window, all in integer picoseconds."""

    total_ps: int
    compute_ps: int
    memory_ps: int
    overlap_ps: int
    idle_ps: int

    @property
    def compute_only_ps(self) -> int:
        return self.compute_ps - self.overlap_ps

    @property
    def memory_only_ps(self) -> int:
        return self.memory_ps - self.overlap_ps


def merge_intervals(starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted, disjoint union of possibly overlapping intervals (empty ones dropped)."""
    keep = ends > starts
    starts, ends = starts[keep], ends[keep]
    if starts.size == 0:
        return starts, ends
    order = np.argsort(starts, kind="stable")
    starts, ends = starts[order], np.maximum.accumulate(ends[order])
    new_run = np.empty(starts.size, dtype=bool)
    new_run[0] = True
    new_run[1:] = starts[1:] > ends[:-1]
    run_id = np.cumsum(new_run) - 1
    merged_starts = starts[new_run]
    merged_ends = np.zeros(merged_starts.size, dtype=ends.dtype)
    np.maximum.at(merged_ends, run_id, ends)
    return merged_starts, merged_ends


def coverage(starts: np.ndarray, ends: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Length of the disjoint sorted intervals lying before each point."""
    if starts.size == 0:
        return np.zeros(points.shape, dtype=np.int64)
    cum = np.concatenate(([0], np.cumsum(ends - starts)))
    j = np.searchsorted(starts, points, side="right")  # intervals starting at or before point
    last = np.maximum(j - 1, 0)
    partial = np.clip(points - starts[last], 0, ends[last] - starts[last])
    return np.where(j > 0, cum[np.maximum(j - 1, 0)] + partial, 0)


def _packed(code: str, values: np.ndarray) -> array:
    out = array(code)
    values = np.ascontiguousarray(values, dtype=np.int64 if code == "q" else np.int32)
    out.frombytes(memoryview(values).cast("B"))  # no intermediate bytes copy
    return out


class ActivityRecorder:
    """Collects busy intervals and derives breakdowns and Chrome/Perfetto traces."""

    def __init__(self):
        self.components: list[str] = []
        self.component_class: list[str] = []
        self.activities: list[str] = []
        self._activity_ids: dict[str, int] = {}
        self._start = array("q")
        self._end = array("q")
        self._comp = array("i")
        self._label = array("i")
        self._act = array("i")
        self._last: dict[int, int] = {}  # component -> index of its latest interval

    def register(self, name: str, cls: str) -> int:
        """Declare a component; returns the id to record with."""
        if cls not in CLASSES:
            raise ValueError(f"component class must be one of {CLASSES}, got {cls!r}")
        if name in self.components:
            raise ValueError(f"component {name!r} is already registered")
        self.components.append(name)
        self.component_class.append(cls)
        return len(self.components) - 1

    def activity_id(self, activity: str) -> int:
        aid = self._activity_ids.get(activity)
        if aid is None:
            aid = self._activity_ids[activity] = len(self.activities)
            self.activities.append(activity)
        return aid

    def record(self, comp: int, start_ps: int, end_ps: int, label: int = -1, activity: int = 0) -> None:
        """Record that component `comp` was busy over [start_ps, end_ps)."""
        if end_ps <= start_ps:
            return
        last = self._last.get(comp)
        if (
            last is not None
            and self._label[last] == label
            and self._act[last] == activity
            and self._start[last] <= start_ps <= self._end[last]
        ):
            if end_ps > self._end[last]:
                self._end[last] = end_ps
            return
        self._last[comp] = len(self._start)
        self._start.append(start_ps)
        self._end.append(end_ps)
        self._comp.append(comp)
        self._label.append(label)
        self._act.append(activity)

    def splice(self, t0_ps: int, t1_ps: int, copies: int,
               relabel: Callable[[np.ndarray, int], np.ndarray]) -> int:
        """Repeat the activity of the window [t0, t1) `copies` times right after t1, shifting
        everything later by copies · (t1 − t0) (the reuse of a measured period). Intervals are
        clipped to the window and split at t1; labels inside the window become relabel(labels, 0),
        those of copy k relabel(labels, k). Returns the shift in ps."""
        return self.splice_many([(t0_ps, t1_ps, copies, relabel)])

    def splice_many(self, windows: Sequence[tuple[int, int, int, Callable]]) -> int:
        """`splice` for several windows (t0, t1, copies, relabel) in increasing, disjoint time
        order, applied from the last to the first on one copy of the intervals and packed once
        (the memory a long reuse needs: about twice the result). Returns the total shift in ps."""
        a = self.arrays()
        cols = [a.pop(k) for k in ("start", "end", "comp", "label", "activity")]
        total = 0
        for t0_ps, t1_ps, copies, relabel in reversed(windows):
            width = t1_ps - t0_ps
            if copies <= 0 or width <= 0:
                continue
            shift = copies * width
            s, e, comp, lab, act = cols
            before, after = s < t1_ps, e > t1_ps
            parts = []
            # up to t1: in place; inside the window relabelled as copy 0
            ks, ke, kl = s[before], np.minimum(e[before], t1_ps), lab[before]
            kl = np.where((ke > t0_ps) & (kl >= 0), relabel(kl, 0), kl)
            parts.append((ks, ke, comp[before], kl, act[before]))
            # from t1: shifted
            parts.append((np.maximum(s[after], t1_ps) + shift, e[after] + shift, comp[after],
                          lab[after], act[after]))
            # the copies of the window
            win = before & (e > t0_ps)
            ws, we = np.maximum(s[win], t0_ps), np.minimum(e[win], t1_ps)
            wl, wc, wa = lab[win], comp[win], act[win]
            for k in range(1, copies + 1):
                parts.append((ws + k * width, we + k * width, wc,
                              np.where(wl >= 0, relabel(wl, k), wl), wa))
            del s, e, comp, lab, act, before, after, win
            cols = [np.concatenate([p[i] for p in parts]) for i in range(5)]
            del parts
            total += shift
        if total:
            self._start, self._end, self._comp, self._label, self._act = (
                _packed(code, c) for code, c in zip("qqiii", cols))
            self._last = {}
        return total

    # ---- derived views -------------------------------------------------------------------
    def arrays(self) -> dict[str, np.ndarray]:
        return {
            "start": np.frombuffer(self._start, dtype=np.int64).copy(),
            "end": np.frombuffer(self._end, dtype=np.int64).copy(),
            "comp": np.frombuffer(self._comp, dtype=np.int32).copy(),
            "label": np.frombuffer(self._label, dtype=np.int32).copy(),
            "activity": np.frombuffer(self._act, dtype=np.int32).copy(),
        }

    def end_ps(self) -> int:
        """End of the last recorded activity."""
        return max(self._end) if self._end else 0

    def _class_union(self, a: dict[str, np.ndarray], cls: str):
        ids = [i for i, c in enumerate(self.component_class) if c == cls]
        mask = np.isin(a["comp"], ids)
        return merge_intervals(a["start"][mask], a["end"][mask])

    def breakdowns(self, bounds: Sequence[int]) -> list[Breakdown]:
        """Breakdown of each window [bounds[i], bounds[i+1]); bounds must be non-decreasing."""
        b = np.asarray(bounds, dtype=np.int64)
        if b.size < 2 or np.any(np.diff(b) < 0):
            raise ValueError("bounds must hold at least two non-decreasing times")
        a = self.arrays()
        cs, ce = self._class_union(a, "compute")
        ms, me = self._class_union(a, "memory")
        us, ue = merge_intervals(np.concatenate((cs, ms)), np.concatenate((ce, me)))
        comp = np.diff(coverage(cs, ce, b))
        mem = np.diff(coverage(ms, me, b))
        union = np.diff(coverage(us, ue, b))
        width = np.diff(b)
        return [
            Breakdown(int(w), int(c), int(m), int(c + m - u), int(w - u))
            for w, c, m, u in zip(width, comp, mem, union)
        ]

    def busy_ps(self) -> dict[str, int]:
        """Busy time per component: the length of the union of its intervals."""
        a = self.arrays()
        out = {}
        for i, name in enumerate(self.components):
            mask = a["comp"] == i
            s, e = merge_intervals(a["start"][mask], a["end"][mask])
            out[name] = int((e - s).sum())
        return out

    def busy_by_label(self, n_labels: int) -> dict[str, np.ndarray]:
        """Summed interval length per component and label (shape: n_labels), in ps."""
        a = self.arrays()
        out = {}
        for i, name in enumerate(self.components):
            mask = (a["comp"] == i) & (a["label"] >= 0)
            out[name] = np.bincount(
                a["label"][mask], weights=(a["end"] - a["start"])[mask], minlength=n_labels
            ).astype(np.int64)
        return out

    def chrome_trace(self, label_names: Iterable[str] | None = None) -> dict:
        """The recorded intervals as a Chrome/Perfetto `traceEvents` object (times in µs)."""
        names = list(label_names) if label_names is not None else None
        events: list[dict] = [
            {"name": "process_name", "ph": "M", "pid": 1, "args": {"name": "difftlm"}}
        ]
        for i, comp in enumerate(self.components):
            events.append(
                {"name": "thread_name", "ph": "M", "pid": 1, "tid": i, "args": {"name": comp}}
            )
        a = self.arrays()
        for s, e, c, lab, act in zip(
            a["start"].tolist(), a["end"].tolist(), a["comp"].tolist(),
            a["label"].tolist(), a["activity"].tolist(),
        ):
            ev = {
                "name": self.activities[act] if self.activities else "busy",
                "ph": "X", "pid": 1, "tid": c, "ts": s / 1e6, "dur": (e - s) / 1e6,
            }
            if lab >= 0:
                ev["args"] = {"label": names[lab] if names else lab}
            events.append(ev)
        return {"traceEvents": events, "displayTimeUnit": "ns"}


def write_json_atomic(path: str | os.PathLike, obj) -> None:
    """Write JSON to `path` via a temporary file and rename, so no partial file is left."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the umask's mode
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
