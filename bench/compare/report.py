"""bench/compare's outputs: CSV, Markdown tables and PNG plots (Debian's
python3-matplotlib, Agg backend: no display needed).

Plots are drawn from per-part samples binned in time, not from every point,
so they stay small (well under 200 KB) and readable when one system sends
hundreds of parts a second and another thirty.
"""

import csv
import math

CSV_FIELDS = ["size", "system", "clients", "seconds", "new_fps", "detector_fps", "parts_fps",
              "viewer_fps_min",
              "viewer_fps_median", "failed", "no_strip", "p50", "p90", "p99", "max", "mean",
              "others_p50", "others_p99", "cpu", "hwm_mb", "pss_mb", "mb_per_s", "load1", "error",
              "note"]

COLOURS = {"freshframe-run": "#1b9e77", "freshframe-pipeline": "#66a61e",
           "guide-original": "#d95f02", "guide-fixed-flask": "#7570b3",
           "guide-fixed-gunicorn": "#e7298a"}


def fmt(v, spec=".1f"):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return format(v, spec) if isinstance(v, (int, float)) else str(v)


def write_csv(rows, path):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, CSV_FIELDS, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()
                        if k in CSV_FIELDS})


def matrix_markdown(rows, sizes, fps):
    out = []
    for size in sizes:
        chosen = [r for r in rows if r["size"] == size]
        if not chosen:
            continue
        out += [f"#### {size}@{fps:g}", "",
                "| system | viewers | new frames/s | detector runs/s | parts/s per viewer (min) | p50 ms | "
                "p90 ms | p99 ms | max ms | p99 other viewers | CPU (cores) | peak RSS MB | PSS MB |",
                "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        notes = []
        for r in chosen:
            note = ""
            if r.get("error") or r.get("note"):
                why = (r.get("error") or r["note"]).splitlines()[0]
                notes.append(f"{r['system']}, {r['clients']} viewers: {why}")
                note = f" [{len(notes)}]"
            out.append(
                f"| {r['system']}{note} | {r['clients']} | {fmt(r.get('new_fps'))} | "
                f"{fmt(r.get('detector_fps'))} | "
                f"{fmt(r.get('viewer_fps_min'))} | {fmt(r.get('p50'))} | {fmt(r.get('p90'))} | "
                f"{fmt(r.get('p99'))} | {fmt(r.get('max'))} | {fmt(r.get('others_p99'))} | "
                f"{fmt(r.get('cpu'), '.2f')} | {fmt(r.get('hwm_mb'), '.0f')} | "
                f"{fmt(r.get('pss_mb'), '.0f')} |")
        out.append("")
        out += [f"[{i}] {n}  " for i, n in enumerate(notes, 1)] + ([""] if notes else [])
    return "\n".join(out)


def ratio_markdown(rows, sizes, reference="freshframe-run"):
    """How many times higher each guide design's p99 and CPU are than freshframe's."""
    others = [s for s in ("guide-fixed-flask", "guide-fixed-gunicorn", "guide-original")
              if any(r["system"] == s for r in rows)]
    if not others or not any(r["system"] == reference for r in rows):
        return ""
    out = [f"| size | viewers | {reference} p99 ms / CPU | " +
           " | ".join(f"{s} p99 (x) / CPU" for s in others) + " |",
           "| --- | ---: | ---: | " + " | ".join("---:" for _ in others) + " |"]
    for size in sizes:
        for k in sorted({r["clients"] for r in rows if r["size"] == size}):
            by = {r["system"]: r for r in rows if r["size"] == size and r["clients"] == k}
            ref = by.get(reference)
            if not ref or ref.get("p99") is None:
                continue
            cells = []
            for s in others:
                r = by.get(s)
                if not r or r.get("p99") is None:
                    cells.append("-")
                    continue
                cells.append(f"{fmt(r['p99'], '.0f')} ({r['p99'] / max(ref['p99'], 1e-9):.0f}x) / "
                             f"{fmt(r.get('cpu'), '.2f')}")
            out.append(f"| {size} | {k} | {fmt(ref['p99'])} / {fmt(ref.get('cpu'), '.2f')} | " +
                       " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def series_markdown(title, series):
    """Per-minute p50/p99 of drift or soak runs: {system: [(minute, p50, p99, max, rss)]}."""
    out = [f"| {title} | " + " | ".join(series) + " |",
           "| --- | " + " | ".join("---" for _ in series) + " |"]
    minutes = sorted({m for rows in series.values() for m, *_ in rows})
    for m in minutes:
        cells = []
        for rows in series.values():
            row = next((r for r in rows if r[0] == m), None)
            cells.append("-" if row is None else
                         f"p50 {fmt(row[1], '.0f')} / p99 {fmt(row[2], '.0f')} ms, "
                         f"{fmt(row[4], '.0f')} MB")
        out.append(f"| minute {m + 1} | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------
# Plots

def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    plt.rcParams.update({"font.size": 8, "axes.grid": True, "grid.alpha": 0.3,
                         "legend.fontsize": 7, "savefig.dpi": 90})
    return plt


def binned(points, width):
    """[(t, value)] -> [(bin centre, median, max)] in bins of `width`."""
    bins = {}
    for t, v in points:
        bins.setdefault(int(t // width), []).append(v)
    out = []
    for b in sorted(bins):
        vals = sorted(bins[b])
        out.append(((b + 0.5) * width, vals[len(vals) // 2], vals[-1]))
    return out


def find(rows, size, system, clients):
    return next((r for r in rows
                 if (r["size"], r["system"], r["clients"]) == (size, system, clients)), None)


def _save(fig, plt, path):
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_matrix(rows, sizes, clients, fps, plot_dir, prefix=""):
    """latency over time and CDF per size, CPU and fps versus viewers."""
    plt = _pyplot()
    from matplotlib.ticker import NullFormatter
    paths = []
    systems = [s for s in COLOURS if any(r["system"] == s for r in rows)]
    for size in sizes:
        if not any(r["size"] == size for r in rows):
            continue
        fig, axes = plt.subplots(1, len(clients), figsize=(3.4 * len(clients), 3.2), squeeze=False)
        for ax, k in zip(axes[0], clients):
            window = None
            for s in systems:
                r = find(rows, size, s, k)
                if r and r.get("_series"):
                    pts = binned(r["_series"], 0.25)
                    ax.plot([p[0] for p in pts], [p[2] for p in pts], color=COLOURS[s], lw=1,
                            label=s)
                    window = r["_window_start_s"]
            if window is not None:
                ax.axvline(window, color="grey", ls=":", lw=0.8)  # the window starts here
            ax.set_yscale("log")
            ax.set_title(f"{size}@{fps:g}, {k} viewer{'s' if k > 1 else ''}")
            ax.set_xlabel("seconds since the viewer connected")
        axes[0][0].set_ylabel("latency ms (max per 0.25 s)")
        axes[0][0].legend(loc="upper left")
        paths.append(_save(fig, plt, f"{plot_dir}/{prefix}latency_time_{size}.png"))

        fig, axes = plt.subplots(1, len(clients), figsize=(3.4 * len(clients), 3.2), squeeze=False)
        for ax, k in zip(axes[0], clients):
            for s in systems:
                r = find(rows, size, s, k)
                lat = r.get("_window_latency") if r else None
                if lat:
                    step = max(1, len(lat) // 2000)  # a CDF needs no more points than pixels
                    xs = lat[::step] + [lat[-1]]
                    ys = [min(1.0, (i * step + 1) / len(lat)) for i in range(len(xs) - 1)] + [1.0]
                    ax.step(xs, ys, where="post", color=COLOURS[s], lw=1, label=s)
            ax.set_xscale("log")
            ax.set_ylim(0, 1.01)
            ax.set_title(f"{size}@{fps:g}, {k} viewer{'s' if k > 1 else ''}")
            ax.set_xlabel("latency ms (measuring viewer, window)")
        axes[0][0].set_ylabel("fraction of frames")
        axes[0][0].legend(loc="lower right")
        paths.append(_save(fig, plt, f"{plot_dir}/{prefix}latency_cdf_{size}.png"))

    shown = [s for s in sizes if any(r["size"] == s for r in rows)]
    for key, ylabel, name, log in (
            ("cpu", "server CPU (cores, all processes)", "cpu_vs_clients", False),
            ("new_fps", "new frames/s (measuring viewer)", "fps_vs_clients", False),
            ("viewer_fps_min", "parts/s per viewer (slowest viewer)", "parts_vs_clients", True)):
        fig, axes = plt.subplots(1, len(shown), figsize=(4.2 * len(shown), 3.2), squeeze=False)
        for ax, size in zip(axes[0], shown):
            for s in systems:
                pts = sorted((r["clients"], r.get(key)) for r in rows
                             if r["size"] == size and r["system"] == s and r.get(key) is not None)
                if pts:
                    ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", color=COLOURS[s],
                            lw=1, ms=3, label=s)
            ax.set_xscale("log")
            ax.set_xticks(clients)
            ax.set_xticklabels([str(c) for c in clients])
            ax.xaxis.set_minor_formatter(NullFormatter())
            if log:
                ax.set_yscale("symlog", linthresh=10)  # a starved viewer's 0 stays on the plot
                ax.set_ylim(bottom=0)
            ax.set_title(f"{size}@{fps:g}")
            ax.set_xlabel("viewers")
        axes[0][0].set_ylabel(ylabel)
        axes[0][0].legend(loc="best")
        paths.append(_save(fig, plt, f"{plot_dir}/{prefix}{name}.png"))
    return paths


def plot_timeline(runs, path, title, bin_s, extra=None):
    """Drift and soak: latency (median and max per bin) and memory over time.
    runs: {label: {"latency": [(t_s, ms)], "memory": [(t_s, MB)]}};
    extra: optional (ylabel, {label: [(t_s, value)]}) for a third panel."""
    plt = _pyplot()
    panels = 3 if extra else 2
    fig, axes = plt.subplots(panels, 1, figsize=(8, 2.3 * panels), sharex=True)
    for label, run in runs.items():
        colour = COLOURS.get(label, None)
        pts = binned(run["latency"], bin_s)
        minutes = [p[0] / 60 for p in pts]
        axes[0].plot(minutes, [p[1] for p in pts], color=colour, lw=1, label=f"{label} median")
        axes[0].plot(minutes, [p[2] for p in pts], color=colour, lw=0.6, ls="--",
                     label=f"{label} max")
        mem = run.get("memory") or []
        axes[1].plot([t / 60 for t, _ in mem], [v for _, v in mem], color=colour, lw=1,
                     label=label)
    axes[0].set_yscale("log")
    axes[0].set_ylabel(f"latency ms (per {bin_s:g} s)")
    axes[0].set_title(title)
    axes[0].legend(loc="best", ncol=2)
    axes[1].set_ylabel("RSS MB (all processes)")
    axes[1].legend(loc="best")
    if extra:
        ylabel, series = extra
        for label, pts in series.items():
            axes[2].plot([t / 60 for t, _ in pts], [v for _, v in pts], color=COLOURS.get(label),
                         lw=1, label=label)
        axes[2].set_ylabel(ylabel)
    axes[-1].set_xlabel("minutes")
    return _save(fig, plt, path)
