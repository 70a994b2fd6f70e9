// Charts with uPlot (from npm): throughput/failures as bars, wait/run percentiles as lines.
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import type { Metrics } from "./api";
import { duration, h } from "./dom";

function cssVar(name: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || "#888";
}

interface SeriesSpec { key: string; label: string; color: string; bars?: boolean }

/** The smallest of 1, 2, 2.5, 5 x 10^k at or above `value`: the top of the y axis, so that the
 * top gridline sits above every point instead of a line running past it. */
export function niceCeil(value: number): number {
  if (value <= 1) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  const step = [1, 2, 2.5, 5, 10].find((m) => m * power >= value) ?? 10;
  return step * power;
}

/** The last value of a series that is not null: what the legend shows while the pointer is
 * not over the chart (uPlot's default is a row of placeholders). */
function latest(values: readonly (number | null)[]): number | null {
  for (let i = values.length - 1; i >= 0; i--) if (values[i] !== null && values[i] !== undefined) return values[i];
  return null;
}

export class Chart {
  readonly el: HTMLElement;
  private plot: uPlot | null = null;
  private observer: ResizeObserver;
  private last: Metrics | null = null;

  constructor(title: string, private specs: SeriesSpec[], private unit: "count" | "ms") {
    this.el = h("div", { class: "chart", "data-testid": `chart-${title.toLowerCase().replace(/\W+/g, "-")}` },
      h("div", { class: "chart-title" }, title));
    this.observer = new ResizeObserver(() => this.resize());
    this.observer.observe(this.el);
  }

  update(metrics: Metrics): void {
    this.last = metrics;
    const data: uPlot.AlignedData = [
      metrics.timestamps,
      ...this.specs.map((s) => metrics.series[s.key] ?? []),
    ] as uPlot.AlignedData;
    if (this.plot) {
      this.plot.setData(data);
      return;
    }
    this.create(data);
  }

  private create(data: uPlot.AlignedData): void {
    const axisColor = cssVar("--muted");
    const grid = { stroke: cssVar("--grid"), width: 1 };
    const fmt = this.unit === "ms"
      ? (_u: uPlot, v: number[]) => v.map((x) => (x === null ? "" : x === 0 ? "0" : duration(x)))
      : (_u: uPlot, v: number[]) => v.map((x) => (x === null ? "" : String(Math.round(x * 10) / 10)));
    const bars = uPlot.paths.bars ? uPlot.paths.bars({ size: [0.7, 40] }) : undefined;
    const opts: uPlot.Options = {
      width: Math.max(this.el.clientWidth - 2, 200),
      height: 180,
      cursor: { drag: { x: false, y: false } },
      legend: { show: true },
      scales: { x: { time: true }, y: { auto: true, range: (_u, min, max) => [Math.min(0, min), niceCeil(max)] } },
      axes: [
        { stroke: axisColor, grid, ticks: grid },
        { stroke: axisColor, grid, ticks: grid, values: fmt, size: 72 },
      ],
      series: [
        {
          label: "At",
          value: (_u: uPlot, v: number | null) =>
            v === null ? "latest" : new Date(v * 1000).toLocaleTimeString(undefined, { hour12: false }),
        },
        ...this.specs.map((s, index) => ({
          label: s.label,
          stroke: s.color,
          fill: s.bars ? s.color + "aa" : undefined,
          width: s.bars ? 0 : 2,
          paths: s.bars ? bars : undefined,
          spanGaps: !s.bars,
          points: { show: false },
          value: (u: uPlot, v: number | null, _series: number, idx: number | null) => {
            const shown = idx === null ? latest(u.data[index + 1] as (number | null)[]) : v;
            return shown === null ? "—" : this.unit === "ms" ? duration(shown) : String(shown);
          },
        })),
      ],
    };
    this.plot = new uPlot(opts, data, this.el);
  }

  private resize(): void {
    if (this.plot) this.plot.setSize({ width: Math.max(this.el.clientWidth - 2, 200), height: 180 });
  }

  /** Colors come from CSS variables: rebuild after a theme switch. */
  restyle(): void {
    if (!this.plot || !this.last) return;
    this.plot.destroy();
    this.plot = null;
    this.update(this.last);
  }

  destroy(): void {
    this.observer.disconnect();
    this.plot?.destroy();
  }
}

export function throughputChart(): Chart {
  return new Chart("Throughput", [
    { key: "completed", label: "completed", color: cssVar("--ok"), bars: true },
    { key: "retried", label: "retried", color: cssVar("--warn"), bars: true },
    { key: "failed", label: "failed", color: cssVar("--bad"), bars: true },
  ], "count");
}

export function latencyChart(kind: "wait" | "run"): Chart {
  return new Chart(kind === "wait" ? "Wait time" : "Run time", [
    { key: `${kind}_p50`, label: "p50", color: cssVar("--accent") },
    { key: `${kind}_p95`, label: "p95", color: cssVar("--warn") },
    { key: `${kind}_p99`, label: "p99", color: cssVar("--bad") },
  ], "ms");
}
