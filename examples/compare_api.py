"""Compare designs from Python: the API behind `difftlm compare`.

    python examples/compare_api.py [OUT_DIR]
"""

import sys

import difftlm
from models.config import COMMON

out = sys.argv[1] if len(sys.argv) > 1 else "difftlm-results-api"

# Every registered design on the bundled tiny trace (ReLU designs get the ReLU twin).
res = difftlm.compare(designs=["dense"], hw=COMMON)
for name, r in res.items():
    s = r.summary
    print(f"{name}: {s['total_cycles']:,.0f} cycles, {s['energy_total_pj'] / 1e6:,.1f} uJ, "
          f"speedup {res.speedups()[name]:.2f}x")

# Tables as pandas DataFrames (summary, per_op, per_step).
print(res.to_pandas("per_step")[["design", "step", "compute_cycles", "memory_cycles"]].head())

# A what-if: half the DRAM bandwidth with the ideal memory model.
slow = difftlm.replay(design="dense", memory="ideal", memory_params={"bandwidth_gbps": 12.8})
print(f"ideal 12.8 GB/s: {slow.summary['memory_cycles']:,.0f} memory cycles")

# Save results.json, CSV/Parquet tables and figures; redraw later with `difftlm plot`.
res.save(out)
print(f"written to {out}/")
