"""The public Python API, mirroring the CLI: `replay(...)`, `compare(...)`, `load_trace(...)`."""

from __future__ import annotations

import os
from typing import Any, Iterable

from models.config import COMMON, HardwareConfig, load_hw
from models.designs import available_designs, get_design
from models.errors import ConfigError
from models.replay import replay as _replay
from models.result import Result
from workloads import Trace
from workloads.errors import TraceError


def default_trace_path(activation: str = "silu", model: str = "tiny") -> str:
    """Path of the bundled trace of `model` ("tiny" or "small") with `activation` ("silu"/"relu")."""
    try:
        from workloads.bundled import bundled_trace
    except ImportError:
        raise TraceError("no bundled trace is installed; pass --trace PATH") from None
    return bundled_trace(f"{model}-{activation}")


def load_trace(path: str | os.PathLike | None = None, activation: str = "silu", model: str = "tiny") -> Trace:
    """`path`, or with None the bundled trace of `model` and `activation`."""
    return Trace(path if path is not None else default_trace_path(activation, model))


def bundled_model(trace) -> str | None:
    """The bundled model a `--trace` value names ("tiny", "small"), or None for a path or trace."""
    from workloads.bundled import BUNDLED_MODELS

    return trace if isinstance(trace, str) and trace in BUNDLED_MODELS and not os.path.exists(trace) else None


def _hw(hw: HardwareConfig | str | None) -> HardwareConfig:
    return hw if isinstance(hw, HardwareConfig) else load_hw(hw)


def trace_activation(trace: Trace) -> str | None:
    """The activation function of the traced model, when its manifest records one."""
    cfg = trace.manifest.get("model_config") or {}
    act = cfg.get("act") or cfg.get("activation")
    return str(act).lower() if act else None


def replay(trace: str | os.PathLike | Trace | None = None, design: str = "dense",
           hw: HardwareConfig | str | None = None, memory: str | None = None,
           memory_params: dict[str, Any] | None = None, **kwargs) -> Result:
    """Replay a trace (default: the bundled tiny one matching the design's activation; "small"
    names the small model's twins) on a design.
    `hw="paper"` uses the design's own paper configuration. Keyword arguments go to
    `models.replay.replay` (`design_params`, `quantum_ps`, `chrome_trace`, `progress`)."""
    cls = get_design(design)
    model = bundled_model(trace)
    if model is not None:
        trace = None
    twin = trace is None and cls.trace_activation != "silu"
    if trace is None:
        trace = load_trace(activation=cls.trace_activation, model=model or "tiny")
    resolved = cls.paper_hw() if hw == "paper" else _hw(hw)
    res = _replay(trace, design, resolved, memory, memory_params, **kwargs)
    if twin:
        res.notes.append(f"replayed on the bundled {cls.trace_activation} twin ({trace.manifest['model']}) "
                         f"because the design assumes a {cls.trace_activation} model")
    return res


class Comparison(dict):
    """Design name → `Result`, in run order, with table helpers. `hw_mode` is "common",
    "paper" or the config name; `trace_choice` says which trace each design replayed and why."""

    hw_mode: str = "common"
    trace_choice: dict[str, str]

    def __init__(self, *args, hw_mode: str = "common", trace_choice: dict[str, str] | None = None):
        super().__init__(*args)
        self.hw_mode = hw_mode
        self.trace_choice = dict(trace_choice or {})

    @property
    def comparable(self) -> bool:
        """False when designs ran in different hardware configs (`--hw paper`)."""
        return self.hw_mode != "paper"

    def speedups(self, baseline: str = "dense") -> dict[str, float]:
        if baseline not in self:
            return {}
        base = self[baseline].summary["total_ns"]
        return {n: base / r.summary["total_ns"] if r.summary["total_ns"] else float("nan")
                for n, r in self.items()}

    def rows(self, table: str = "summary") -> list[dict[str, Any]]:
        """`summary` (one row per design), `per_op` or `per_step` as plain rows."""
        from .results_io import summary_rows, table_rows

        return summary_rows(self) if table == "summary" else table_rows(self, table)

    def to_pandas(self, table: str = "summary"):
        """A table as a pandas DataFrame (needs pandas)."""
        import pandas as pd

        return pd.DataFrame(self.rows(table))

    def meta(self) -> dict[str, Any]:
        return {"hw_mode": self.hw_mode, "comparable_across_designs": self.comparable,
                "trace_choice": self.trace_choice}

    def save(self, out_dir: str | os.PathLike, figures: bool = True,
             timeline_design: str | None = None, formats=("png", "svg")) -> list[str]:
        """Write results.json, CSV/Parquet tables and (by default) the figures to `out_dir`, as
        one set: everything goes into a temporary directory beside `out_dir` that replaces it in
        one rename once complete (`results_io.result_set`); an interrupted or failed save leaves
        the previous set untouched."""
        from plots import write_all

        from .results_io import result_set, save_results

        out = os.fspath(out_dir)
        with result_set(out) as tmp:
            if not figures:
                written = save_results(self, tmp, self.meta())
            elif (os.cpu_count() or 1) < 2:
                written = save_results(self, tmp, self.meta()) + write_all(self, tmp, formats, timeline_design)
            else:
                written = self._save_forked(tmp, formats, timeline_design)
        return [os.path.join(out, os.path.relpath(p, tmp)) for p in written]

    def _save_forked(self, tmp: str, formats, timeline_design) -> list[str]:
        """Draw the figures in a forked child (it shares these results without copying them)
        while this process writes the tables. The child dies with this process (PDEATHSIG) and
        is killed and reaped on any error, SIGINT or SIGTERM here (`result_set` turns SIGTERM
        into SystemExit while a set is written)."""
        import multiprocessing as mp

        from .results_io import save_results

        ctx = mp.get_context("fork")
        recv, send = ctx.Pipe(duplex=False)
        child = ctx.Process(target=_figures_child,
                            args=(send, self, tmp, formats, timeline_design, os.getpid()))
        try:
            child.start()
            send.close()
            written = save_results(self, tmp, self.meta())
            try:
                status, payload = recv.recv()
            except EOFError:
                status, payload = "error", RuntimeError(
                    f"the figure process exited with code {child.exitcode} before finishing")
            child.join()
        finally:
            if child.is_alive():
                child.kill()
            if child.pid is not None:
                child.join()
            recv.close()
        if status != "ok":
            raise payload
        return written + payload


def _die_with_parent(parent_pid: int) -> None:
    """Linux: deliver SIGKILL to this process when its parent dies (a kill -9 of the parent)."""
    try:
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


def _figures_child(send, comparison: "Comparison", out: str, formats, timeline_design,
                   parent_pid: int | None = None) -> None:
    import signal

    from plots import write_all

    if parent_pid is not None:
        _die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides; it kills us on interrupt
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        send.send(("ok", write_all(comparison, out, formats, timeline_design)))
    except Exception as exc:  # re-raised by the parent
        try:
            send.send(("error", exc))
        except Exception:  # the exception itself does not pickle
            send.send(("error", RuntimeError(f"drawing the figures failed: {type(exc).__name__}: {exc}")))


def _chrome_path(spec: str, design: str) -> str:
    if spec.endswith(os.sep) or os.path.isdir(spec):
        os.makedirs(spec, exist_ok=True)
        return os.path.join(spec, f"{design}.trace.json")
    return f"{spec}{design}.trace.json"


_WORKER_TRACES: dict[str, Trace] = {}


def _replay_in_worker(trace_path: str, design: str, hw: HardwareConfig, memory, memory_params,
                      kwargs: dict[str, Any]) -> Result:
    """One design's replay in a worker process (each worker opens a trace once)."""
    tr = _WORKER_TRACES.get(trace_path)
    if tr is None:
        tr = _WORKER_TRACES[trace_path] = Trace(trace_path)
    return _replay(tr, design, hw, memory, memory_params, **kwargs)


def compare(trace: str | os.PathLike | Trace | None = None, designs: Iterable[str] | None = None,
            hw: HardwareConfig | str | None = None, memory: str | None = None,
            memory_params: dict[str, Any] | None = None, progress: bool = False,
            chrome_trace: str | None = None, jobs: int | None = None,
            design_params: dict[str, dict[str, Any]] | None = None, quality: bool = False,
            quality_samples: int = 16, quality_seed: int = 0, **kwargs) -> Comparison:
    """Replay the same trace on several designs (default: every registered design and ablation).

    With no `trace`, each design replays the bundled tiny-model trace of its activation (designs
    with `trace_activation == "relu"` get the ReLU twin; the result's notes say so). `hw` is a
    `HardwareConfig`, "common" (default), a TOML path, or "paper" (each design in its own
    `paper_hw()`; results are then not comparable across designs). `chrome_trace` is a directory
    or a path prefix for one Perfetto trace per design. `trace` may also be a mapping
    activation → trace (e.g. {"silu": a, "relu": b}) to choose twins the way the default does.
    `jobs` replays that many designs at once in worker processes (default: one per CPU core);
    results do not depend on it. `design_params` maps a design name to its parameter overrides.
    `quality` adds each design's image quality on the bundled model (`add_quality`). `trace` may
    name a bundled model ("tiny", the default, or "small"): its twins are chosen per design."""
    if isinstance(designs, str):  # one name, or a comma-separated list as on the command line
        designs = [d.strip() for d in designs.split(",")]
    names = list(designs) if designs is not None else available_designs()
    if not names or any(not isinstance(n, str) or not n for n in names):
        raise ConfigError(f"designs: expected design names, got {designs!r}; "
                          f"known: {', '.join(available_designs())}")
    classes = {n: get_design(n) for n in names}
    model = bundled_model(trace) or ("tiny" if trace is None else None)
    if quality and model is None:
        raise ConfigError("--quality: the numerics emulation samples the bundled models only; "
                          "use --trace tiny or --trace small (or no --trace), or drop --quality")
    if quality and quality_samples < 1:
        raise ConfigError(f"--quality-samples {quality_samples}: give at least 1 sample")
    paper = hw == "paper"
    resolved = None if paper else _hw(hw)
    hw_mode = "paper" if paper else resolved.name
    traces: dict[str, Trace] = {}
    given = None
    if bundled_model(trace) is not None:
        trace = {act: default_trace_path(act, model) for act in ("silu", "relu")}
    if isinstance(trace, dict):       # activation -> trace: twins chosen per design, like the default
        traces = {a: t if isinstance(t, Trace) else Trace(t) for a, t in trace.items()}
    elif trace is not None:
        given = trace if isinstance(trace, Trace) else Trace(trace)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(names), desc="compare", unit="design", disable=None)
    out = Comparison(hw_mode=hw_mode)
    plan = {}
    for n in names:
        cls = classes[n]
        extra_notes = []
        if given is not None:
            tr = given
            act = trace_activation(tr)
            if cls.trace_activation != "silu" and act is not None and act != cls.trace_activation:
                extra_notes.append(f"design assumes a {cls.trace_activation} model but the trace's "
                                   f"model uses {act}")
            out.trace_choice[n] = f"{tr.manifest['model']} (given)"
        else:
            act = cls.trace_activation
            if act not in traces:
                traces[act] = load_trace(activation=act)
            tr = traces[act]
            origin = "bundled" if trace is None or model is not None else "given"
            out.trace_choice[n] = f"{tr.manifest['model']} ({origin})"
            if act != "silu":
                extra_notes.append(f"replayed on the {origin} {'ReLU' if act == 'relu' else act} twin "
                                   f"({tr.manifest['model']}) because the design assumes a {act} model; "
                                   f"designs without that need use the silu trace")
                out.trace_choice[n] = f"{tr.manifest['model']} ({origin} {act} twin)"
        hw_n = cls.paper_hw() if paper else resolved
        if paper:
            extra_notes.append(f"ran in its own paper configuration (hw {hw_n.name}); "
                               "not comparable across designs")
        try:
            ct = _chrome_path(chrome_trace, n) if chrome_trace else None
        except OSError as exc:
            raise ConfigError(f"--chrome-trace {chrome_trace}: cannot create the directory "
                              f"({exc.strerror or exc})") from None
        if ct and not os.path.isdir(os.path.dirname(os.path.abspath(ct))):
            raise ConfigError(f"--chrome-trace {chrome_trace}: the directory of {ct} does not exist")
        plan[n] = (tr, hw_n, ct, extra_notes)
    workers = min(len(names), jobs if jobs is not None else (os.cpu_count() or 1))
    results: dict[str, Result] = {}
    if workers > 1:
        from concurrent.futures import ProcessPoolExecutor, as_completed

        # workers die with this process (a kill -9 here must not leave them waiting forever)
        with ProcessPoolExecutor(max_workers=workers, initializer=_die_with_parent,
                                 initargs=(os.getpid(),)) as pool:
            futures = {pool.submit(_replay_in_worker, tr.path, n, hw_n, memory, memory_params,
                                   {**kwargs, "chrome_trace": ct,
                                    "design_params": (design_params or {}).get(n)}): n
                       for n, (tr, hw_n, ct, _) in plan.items()}
            for fut in as_completed(futures):
                results[futures[fut]] = fut.result()
                if bar is not None:
                    bar.set_postfix_str(futures[fut])
                    bar.update(1)
    else:
        for n, (tr, hw_n, ct, _) in plan.items():
            if bar is not None:
                bar.set_postfix_str(n)
            results[n] = _replay(tr, n, hw_n, memory, memory_params, chrome_trace=ct,
                                 progress=progress, design_params=(design_params or {}).get(n), **kwargs)
            if bar is not None:
                bar.update(1)
    for n in names:
        r = results[n]
        r.notes = list(r.notes) + plan[n][3]
        out[n] = r
    if bar is not None:
        bar.close()
    if quality:
        add_quality(out, design_params, quality_samples, quality_seed, model=model)
    return out


def add_quality(results: Comparison, design_params: dict[str, dict[str, Any]] | None = None,
                samples: int = 16, seed: int = 0, model: str = "tiny") -> None:
    """Put each design's image quality (`difftlm.quality`: PSNR/SSIM to the fp32 samples of its
    variant of the bundled `model`, and its distribution figure) into its summary as `quality`,
    sampled with the parameters its timing run had; a design without a numerics emulation gets
    None and a note saying so."""
    try:
        import torch  # noqa: F401  (the numerics emulation runs the tiny models in torch)
    except ImportError:
        raise ConfigError("--quality: needs torch (pip install -e '.[test]' -c constraints.txt)") from None
    from .quality import quality_columns

    cols = quality_columns(list(results), design_params, samples=samples, seed=seed, model=model)
    for name, r in results.items():
        q = cols.get(name)
        r.summary["quality"] = q
        if q is None:
            r.notes = list(r.notes) + ["quality: not modelled (no numerics emulation for this design)"]
        else:
            r.notes = list(r.notes) + [f"quality: {samples} DDIM samples of {q['model']} (seed {seed}) with "
                                       "this design's arithmetic, against the fp32 samples of the same seeds"]


def load_results(path: str | os.PathLike) -> Comparison:
    """Results saved by `compare --out` / `Comparison.save` (results.json or its directory);
    an incomplete, foreign or misshapen result set raises `results_io.ResultsError`."""
    from .results_io import load_document, load_results as _load

    p = os.fspath(path)
    doc = load_document(p)
    return Comparison(_load(p), hw_mode=doc.get("hw_mode", "common"),
                      trace_choice=doc.get("trace_choice"))


__all__ = ["COMMON", "Comparison", "Result", "add_quality", "compare", "default_trace_path", "load_results",
           "load_trace", "replay"]
