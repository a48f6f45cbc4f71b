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
_SLICE = 1 << 18  # intervals of the busiest component per time slice of a union


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
    if not keep.all():
        starts, ends = starts[keep], ends[keep]
    del keep
    if starts.size == 0:
        return starts.copy(), ends.copy()
    if np.any(starts[1:] < starts[:-1]):  # recorded out of order: sort (else skip the copy)
        order = np.argsort(starts, kind="stable")
        starts, ends = starts[order], ends[order]
        del order
    ends = np.maximum.accumulate(ends)
    last = np.flatnonzero(starts[1:] > ends[:-1])  # the last interval of each run but the final
    # a run ends where the next interval starts after it; its end is the running maximum there
    return (np.concatenate((starts[:1], starts[last + 1])),
            np.concatenate((ends[last], ends[-1:])))


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
        self._union_cache = None
        self.components: list[str] = []
        self.component_class: list[str] = []
        self.activities: list[str] = []
        self._activity_ids: dict[str, int] = {}
        self._parts: list[tuple[array, array, array, array]] = []
        """Per component, its intervals: start and end (ps), label and activity, in record order."""

    def register(self, name: str, cls: str) -> int:
        """Declare a component; returns the id to record with."""
        if cls not in CLASSES:
            raise ValueError(f"component class must be one of {CLASSES}, got {cls!r}")
        if name in self.components:
            raise ValueError(f"component {name!r} is already registered")
        self.components.append(name)
        self.component_class.append(cls)
        self._parts.append((array("q"), array("q"), array("i"), array("i")))
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
        st, en, lab, act = self._parts[comp]
        if st and lab[-1] == label and act[-1] == activity and st[-1] <= start_ps <= en[-1]:
            if end_ps > en[-1]:
                en[-1] = end_ps
            return
        st.append(start_ps)
        en.append(end_ps)
        lab.append(label)
        act.append(activity)

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
        self._union_cache = None
        if not self.virtual:
            cols = self._spliced_columns()
            self._segments = None
            self._load(cols)
        return shift

    def materialized(self) -> "ActivityRecorder":
        """A recorder holding this one's timeline interval by interval (the twin of a virtual
        splice: every derived view equals this one's)."""
        twin = ActivityRecorder(virtual=False)
        twin.components, twin.component_class = list(self.components), list(self.component_class)
        twin.activities, twin._activity_ids = list(self.activities), dict(self._activity_ids)
        twin._load(self._spliced_columns())
        return twin

    def _load(self, cols: Sequence[np.ndarray]) -> None:
        """Replace the intervals by (start, end, comp, label, activity) columns."""
        s, e, comp, lab, act = cols
        self._parts = []
        for i in range(len(self.components)):
            m = comp == i
            self._parts.append(tuple(_packed(code, c[m]) for code, c in zip("qqii", (s, e, lab, act))))

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
    def _part(self, comp: int) -> tuple[np.ndarray, ...]:
        """Component `comp`'s recorded (start, end, label, activity) as numpy views (no copy)."""
        return tuple(np.frombuffer(a, dtype=np.int64 if a.typecode == "q" else np.int32)
                     for a in self._parts[comp])

    def _columns(self) -> tuple[np.ndarray, ...]:
        """Every recorded interval, component by component: (start, end, comp, label, activity)."""
        parts = [self._part(i) for i in range(len(self._parts))]
        if not parts:
            return tuple(np.zeros(0, np.int64 if k < 2 else np.int32) for k in range(5))
        comp = np.concatenate([np.full(len(p[0]), i, np.int32) for i, p in enumerate(parts)])
        s, e, lab, act = (np.concatenate([p[k] for p in parts]) for k in range(4))
        return s, e, comp, lab, act

    def arrays(self) -> dict[str, np.ndarray]:
        """The timeline's intervals (copies; a spliced timeline's segments laid out)."""
        return dict(zip(("start", "end", "comp", "label", "activity"), self._spliced_columns()))

    def end_ps(self) -> int:
        """End of the last recorded activity (on the spliced timeline)."""
        best = 0
        for i in range(len(self._parts)):
            s, e = self._part(i)[:2]
            if not e.size:
                continue
            if self._segments is None:
                best = max(best, int(e.max()))
                continue
            for v, a, b, _ in reversed(list(zip(*self._segments))):  # its last segment with activity
                m = (s < b) & (e > a)
                if m.any():
                    best = max(best, int(min(int(e[m].max()), int(b)) - a + v))
                    break
        return best

    def _virtual_coverage(self, cov: Callable[[np.ndarray], np.ndarray], points) -> np.ndarray:
        """Coverage at points of the spliced timeline, from `cov`: the coverage of some recorded
        intervals at recorded-timeline points."""
        points = np.asarray(points, dtype=np.int64)
        if self._segments is None:
            return cov(points)
        vs, ss, se, _ = self._segments
        j = np.maximum(np.searchsorted(vs, points, side="right") - 1, 0)
        src = np.minimum(ss[j] + (points - vs[j]), se[j])
        n = len(ss)
        c = cov(np.concatenate((ss, se, src)))
        at_start = c[:n]
        prefix = np.concatenate(([0], np.cumsum(c[n:2 * n] - at_start)))
        return prefix[j] + c[2 * n:] - at_start[j]

    def _unions(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Each component's recorded busy intervals merged (sorted, disjoint), cached until the
        next recording or splice."""
        key = tuple(len(p[0]) for p in self._parts)
        if self._union_cache is None or self._union_cache[0] != key:
            out = []
            for i in range(len(self._parts)):
                s, e = self._part(i)[:2]
                out.append(merge_intervals(s, e))
            self._union_cache = (key, out)
        return self._union_cache[1]

    def _union_coverage(self, comps: set[int], points: np.ndarray) -> np.ndarray:
        """Coverage of the union of components `comps`' intervals at recorded-timeline points,
        merged one time slice of about `_SLICE` intervals at a time (the union of them all is
        never built: its temporaries would be several times the timeline)."""
        unions = [u for i, u in enumerate(self._unions()) if i in comps and u[0].size]
        out = np.zeros(len(points), np.int64)
        if not unions:
            return out
        order = np.argsort(points, kind="stable")
        sp = points[order]
        edges = max(unions, key=lambda u: u[0].size)[0][_SLICE::_SLICE].tolist() + [_FOREVER]
        got = np.empty(len(sp), np.int64)
        base, lo = 0, -_FOREVER
        for hi in edges:
            ps, pe = [], []
            for us, ue in unions:  # each union's intervals meeting [lo, hi), clipped to it
                i0, i1 = int(np.searchsorted(ue, lo, "right")), int(np.searchsorted(us, hi, "left"))
                if i1 > i0:
                    cs, ce = us[i0:i1].copy(), ue[i0:i1].copy()
                    cs[0], ce[-1] = max(cs[0], lo), min(ce[-1], hi)
                    ps.append(cs)
                    pe.append(ce)
            ms, me = merge_intervals(np.concatenate(ps), np.concatenate(pe)) if ps else (sp[:0], sp[:0])
            j0, j1 = np.searchsorted(sp, lo, "left"), np.searchsorted(sp, hi, "left")
            got[j0:j1] = base + coverage(ms, me, sp[j0:j1])
            base += int((me - ms).sum())
            lo = hi
        out[order] = got
        return out

    def breakdowns(self, bounds: Sequence[int]) -> list[Breakdown]:
        """Breakdown of each window [bounds[i], bounds[i+1]); bounds must be non-decreasing."""
        b = np.asarray(bounds, dtype=np.int64)
        if b.size < 2 or np.any(np.diff(b) < 0):
            raise ValueError("bounds must hold at least two non-decreasing times")
        cls = {c: {i for i, k in enumerate(self.component_class) if k == c} for c in CLASSES}

        def cov(comps: set[int]) -> np.ndarray:
            return np.diff(self._virtual_coverage(lambda p: self._union_coverage(comps, p), b))

        comp, mem = cov(cls["compute"]), cov(cls["memory"])
        union = cov(cls["compute"] | cls["memory"])
        width = np.diff(b)
        return [
            Breakdown(int(w), int(c), int(m), int(c + m - u), int(w - u))
            for w, c, m, u in zip(width, comp, mem, union)
        ]

    def busy_ps(self) -> dict[str, int]:
        """Busy time per component: the length of the union of its intervals."""
        far = np.array([_FOREVER], np.int64)
        return {name: int(self._virtual_coverage(lambda p, u=u: coverage(*u, p), far)[0])
                for name, u in zip(self.components, self._unions())}

    def busy_by_label(self, n_labels: int) -> dict[str, np.ndarray]:
        """Summed interval length per component and label (shape: n_labels), in ps."""
        windows: dict[tuple[int, int], list] = {}
        for _, a, b, f in zip(*self._segments) if self._segments is not None else ():
            if f is not None:
                windows.setdefault((int(a), int(b)), []).append(f)
        out = {}
        for i, name in enumerate(self.components):
            cs, ce, cl = self._part(i)[:3]
            m = cl >= 0
            if not m.all():
                cs, ce, cl = cs[m], ce[m], cl[m]
            del m
            total = np.bincount(cl, weights=ce - cs, minlength=n_labels)
            for (a, b), fs in windows.items():  # a copied window: its own part out, copies in
                m = (cs < b) & (ce > a)
                length = np.minimum(ce[m], b) - np.maximum(cs[m], a)
                ul, inv = np.unique(cl[m].astype(np.int64), return_inverse=True)
                part = np.bincount(inv, weights=length, minlength=ul.size)
                total[ul] -= part
                for relabel, k in fs:
                    total += np.bincount(relabel(ul, k), weights=part, minlength=n_labels)
            out[name] = np.rint(total).astype(np.int64)
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
