"""Bin-fill routing against a fixed weekly round on a simulated city, and our routing's gap to best-known CVRP solutions.

The city, its fill, sensors and fleet are described in bench/waste_city.py (1,000 bins, 28
days after a 14-day warm-up, weekday effects, market days, sensor noise, dropouts and echoes).

Dynamic (ours): full rounds on Monday, Wednesday and Friday (`--service-days`,
PlannerConfig.collection_weekdays) and an urgent run on Saturday (`--urgent-days`,
PlannerConfig.urgent_weekdays). At 00:00 of such a day each bin's forecast is fitted on its
last 28 days of sensor readings (smartcity.extensions.waste.forecast.fit), and `plan_day`
chooses, on a round, the due bins (threshold 0.8 reached before the end of the next round's
shift) plus optional ones (level >= 0.6, worth 1 km of detour when full; the planner's
defaults), and on an urgent run only the bins that would overflow (level 1.0) before the next
round; it routes the fleet with PyVRP. Fewer, fuller days are where the saving comes from: a
day's routes cost about a sweep of the town (~100 km) plus ~0.3 km a bin. Rounds every day
Monday to Saturday (`--service-days 0,1,2,3,4,5 --urgent-days ''`) give km_ratio ~0.80.

Fixed (baseline): a weekly round designed once from the same warm-up readings: each bin gets
the fewest visits a week (1, 2, 3 or 6, on weekdays staggered by sector) whose forecast fill
between two visits stays under its threshold; each weekday's round is routed by the same
PyVRP planner (every bin of the day required), and repeated every week.

Figures: km driven, overflow bin-days (a bin's true level reached 1.0 that day), `plan_s`
(the slowest day's planning: forecasts of 1,000 bins + selection + matrix + solve, 10 trucks),
and `gap_vs_bks`: the mean gap of `solve_data` (the planner's PyVRP entry) at the planner's
default time limit (10 s, also with --quick) to the best-known solutions of the CVRPLIB X instances in ../shared/data/vrp/CVRP.

Usage: python bench/waste.py [--quick] [--seed N] [--bins N] [--days N] [--detour-prize-m M]
       [--optional-min-level L] [--service-days 0,2,4] [--urgent-days 5] [--data DIR]
The last line printed is a JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from datetime import timedelta
from pathlib import Path

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
for _p in (str(BENCH_DIR.parent), str(BENCH_DIR)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import pyvrp  # noqa: E402
from waste_city import (  # noqa: E402
    PATTERNS,
    START,
    City,
    Outcome,
    Simulator,
    collections_of,
    fixed_weekdays,
    gap_pct,
    interval_fills,
    make_city,
    parse_bks,
    sectors,
)

from smartcity.extensions.waste import BinState, FillForecast, Plan, PlannerConfig, fit, plan_day  # noqa: E402
from smartcity.extensions.waste.planner import DUE_PRIZE_M, Candidate, route, solve_data  # noqa: E402

HISTORY_DAYS = 28


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def forecast_states(city: City, sim: Simulator) -> list[BinState]:
    """Each bin's last reading and forecast from the sensor readings so far (what the server would have)."""
    lo = max(0, sim.hour - HISTORY_DAYS * 24)
    hours = np.arange(lo, sim.hour)
    t0 = city.hour_time(0).timestamp()
    ts_all = t0 + (hours + 1) * 3600.0  # a reading is taken at the end of its hour
    states = []
    for i, b in enumerate(city.bins):
        row = sim.readings[i, lo : sim.hour]
        ok = ~np.isnan(row)
        ts, lv = ts_all[ok], row[ok]
        fc: FillForecast = fit(ts, lv)
        if len(ts):
            last = city.hour_time(0) + timedelta(seconds=float(ts[-1] - t0))
            states.append(BinState(b, float(min(lv[-1], 1.0)), last, fc))
        else:
            states.append(BinState(b, 0.5, city.hour_time(sim.hour), fc))
    return states


def run_dynamic(city: City, cfg: PlannerConfig) -> tuple[Outcome, float]:
    sim = Simulator(city)
    sim.warm_up()
    index = {b.id: i for i, b in enumerate(city.bins)}
    out = Outcome()
    slowest = 0.0
    for d in range(city.days):
        day = START + timedelta(days=d)
        if day.weekday() == 6 or cfg.day_kind(day.weekday()) == "off":  # no collection on Sundays
            sim.run_day({})
            continue
        t0 = time.perf_counter()
        states = forecast_states(city, sim)
        plan = plan_day(states, [city.depot], city.trucks, day, cfg)  # the next visit: the next collection day
        slowest = max(slowest, time.perf_counter() - t0)
        out.km += plan.km
        out.collections += sum(len(r.stops) for r in plan.routes)
        out.missed_due += len(plan.missed_due)
        out.plan_days += 1
        sim.run_day(collections_of(plan, index))
        log(f"dynamic day {d:2d}: {plan.km:7.1f} km, {sum(len(r.stops) for r in plan.routes):4d} bins, "
            f"{len(plan.missed_due)} due missed, {time.perf_counter() - t0:5.1f} s")  # fmt: skip
    out.overflow_bin_days = sim.overflow_bin_days()
    return out, slowest


def fixed_round(city: City, cfg: PlannerConfig) -> tuple[dict[int, Plan], dict[int, int]]:
    """The weekly round: a plan per service weekday, and how many bins get each visit frequency."""
    sim = Simulator(city)
    sim.warm_up()
    states = forecast_states(city, sim)
    sector = sectors(city)
    per_day: dict[int, list[Candidate]] = {w: [] for w in range(6)}
    freq_count: dict[int, int] = dict.fromkeys(PATTERNS, 0)
    for i, st in enumerate(states):
        daily = st.forecast.daily_fill() if st.forecast is not None else np.full(7, 0.2)
        for f in sorted(PATTERNS):
            visits = interval_fills(daily, fixed_weekdays(f, int(sector[i])))
            if max(fill for _, fill in visits) <= st.bin.threshold or f == max(PATTERNS):
                break
        freq_count[f] += 1
        for w, fill in visits:
            per_day[w].append(Candidate(st.bin, True, min(1.0, fill), DUE_PRIZE_M))
    plans = {}
    for w in range(6):
        day = START + timedelta(days=w)
        plans[w] = route(per_day[w], [city.depot], city.trucks, day, cfg)
        log(f"fixed weekday {w}: {len(per_day[w])} bins, {plans[w].km:.1f} km, {len(plans[w].missed_due)} missed")
    return plans, freq_count


def run_fixed(city: City, plans: dict[int, Plan]) -> Outcome:
    sim = Simulator(city)
    sim.warm_up()
    index = {b.id: i for i, b in enumerate(city.bins)}
    out = Outcome()
    for d in range(city.days):
        w = (START + timedelta(days=d)).weekday()
        if w == 6:
            sim.run_day({})
            continue
        plan = plans[w]
        out.km += plan.km
        out.collections += sum(len(r.stops) for r in plan.routes)
        out.missed_due += len(plan.missed_due)
        out.plan_days += 1
        sim.run_day(collections_of(plan, index))
    out.overflow_bin_days = sim.overflow_bin_days()
    return out


def cvrp_gaps(data_dir: Path, cfg: PlannerConfig) -> dict[str, float]:
    gaps = {}
    for vrp in sorted((data_dir / "CVRP").glob("*.vrp")):
        data = pyvrp.read(vrp, round_func="round")
        bks = parse_bks(vrp.with_suffix(".sol").read_text(encoding="utf-8"))
        res = solve_data(data, cfg)
        gaps[vrp.stem] = round(gap_pct(res.cost(), bks), 3) if res.is_feasible() else math.inf
        log(f"{vrp.stem}: cost {res.cost()} bks {bks} gap {gaps[vrp.stem]:.2f} %")
    return gaps


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="3 s daily plans, 6 s fixed rounds (the city stays full size; the gap keeps 10 s)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--bins", type=int, default=1000)
    ap.add_argument("--days", type=int, default=28)
    ap.add_argument("--detour-prize-m", type=int, default=PlannerConfig().detour_prize_m,
                    help="metres of detour a full optional bin is worth (0: due bins only)")
    ap.add_argument("--optional-min-level", type=float, default=PlannerConfig().optional_min_level,
                    help="level (at the end of the shift) below which a bin is never an optional stop")
    ap.add_argument("--service-days", default="0,2,4",
                    help="weekdays the dynamic policy collects on (Monday = 0; Sunday is never one)")
    ap.add_argument("--urgent-days", default="5",
                    help="other weekdays the dynamic policy goes out only to bins that would overflow ('': none)")
    ap.add_argument("--data", type=Path, default=BENCH_DIR.parent.parent / "shared" / "data" / "vrp")
    args = ap.parse_args()
    default_limit = PlannerConfig().time_limit_s  # what a server's daily plan gets
    day_limit = 3.0 if args.quick else default_limit
    fixed_limit = 6.0 if args.quick else 30.0
    # the gap is always measured at the planner's default limit, the one a city's plan runs with
    gap_limit = default_limit

    t_start = time.perf_counter()
    city = make_city(args.bins, args.days, seed=args.seed)
    service = sorted({int(w) for w in args.service_days.split(",")})
    if not service or not set(service) <= set(range(6)):
        ap.error("--service-days: weekdays 0 (Monday) to 5 (Saturday)")
    dyn_cfg = PlannerConfig(time_limit_s=day_limit, seed=args.seed, detour_prize_m=args.detour_prize_m,
                            optional_min_level=args.optional_min_level, collection_weekdays=tuple(service),
                            urgent_weekdays=tuple(int(w) for w in args.urgent_days.split(",") if w))
    dynamic, plan_s = run_dynamic(city, dyn_cfg)
    plans, freqs = fixed_round(city, PlannerConfig(time_limit_s=fixed_limit, seed=args.seed))
    fixed = run_fixed(city, plans)
    if args.data.is_dir():
        gaps = cvrp_gaps(args.data, PlannerConfig(time_limit_s=gap_limit, seed=args.seed))
    elif os.environ.get("CI") == "true":
        raise SystemExit(f"{args.data} is missing (CI=true)")
    else:
        log(f"{args.data} is missing: no gap_vs_bks")
        gaps = {}
    result = {
        "bins": city.n,
        "days": city.days,
        "trucks": sum(t.count for t in city.trucks),
        "km_dynamic": round(dynamic.km, 1),
        "km_fixed": round(fixed.km, 1),
        "km_ratio": round(dynamic.km / fixed.km, 3) if fixed.km else None,
        "overflow_bin_days_dynamic": dynamic.overflow_bin_days,
        "overflow_bin_days_fixed": fixed.overflow_bin_days,
        "collections_dynamic": dynamic.collections,
        "collections_fixed": fixed.collections,
        "missed_due_dynamic": dynamic.missed_due,
        "missed_due_fixed": fixed.missed_due,
        "fixed_visits_per_week": {str(k): v for k, v in freqs.items()},
        "detour_prize_m": args.detour_prize_m,
        "optional_min_level": args.optional_min_level,
        "service_days": service,
        "urgent_days": list(dyn_cfg.urgent_weekdays),
        "plan_s": round(plan_s, 2),
        "plan_time_limit_s": day_limit,
        "fixed_time_limit_s": fixed_limit,
        "gap_vs_bks": round(float(np.mean(list(gaps.values()))), 3) if gaps else None,
        "gap_time_limit_s": gap_limit,
        "gap_instances": gaps,
        "quick": args.quick,
        "seed": args.seed,
        "wall_s": round(time.perf_counter() - t_start, 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
