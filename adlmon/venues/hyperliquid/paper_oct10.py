"""The paper's published per-wave figures of 10 Oct 2025, and adlmon's waves beside them.

Facts, not code: the numbers below are outputs of the public reproduction code
of arXiv 2512.01112 v3 (repository ``pluriholonomic/autodeleveraging-analysis``,
MIT, folder ``out/``): ``bad_debt_loser_waves.csv`` (waves, ADL fills,
losers, deficit D) and ``horizon_sweep/horizon_ms=Δ/two_pass_equity_delta_by_wave.csv``
(needed budget B, production haircut H(Δ)), and the totals of
``eval_horizon_sweep_gap_ms=5000.csv``. Global waves over every Hyperliquid ADL
fill of the event with a 5 s gap; the paper keeps only its 16 waves with D > 0
(so its wave numbers skip 3, 6, 15, ...).

How each column relates to adlmon's (``docs``: the shared paper-code.md, restated):
see :data:`EXPLANATIONS`. :func:`compare` matches adlmon's waves to the
published ones by time and is used by ``adlmon replay`` when its input covers
the whole published window and holds a wave inside it (:func:`applies`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

SOURCE = ("pluriholonomic/autodeleveraging-analysis (MIT), out/bad_debt_loser_waves.csv and "
          "out/horizon_sweep/horizon_ms=*/two_pass_equity_delta_by_wave.csv")


@dataclass(frozen=True)
class PaperWave:
    wave: int  # the paper's wave number
    t_start_ms: int
    t_end_ms: int
    adl_fills: int
    losers: int
    needed_usd: float  # B = Σ|markPx − px|·|sz|
    deficit_usd: float  # D, the paper's loser-side negative equity (a stock)
    production_haircut_usd: dict[int, float]  # H(Δ) of the two-pass replay, by horizon ms


PUBLISHED_WAVES: tuple[PaperWave, ...] = (
    PaperWave(1, 1760130964831, 1760130964831, 11279, 1,
              2266239.82024108, 10925707.159377944,
              {0: 414233.97059600416, 500: 4263967.205363003, 1000: 6567088.730445002, 2000: 7048879.927371018, 5000: 9151715.568020018}),
    PaperWave(2, 1760131016356, 1760131016356, 2915, 50,
              1383878.3247609977, 10945233.811877944,
              {0: 171137.10349601324, 500: 3510719.059784002, 1000: 2805759.9713950143, 2000: 2970691.396352002, 5000: 4452446.894488049}),
    PaperWave(4, 1760131034132, 1760131034132, 1179, 29,
              1065843.446131001, 10942123.436786944,
              {0: 407593.46572399896, 500: 2486340.3724100157, 1000: 2398772.02949699, 2000: 2456942.889886011, 5000: 3617517.090144038}),
    PaperWave(5, 1760131046528, 1760131046528, 304, 27,
              115496.57833500004, 10927398.388470942,
              {0: 41011.40799004616, 500: 108494.83695900861, 1000: 441656.47684602556, 2000: 271037.7379410069, 5000: 394634.9073739668}),
    PaperWave(7, 1760131095631, 1760131095631, 21, 8,
              8055.871928000007, 1175.6931290000011,
              {0: 8995.08546499999, 500: 25824.681174999994, 1000: 25845.87157499999, 2000: 33412.745177000004, 5000: 30999.981850999928}),
    PaperWave(8, 1760131103989, 1760131107044, 2248, 16,
              1576039.2185530025, 10927057.260968942,
              {0: 11415047.961084986, 500: 9010248.101403967, 1000: 8404362.692017961, 2000: 5075506.427366977, 5000: 5991283.817147931}),
    PaperWave(9, 1760131112648, 1760131115747, 100, 73,
              44867.64211700003, 8537.544322999915,
              {0: 16097.974908007644, 500: 84157.24024001061, 1000: 87656.15811001048, 2000: 79566.61167400559, 5000: 101509.36286600937}),
    PaperWave(10, 1760131121686, 1760131124652, 2290, 53,
              1622228.637648998, 10929270.918099944,
              {0: 1071568.1209779999, 500: 1480084.3847929863, 1000: 2593142.623543045, 2000: 3768003.6337560173, 5000: 4182556.838498993}),
    PaperWave(11, 1760131130860, 1760131133827, 817, 67,
              373726.4693789986, 10926296.540315943,
              {0: 1202926.644864001, 500: 1337884.7656499858, 1000: 1582163.1092789876, 2000: 1397732.2773049907, 5000: 1706871.567971003}),
    PaperWave(12, 1760131143101, 1760131143101, 82, 39,
              5177.076339999994, 19394.265893999967,
              {0: 7682.724308999046, 500: 9954.764727997648, 1000: 10083.728448001817, 2000: 13821.064706001329, 5000: 22432.837992995937}),
    PaperWave(13, 1760131148820, 1760131192582, 7873, 715,
              5584123.653720992, 11831911.509488944,
              {0: 38449033.21386565, 500: 38101412.75083986, 1000: 34614894.48393683, 2000: 33701728.035496764, 5000: 28654001.863789793}),
    PaperWave(14, 1760131204816, 1760131234906, 1896, 168,
              1021113.0603779986, 11666340.580627944,
              {0: 6612642.338278045, 500: 6047861.035094973, 1000: 6279588.482829011, 2000: 5414431.877747992, 5000: 5752392.418607021}),
    PaperWave(17, 1760131262776, 1760131278798, 75, 36,
              9400.221401000003, 4184.924519999999,
              {0: 243600.80162999948, 500: 239638.68582698953, 1000: 235831.83099299372, 2000: 243747.6654389876, 5000: 239398.97907800233}),
    PaperWave(21, 1760131330414, 1760131342621, 26, 15,
              1545.1890399999984, 5035.837918000023,
              {0: 18544.059894000005, 500: 18714.49310400001, 1000: 18759.636804000016, 2000: 18912.312294000003, 5000: 18972.23852399998}),
    PaperWave(25, 1760131461758, 1760131470999, 10, 7,
              671.6479340000006, 2493.3880400000003,
              {0: 17880.93671901287, 500: 16783.93531898615, 1000: 16718.766918992533, 2000: 16751.351118989343, 5000: 17332.43601899951}),
    PaperWave(28, 1760131535824, 1760131547734, 37, 22,
              1262.7510999999936, 1225.4261079999999,
              {0: 10339.518343000494, 500: 11189.905542999972, 1000: 9468.241762000038, 2000: 15195.760962999784, 5000: 19077.830478999764}),
)

# eval_horizon_sweep_gap_ms=5000.csv: 16 waves at every horizon.
PUBLISHED_TOTALS = {
    "waves": 16,
    "deficit_usd": 100063386.6859475,
    "needed_usd": 15079669.609008066,
    "production_haircut_usd": {0: 60108335.328144774, 500: 66753276.21823378,
                               1000: 66091792.83439987, 2000: 62526361.714594774,
                               5000: 64353144.63285082},
}
# 36 waves over all 34,983 ADL fills with a 5 s gap; the paper's 16 hold 31,152 (paper-code.md).
ALL_WAVES_OF_THE_EVENT = 36

WINDOW_MS = (PUBLISHED_WAVES[0].t_start_ms, PUBLISHED_WAVES[-1].t_end_ms)

EXPLANATIONS = {
    "waves": "the paper keeps only waves with D > 0 (16 of the 36 that a 5 s gap gives over all "
             "ADL fills); adlmon reports every wave and marks the paper's with paper_counted",
    "fills": "same segmentation and fills per wave; a difference means the input lacks fills",
    "needed": "same definition Σ|markPx − px|·|sz| (identical to 1e-15 on shared inputs); a difference "
              "means missing fills or fills without markPx",
    "H": "the paper's account replay never updates a position's entry price, which adds "
         "Σ σ·q·(e_replay − e_venue) per user to its H; with correct entries its e^noADL − e^ADL is "
         "adlmon's H (+7.5% to +24% on ΣH(0) in side-by-side simulations; on 480 real fills the "
         "bias term alone was ≈ $714k against ≈ $90k of B)",
    "D": "the paper's D is an end-of-window stock with closed positions left open (sizes set to "
         "startPosition), so one $10.93M hole repeats across nine waves; adlmon's D is each loser's "
         "equity before each ADL block (paper ΣD above adlmon's by +12% to +401% in simulations). "
         "Without the clearinghouse snapshot at block 758750000 a loser's equity is unknown "
         "(deficit_source 'unknown')",
}


def covers(first_ms: int | None, last_ms: int | None) -> bool:
    """True when an input spanning [first_ms, last_ms] holds every published wave."""
    return first_ms is not None and last_ms is not None and \
        first_ms <= WINDOW_MS[0] and last_ms >= WINDOW_MS[1]


def applies(first_ms: int | None, last_ms: int | None, reports: list[dict]) -> bool:
    """The comparison applies: the input covers the window and at least one of
    adlmon's waves lies in it (a snapshot alone can make an input start early)."""
    return covers(first_ms, last_ms) and any(
        r["t_start_ms"] <= WINDOW_MS[1] and r["t_end_ms"] >= WINDOW_MS[0] for r in reports)


def _rel(a: float | None, b: float) -> float | None:
    return None if a is None or b == 0 else (a - b) / abs(b)


def compare(reports: list[dict], horizon_ms: int = 0) -> dict[str, Any]:
    """adlmon's wave reports beside the published waves (matched by overlapping time).

    Returns ``{"source", "horizon_ms", "rows", "unmatched", "totals", "explanations"}``;
    each row holds the paper's and adlmon's fills, B, H(horizon) and D and their
    relative differences ``(adlmon − paper)/|paper|``, and adlmon's ``paper_counted``.
    """
    rows, used = [], set()
    for pw in PUBLISHED_WAVES:
        match = [r for r in reports if r["t_start_ms"] <= pw.t_end_ms and r["t_end_ms"] >= pw.t_start_ms]
        used.update(id(r) for r in match)
        r = match[0] if len(match) == 1 else None
        h = r["production_haircut_usd"].get(str(horizon_ms)) if r else None
        rows.append({
            "paper_wave": pw.wave,
            "t_start_ms": pw.t_start_ms,
            "adlmon_wave": r["wave_id"] if r else None,
            "adlmon_waves_matched": len(match),
            "fills": (r["adl_fills"] if r else None, pw.adl_fills),
            "needed_usd": (r["needed_usd"] if r else None, pw.needed_usd),
            "production_haircut_usd": (h, pw.production_haircut_usd.get(horizon_ms)),
            "deficit_usd": (r["deficit_usd"] if r else None, pw.deficit_usd),
            "paper_counted": r.get("paper_counted") if r else None,
            "rel": {k: _rel(a, b) for k, (a, b) in (
                ("needed_usd", (r["needed_usd"] if r else None, pw.needed_usd)),
                ("production_haircut_usd", (h, pw.production_haircut_usd.get(horizon_ms) or 0.0)),
                ("deficit_usd", (r["deficit_usd"] if r else None, pw.deficit_usd)))},
        })
    unmatched = [r for r in reports if id(r) not in used]

    def total(rs: list[dict]) -> dict[str, Any]:
        known = [r for r in rs if r.get("deficit_usd") is not None]
        return {"waves": len(rs), "adl_fills": sum(r["adl_fills"] for r in rs),
                "needed_usd": sum(r["needed_usd"] for r in rs),
                "production_haircut_usd": sum(r["production_haircut_usd"].get(str(horizon_ms), 0.0)
                                              for r in rs),
                "deficit_stock_sum_usd": sum(r["deficit_usd"] for r in known),
                "waves_deficit_unknown": len(rs) - len(known)}

    return {
        "source": SOURCE,
        "horizon_ms": horizon_ms,
        "rows": rows,
        "unmatched": {"waves": len(unmatched), "adl_fills": sum(r["adl_fills"] for r in unmatched),
                      "paper_counted": sum(1 for r in unmatched if r.get("paper_counted"))},
        "totals": {
            "adlmon_all": total(reports),
            "adlmon_paper_counted": total([r for r in reports if r.get("paper_counted")]),
            "paper": {"waves": PUBLISHED_TOTALS["waves"],
                      "adl_fills": sum(w.adl_fills for w in PUBLISHED_WAVES),
                      "needed_usd": PUBLISHED_TOTALS["needed_usd"],
                      "production_haircut_usd": PUBLISHED_TOTALS["production_haircut_usd"].get(horizon_ms),
                      "deficit_stock_sum_usd": PUBLISHED_TOTALS["deficit_usd"]},
        },
        "explanations": dict(EXPLANATIONS),
    }


def _m(x: float | None) -> str:
    return "-" if x is None else f"{x / 1e6:,.3f}M"


def _pct(x: float | None) -> str:
    return "" if x is None else f"{x:+.1%}"


def format_comparison(cmp: dict[str, Any]) -> str:
    """The comparison as ``adlmon replay`` prints it: one line per published wave."""
    h = cmp["horizon_ms"]
    head = (f"{'paper':>5} {'start (UTC)':<12} {'adlmon':>6} {'fills a/p':>13} {'B adlmon':>10} "
            f"{'B paper':>10} {'dB':>7} {f'H({h}) adlmon':>13} {f'H({h}) paper':>12} {'dH':>8} "
            f"{'D adlmon':>10} {'D paper':>10} {'dD':>8} counted")
    lines = [f"beside the paper's published waves of 10 Oct 2025 (source: {cmp['source']})", head,
             "-" * len(head)]
    for r in cmp["rows"]:
        start = datetime.fromtimestamp(r["t_start_ms"] / 1000, timezone.utc).strftime("%H:%M:%S.%f")[:12]
        fa, fp = r["fills"]
        wave = "-" if r["adlmon_wave"] is None else str(r["adlmon_wave"])
        if r["adlmon_waves_matched"] > 1:
            wave = f"{r['adlmon_waves_matched']} w"
        counted = {True: "yes", False: "no", None: "-"}[r["paper_counted"]]
        lines.append(
            f"{r['paper_wave']:>5} {start:<12} {wave:>6} {('-' if fa is None else f'{fa:,}') + '/' + f'{fp:,}':>13} "
            f"{_m(r['needed_usd'][0]):>10} {_m(r['needed_usd'][1]):>10} {_pct(r['rel']['needed_usd']):>7} "
            f"{_m(r['production_haircut_usd'][0]):>13} {_m(r['production_haircut_usd'][1]):>12} "
            f"{_pct(r['rel']['production_haircut_usd']):>8} {_m(r['deficit_usd'][0]):>10} "
            f"{_m(r['deficit_usd'][1]):>10} {_pct(r['rel']['deficit_usd']):>8} {counted}")
    t = cmp["totals"]
    lines.append("")
    for label, key in (("adlmon, all waves", "adlmon_all"), ("adlmon, paper_counted", "adlmon_paper_counted"),
                       ("paper (published)", "paper")):
        x = t[key]
        lines.append(f"{label:<22} waves {x['waves']:>3}  ADL fills {x['adl_fills']:>7,}  "
                     f"B ${x['needed_usd']:>15,.2f}  H({h}) ${x['production_haircut_usd'] or 0:>15,.2f}  "
                     f"ΣD (stocks) ${x['deficit_stock_sum_usd']:>16,.2f}")
    u = cmp["unmatched"]
    lines.append(f"adlmon waves outside the published ones: {u['waves']} ({u['adl_fills']:,} ADL fills)")
    lines.append("why the columns differ:")
    for col, text in cmp["explanations"].items():
        lines.append(f"  {col}: {text}")
    return "\n".join(lines)
