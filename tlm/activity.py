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
_FOREVER = 1 << 62  # the end of the last segment of a spliced timeline


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

    def __init__(self, virtual: bool = True):
        self.virtual = virtual
        """Keep splices as segment descriptions (see `splice_many`)."""
        self._segments = None
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
        split at t0 and t1; labels inside the window become relabel(labels, 0), those of copy k
        relabel(labels, k). Returns the shift in ps."""
        return self.splice_many([(t0_ps, t1_ps, copies, relabel)])

    def splice_many(self, windows: Sequence[tuple[int, int, int, Callable]]) -> int:
        """`splice` for several windows (t0, t1, copies, relabel) in increasing, disjoint time
        order. The timeline becomes a sequence of segments of the recorded one: the time up to
        the first window, the window copies + 1 times, the time up to the next window, ... and
        the rest. With `virtual` (the default) the segments are kept as a description, and every
        derived view is computed from the recorded intervals and the segments, so a long reuse
        costs no memory; `materialized()` is the twin holding every copied interval. Recording
        ends with a splice. Returns the total shift in ps."""
        if self._segments is not None:
            raise RuntimeError("the timeline was already spliced")
        vs, ss, se, fn = [], [], [], []
        cur = shift = 0
        for t0_ps, t1_ps, copies, relabel in windows:
            width = t1_ps - t0_ps
            if copies <= 0 or width <= 0:
                continue
            if t0_ps < cur:
                raise ValueError("splice windows must be disjoint and in increasing time order")
            vs.append(cur + shift), ss.append(cur), se.append(t0_ps), fn.append(None)
            for k in range(copies + 1):
                vs.append(t0_ps + shift + k * width), ss.append(t0_ps), se.append(t1_ps)
                fn.append((relabel, k))
            shift += copies * width
            cur = t1_ps
        if not shift:
            return 0
        vs.append(cur + shift), ss.append(cur), se.append(_FOREVER), fn.append(None)
        self._segments = (np.array(vs, np.int64), np.array(ss, np.int64), np.array(se, np.int64), fn)
        self._last = {}
        if not self.virtual:
            self._start, self._end, self._comp, self._label, self._act = (
                _packed(code, c) for code, c in zip("qqiii", self._spliced_columns()))
            self._segments = None
        return shift

    def materialized(self) -> "ActivityRecorder":
        """A recorder holding this one's timeline interval by interval (the twin of a virtual
        splice: every derived view equals this one's)."""
        twin = ActivityRecorder(virtual=False)
        twin.components, twin.component_class = list(self.components), list(self.component_class)
        twin.activities, twin._activity_ids = list(self.activities), dict(self._activity_ids)
        twin._start, twin._end, twin._comp, twin._label, twin._act = (
            _packed(code, c) for code, c in zip("qqiii", self._spliced_columns()))
        return twin

    def _spliced_columns(self) -> list[np.ndarray]:
        """(start, end, comp, label, activity) of the spliced timeline: each segment's intervals
        clipped to it and moved to its place, labels of copied windows relabelled."""
        s, e, comp, lab, act = self._columns()
        if self._segments is None:
            return [x.copy() for x in (s, e, comp, lab, act)]
        parts = []
        for v, a, b, f in zip(*self._segments):
            m = (s < b) & (e > a)
            cs, ce = np.maximum(s[m], a), np.minimum(e[m], b)
            cl = lab[m]
            if f is not None:
                cl = np.where(cl >= 0, f[0](cl, f[1]), cl)
            parts.append((cs - a + v, ce - a + v, comp[m], cl, act[m]))
        return [np.concatenate([p[i] for p in parts]).astype(x.dtype)
                for i, x in enumerate((s, e, comp, lab, act))]

    # ---- derived views -------------------------------------------------------------------
    def _columns(self) -> tuple[np.ndarray, ...]:
        """The recorded intervals as read-only numpy views (no copy)."""
        return tuple(np.frombuffer(arr, dtype=np.int64 if arr.typecode == "q" else np.int32)
                     for arr in (self._start, self._end, self._comp, self._label, self._act))

    def arrays(self) -> dict[str, np.ndarray]:
        """The timeline's intervals (copies; a spliced timeline's segments laid out)."""
        return dict(zip(("start", "end", "comp", "label", "activity"), self._spliced_columns()))

    def end_ps(self) -> int:
        """End of the last recorded activity (on the spliced timeline)."""
        if not self._end:
            return 0
        s, e = self._columns()[:2]
        if self._segments is None:
            return int(e.max())
        for v, a, b, _ in reversed(list(zip(*self._segments))):  # the last segment with activity
            m = (s < b) & (e > a)
            if m.any():
                return int(min(int(e[m].max()), int(b)) - a + v)
        return 0

    def _virtual_coverage(self, starts: np.ndarray, ends: np.ndarray, points) -> np.ndarray:
        """`coverage` of recorded disjoint intervals at points of the spliced timeline."""
        points = np.asarray(points, dtype=np.int64)
        if self._segments is None:
            return coverage(starts, ends, points)
        vs, ss, se, _ = self._segments
        seg = coverage(starts, ends, np.concatenate((ss, se)))
        inside = seg[len(ss):] - seg[:len(ss)]
        prefix = np.concatenate(([0], np.cumsum(inside)))
        j = np.maximum(np.searchsorted(vs, points, side="right") - 1, 0)
        src = np.minimum(ss[j] + (points - vs[j]), se[j])
        return prefix[j] + coverage(starts, ends, src) - seg[j]

    def _class_union(self, cols, cls: str):
        ids = [i for i, c in enumerate(self.component_class) if c == cls]
        mask = np.isin(cols[2], ids)
        return merge_intervals(cols[0][mask], cols[1][mask])

    def breakdowns(self, bounds: Sequence[int]) -> list[Breakdown]:
        """Breakdown of each window [bounds[i], bounds[i+1]); bounds must be non-decreasing."""
        b = np.asarray(bounds, dtype=np.int64)
        if b.size < 2 or np.any(np.diff(b) < 0):
            raise ValueError("bounds must hold at least two non-decreasing times")
        cols = self._columns()
        cs, ce = self._class_union(cols, "compute")
        ms, me = self._class_union(cols, "memory")
        del cols
        us, ue = merge_intervals(np.concatenate((cs, ms)), np.concatenate((ce, me)))
        comp = np.diff(self._virtual_coverage(cs, ce, b))
        mem = np.diff(self._virtual_coverage(ms, me, b))
        union = np.diff(self._virtual_coverage(us, ue, b))
        width = np.diff(b)
        return [
            Breakdown(int(w), int(c), int(m), int(c + m - u), int(w - u))
            for w, c, m, u in zip(width, comp, mem, union)
        ]

    def busy_ps(self) -> dict[str, int]:
        """Busy time per component: the length of the union of its intervals."""
        s, e, comp = self._columns()[:3]
        far = np.array([_FOREVER], np.int64)
        out = {}
        for i, name in enumerate(self.components):
            mask = comp == i
            ms, me = merge_intervals(s[mask], e[mask])
            out[name] = int(self._virtual_coverage(ms, me, far)[0]) if ms.size else 0
        return out

    def busy_by_label(self, n_labels: int) -> dict[str, np.ndarray]:
        """Summed interval length per component and label (shape: n_labels), in ps."""
        s, e, comp, lab, _ = self._columns()
        n_comp = len(self.components)
        keep = lab >= 0
        s, e, comp, lab = s[keep], e[keep], comp[keep], lab[keep]
        size = n_comp * n_labels
        total = np.bincount(comp.astype(np.int64) * n_labels + lab, weights=e - s,
                            minlength=size)
        windows: dict[tuple[int, int], list] = {}
        for _, a, b, f in zip(*self._segments) if self._segments is not None else ():
            if f is not None:
                windows.setdefault((int(a), int(b)), []).append(f)
        for (a, b), fs in windows.items():  # a copied window: its own part out, its copies in
            m = (s < b) & (e > a)
            length = np.minimum(e[m], b) - np.maximum(s[m], a)
            key = comp[m].astype(np.int64) * n_labels + lab[m]
            uk, inv = np.unique(key, return_inverse=True)
            part = np.bincount(inv, weights=length, minlength=uk.size)
            uc, ul = np.divmod(uk, n_labels)
            total -= np.bincount(uk, weights=part, minlength=size)
            for relabel, k in fs:
                total += np.bincount(uc * n_labels + relabel(ul, k), weights=part, minlength=size)
        total = np.rint(total).astype(np.int64).reshape(n_comp, n_labels)
        return {name: total[i] for i, name in enumerate(self.components)}

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
