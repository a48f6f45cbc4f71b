"""Build op tables from layer shapes (used by the synthetic generator, the zoo and capture)."""

from __future__ import annotations

from .schema import OpRecord, expected_counts


class OpTableBuilder:
    """Appends ops in execution order; each method returns the new op's id.

    Shapes are tracked per op so callers pass only what a layer adds (kernel, channels).
    """

    def __init__(self):
        self.ops: list[OpRecord] = []
        self._shape: dict[int, tuple[int, int, int, int]] = {}  # op_id -> (n, c, h, w) of output
        self.block = 0

    def shape(self, op_id: int) -> tuple[int, int, int, int]:
        return self._shape[op_id]

    def _add(self, kind: str, name: str, preds, out_shape, **fields) -> int:
        op_id = len(self.ops)
        op = OpRecord(op_id=op_id, name=name, kind=kind, preds=tuple(preds), block=self.block, **fields)
        counts = expected_counts(op)
        if counts:
            op = OpRecord(**{**op.to_dict(), **counts})
        self.ops.append(op)
        self._shape[op_id] = out_shape
        return op_id

    def conv(self, name, src, k, r=3, stride=1, pad=None, groups=1, shape=None, relu_in=False,
             s=None) -> int:
        n, c, h, w = shape if shape is not None else self._shape[src]
        s = r if s is None else s
        pad = r // 2 if pad is None else pad
        oh, ow = (h + 2 * pad - r) // stride + 1, (w + 2 * pad - s) // stride + 1
        preds = () if src is None else (src,)
        return self._add(
            "conv2d", name, preds, (n, k, oh, ow), n=n, c=c, h=h, w=w, k=k, r=r, s=s,
            stride=stride, pad=pad, groups=groups, out_h=oh, out_w=ow, input_from_relu=relu_in,
        )

    def linear(self, name, src, d_out, shape=None, tokens=None, relu_in=False) -> int:
        """A linear layer over the tokens of `src` (spatial positions, h·w) or of `shape`."""
        n, c, h, w = shape if shape is not None else self._shape[src]
        t = tokens if tokens is not None else h * w
        preds = () if src is None else (src,)
        return self._add(
            "linear", name, preds, (n, d_out, h, w) if tokens is None else (n, d_out, t, 1),
            n=n, c=c, h=t, w=1, k=d_out, out_h=t, out_w=1, input_from_relu=relu_in,
        )

    def matmul(self, kind, name, q_src, kv_src, heads, head_dim, tokens, kv_tokens) -> int:
        n = self._shape[q_src][0]
        out_cols = kv_tokens if kind == "matmul_qk" else head_dim
        return self._add(
            kind, name, (q_src, kv_src), (n, heads, tokens, out_cols), n=n, heads=heads,
            tokens=tokens, kv_tokens=kv_tokens, head_dim=head_dim,
            c=head_dim if kind == "matmul_qk" else kv_tokens, k=out_cols, h=tokens, out_h=tokens,
        )

    def elementwise(self, kind, name, srcs, out_shape=None) -> int:
        """A vector op (norm, activation, add, concat, resampling) reading `srcs`."""
        srcs = tuple(srcs)
        shapes = [self._shape[s] for s in srcs]
        n, _, h, w = shapes[0]
        c = sum(sh[1] for sh in shapes) if kind == "concat" else shapes[0][1]
        on, oc, oh, ow = out_shape if out_shape is not None else (n, c, h, w)
        return self._add(
            kind, name, srcs, (on, oc, oh, ow), n=n, c=c, h=h, w=w, k=oc, out_h=oh, out_w=ow,
            in_elems=sum(a * b * cc * d for a, b, cc, d in shapes), out_elems=on * oc * oh * ow,
        )
