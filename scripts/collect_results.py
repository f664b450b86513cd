"""Collect real runs' ``summary.json`` into the data behind the Results page.

    python scripts/collect_results.py RUN_DIR [RUN_DIR ...]    (default: every results/*/summary.json)
    python scripts/collect_results.py --merge RUN_DIR ...      (keep the other experiments' rows)

For every run directory (written by ``mfnn run``) this reads ``summary.json`` and ``config.json``,
copies the run's PNG figures to ``docs/results/<experiment>/`` and writes one row per reproduced
claim to ``docs/results/results.json``: the paper's figure or theorem, the paper's value or
exponent, what the run measured (read from ``summary.json`` by the extractor below, never typed
in), the size (``--quick`` or full, from the summary), the command and the run's wall time.
The Results page (``docs/results.md``) renders that file when the site is built.
"""

from __future__ import annotations

import json
import pathlib
import shutil
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "results"


def _ci(fit: dict) -> str:
    return f"{fit['value']:.2f} (95% CI [{fit['ci_low']:.2f}, {fit['ci_high']:.2f}])"


def _gap_row(s):
    f = s["final"]
    return f"SGD risk {f['sgd_risk']:.4f} ± {f['sgd_risk_std']:.1e} vs DD {f['dd_risk']:.4f} at t = {f['t']:g}; max gap {s['max_abs_gap']:.3f}"


def _delta_rows(s):
    parts = [f"Δ = {r['delta']:g}: DD {r['dd_risk']:.4f}, SGD {r['sgd_risk']:.4f}, global min {r['global_min_risk']:.4f}"
             for r in s["table"]]
    return "; ".join(parts)


def _aniso(s):
    f = s["final"]
    return (f"SGD risk {f['sgd_risk']:.4f} vs reduced DD (d = ∞) {f['dd_risk']:.4f} at t = {f['t']:g}; "
            f"max gap {s['max_abs_gap_d_inf']:.3f}")


def _failure(s):
    rows = [f"κ = {r['kappa']:g}: DD {r['dd_final_risk']:.4f}, SGD {r['sgd_final_risk']:.4f}" for r in s["per_kappa"]]
    return "; ".join(rows) + f"; global min {s['global_min']['risk']:.4f}"


def _dimfree(s):
    return "; ".join(f"d = {d}: {_ci(fit)}" for d, fit in s["n_exponent"].items())


def _kernel(s):
    e = s["by_activation"]
    out = [f"{a}: gap ∝ α^{v['alpha_exponent']['value']:.2f}, W2 ∝ α^{v['w2_alpha_exponent']['value']:.2f}"
           for a, v in e.items() if "alpha_exponent" in v and "w2_alpha_exponent" in v]
    return "; ".join(out)


def _rv_fit(s):
    t = s["table"]
    return (f"{_ci(s['n_exponent'])}; loss {t[0]['loss_mean']:.3g} at n = {t[0]['n']} to {t[-1]['loss_mean']:.3g} at "
            f"n = {t[-1]['n']}; {s['measures']}")


def _rv_fluct(s):
    t0 = s["n_var_t0"]
    return ("n·Var at t = 0: " + ", ".join(f"{v[0]:.3f}±{v[1]:.3f} (n = {n})" for n, v in t0.items())
            + "; end/start: " + ", ".join(f"{v:.2f}" for v in s["self_healing_ratio"].values())
            + "; min/start: " + ", ".join(f"{v:.2f}" for v in s["self_healing_min_ratio"].values()))


def _rv_temp(s):
    c = s["collapse"]
    return (f"spread of log loss at equal θ {c['spread_equal_theta']:.3f} vs across θ {c['spread_across_theta']:.3f} "
            f"(seed noise {c['seed_spread']:.3f})")
def _np_width(s):
    return "; ".join(f"{t}: sup {_ci(f)}, RMS {_ci(s['width_exponent_rms'][t])}" for t, f in s["width_exponent"].items())


def _np_degeneracy(s):
    def slope(L, init, layer):
        r = next((r for r in s["sd_slopes"] if (r["depth"], r["init"], r["layer"]) == (L, init, layer)), None)
        return "n/a" if r is None or r["value"] is None else _ci(r)
    parts = [f"L = {L} {i} sd_2: {slope(L, i, 2)}" for L in sorted({r["depth"] for r in s["sd_slopes"]})
             for i in ("iid", "correlated")]
    return "; ".join(parts) + f" (widths {s['widths'][0]}–{s['widths'][-1]})"


def _np_reduced(s):
    out = []
    for r in s.get("reduced_slopes", []):
        pts = [x for x in s["reduced_model_distance"] if x["depth"] == r["depth"]]
        out.append(f"L = {r['depth']}: RMS distance {pts[0]['rms']:.3f} (n = {pts[0]['width']}) → {pts[-1]['rms']:.3f} "
                   f"(n = {pts[-1]['width']}), slope {_ci(r)}")
    return "; ".join(out)


def _np_baseline(s):
    n = max(r["width"] for r in s["loss_table"])
    rows = [r for r in s["loss_table"] if r["width"] == n]
    return f"final test loss at n = {n}: " + ", ".join(
        ("two-layer baseline" if r["init"] == "baseline" else f"L = {r['depth']} {r['init']}") + f" {r['final_loss']:.4f}"
        for r in rows)


def _np_global(s):
    return "; ".join(f"L = {r['depth']}: final {r['final_loss']:.4f} vs floor {r['noise_floor']:.4f} "
                     f"(gap {r['gap']:+.4f} ± {r['test_loss_stderr']:.4f})" for r in s["table"])


# experiment -> [(claim, the paper's value, extractor(summary) -> measured text)]
CLAIMS = {
    "pnas-isotropic": [("PNAS 2018 Fig. 1: SGD tracks the radial DD (‖w‖ histograms, risk)",
                        "SGD ≈ DD at N = 800, d = 40", _gap_row)],
    "pnas-risk-vs-delta": [("PNAS 2018 Fig. 2: long-time risk vs Δ reaches the global minimum",
                            "DD = SGD = convex minimum", _delta_rows)],
    "pnas-anisotropic": [("PNAS 2018 Fig. 3: anisotropic Gaussians, ReLU; SGD vs reduced DD",
                          "SGD ≈ reduced PDE", _aniso)],
    "pnas-failure": [("PNAS 2018 Fig. 4: κ = 0.1 stalls, κ = 0.4 converges",
                      "stall vs convergence", _failure)],
    "pnas-error-scaling": [("PNAS 2018 Thm 3: sup_t |R_N − R(ρ_t)| ≲ √max(1/N, ε): exponent in N",
                            "−1/2 (bound)", lambda s: _ci(s["n_exponent"])),
                           ("same bound: exponent in ε", "+1/2 (bound)", lambda s: _ci(s["eps_exponent"]))],
    "mmm-dimension-free": [("COLT 2019 Thm 1(A): dimension-free N^−1/2 (exponent in N per d)",
                            "−1/2, prefactor independent of d", _dimfree)],
    "mmm-kernel-limit": [("COLT 2019 Thm 4: α-flow → kernel dynamics; gap and W2 vs α",
                          "gap ≲ t²/α (bound), W2 = O(1/α)", _kernel)],
    "rv-rbf-d5": [("RV 2018 Fig. 1: RBF units on S⁴(√5), 3-spin target: final loss vs n",
                   "faster than n^−1", _rv_fit)],
    "rv-spin-scaling": [("RV 2018 Fig. 3: sigmoid units, SGD + quench, 3-spin d = 10: final loss vs n",
                         "n^−1 (or faster)", _rv_fit)],
    "rv-fluctuations": [("RV 2018 Props. 2.3, 2.6: n·Var f_n flat in n at t = 0, decaying in training",
                         "flat at t = 0; self-healing", _rv_fluct)],
    "rv-temperature": [("RV 2018 eq. 3.16: SGD losses collapse on θ = Δt/P", "collapse on θ", _rv_temp)],
    "np-width-convergence": [("Nguyen–Pham Thm 3 (ICLR 2021): prefix-coupled distance to the mean-field proxy vs width",
                              "−1/2 up to logs (bound)", _np_width)],
    "np-degeneracy": [("Nguyen–Pham v3: i.i.d. init degenerates at depth ≥ 4 (slope of sd_2 vs width)",
                       "−1/2 for i.i.d. L ≥ 4; ≈ 0 for L = 3 and correlated", _np_degeneracy),
                      ("collapsed model of the i.i.d. L ≥ 4 net (two-layer net + scalar link) vs the full net",
                       "distance → 0 (−1/2 expected)", _np_reduced),
                      ("loss is not a detector: deep nets vs the explicit two-layer MF baseline",
                       "comparable losses", _np_baseline)],
    "np-global-convergence": [("Pham–Nguyen ICLR 2021 Thm 8: 2- and 3-layer i.i.d. nets reach the noise floor",
                               "loss → noise floor (no rate)", _np_global)],
}


def collect(run_dirs) -> list[dict]:
    rows = []
    for run in map(pathlib.Path, run_dirs):
        s = json.loads((run / "summary.json").read_text())
        name = s["experiment"]
        dest = OUT / name
        dest.mkdir(parents=True, exist_ok=True)
        figures = []
        for png in sorted(run.glob("*.png")):
            shutil.copyfile(png, dest / png.name)
            figures.append(f"results/{name}/{png.name}")
        quick = bool(s.get("quick"))
        for claim, paper, extract in CLAIMS.get(name, [("(no claim registered)", "", lambda s: "")]):
            try:
                measured = extract(s)
            except (KeyError, TypeError, IndexError) as e:
                measured = f"(summary has no {e})"
            rows.append({"experiment": name, "claim": claim, "paper": paper, "measured": measured,
                         "size": "--quick" if quick else "default", "result": s.get("result", ""),
                         "command": f"mfnn run {name}" + (" --quick" if quick else ""),
                         "wall_seconds": s.get("wall_seconds"),
                         "load_average": (s.get("machine") or {}).get("load_average"), "figures": figures})
    return rows


def main(argv) -> int:
    merge = "--merge" in argv
    argv = [a for a in argv if a != "--merge"]
    runs = argv[1:] or sorted(str(p.parent) for p in (ROOT / "results").glob("*/summary.json"))
    if not runs:
        print("collect_results: no run directories (run `mfnn run NAME` first)")
        return 1
    rows = collect(runs)
    if merge and (OUT / "results.json").exists():
        new = {r["experiment"] for r in rows}
        rows = [r for r in json.loads((OUT / "results.json").read_text()) if r["experiment"] not in new] + rows
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "results.json").write_text(json.dumps(rows, indent=1, ensure_ascii=False) + "\n")
    print(f"collect_results: {len(rows)} rows from {len(runs)} runs -> {OUT / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
