/**
 * Renders bench results: a Markdown table and an SVG bar chart of the
 * duplex/raw ratio per workload metric.
 */

/** One metric of one workload, over repetitions, for both servers. */
export interface MetricSummary {
  workload: string;
  metric: string;
  /** Whether a smaller value is better (CPU, latency, memory). */
  lowerIsBetter: boolean;
  raw: { median: number; min: number; max: number };
  duplex: { median: number; min: number; max: number };
  /** duplex median ÷ raw median. */
  ratio: number;
  /** The issue's target for the ratio, when there is one. */
  target?: number;
}

/** Everything one bench run found. */
export interface BenchReport {
  date: string;
  deno: string;
  machine: { cpu: string; cores: number; pinned: boolean };
  mode: "full" | "quick";
  repetitions: number;
  metrics: MetricSummary[];
}

const fmt = (n: number) =>
  !Number.isFinite(n)
    ? "–"
    : n >= 1000
    ? n.toFixed(0)
    : n >= 10
    ? n.toFixed(1)
    : n.toFixed(2);

/** The Markdown table. */
export function toMarkdown(report: BenchReport): string {
  const lines = [
    `# duplex vs raw Deno`,
    "",
    `${report.date} · Deno ${report.deno} · ${report.machine.cpu} · ${report.machine.cores} cores · ` +
    `${
      report.machine.pinned
        ? "server and load generator pinned to different cores"
        : "not pinned"
    } · ` +
    `${report.mode} mode, ${report.repetitions} interleaved repetition(s), medians (min–max)`,
    "",
    "| Workload | Metric | raw Deno | duplex | duplex/raw | Target |",
    "| --- | --- | --- | --- | --- | --- |",
  ];
  for (const m of report.metrics) {
    const cell = (s: MetricSummary["raw"]) =>
      `${fmt(s.median)} (${fmt(s.min)}–${fmt(s.max)})`;
    const target = m.target === undefined
      ? ""
      : `≤ ${m.target.toFixed(2)} ${m.ratio <= m.target ? "✔" : "✘"}`;
    lines.push(
      `| ${m.workload} | ${m.metric} | ${cell(m.raw)} | ${cell(m.duplex)} | ${
        m.ratio.toFixed(2)
      } | ${target} |`,
    );
  }
  return lines.join("\n") + "\n";
}

const escape = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;");

/** A horizontal bar chart of duplex/raw per metric, with the 1.0 line and targets. */
export function toSvg(report: BenchReport): string {
  const rowHeight = 26;
  const left = 300;
  const width = 760;
  const barMax = width - left - 60;
  const maxRatio = Math.max(
    2,
    ...report.metrics.map((m) => (Number.isFinite(m.ratio) ? m.ratio : 0)),
  );
  const x = (ratio: number) =>
    left + (Math.min(ratio, maxRatio) / maxRatio) * barMax;
  const height = 60 + report.metrics.length * rowHeight + 30;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="20" font-size="14" font-weight="bold">duplex ÷ raw Deno (lower is better for CPU, latency, memory; higher for rates)</text>`,
    `<text x="10" y="38" fill="#555">${
      escape(
        `${report.date} · Deno ${report.deno} · ${report.machine.cpu} · ${report.mode}`,
      )
    }</text>`,
  ];
  report.metrics.forEach((m, i) => {
    const y = 55 + i * rowHeight;
    const good = m.target === undefined ? true : m.ratio <= m.target;
    parts.push(
      `<text x="${left - 8}" y="${y + 15}" text-anchor="end">${
        escape(`${m.workload} · ${m.metric}`)
      }</text>`,
      `<rect x="${left}" y="${y + 3}" width="${
        Math.max(1, x(m.ratio) - left)
      }" height="16" fill="${good ? "#4a90d9" : "#d9534f"}"/>`,
      `<text x="${x(m.ratio) + 4}" y="${y + 15}">${
        Number.isFinite(m.ratio) ? m.ratio.toFixed(2) : "–"
      }</text>`,
    );
    if (m.target !== undefined) {
      parts.push(
        `<line x1="${x(m.target)}" x2="${x(m.target)}" y1="${y + 1}" y2="${
          y + 21
        }" stroke="#333" stroke-dasharray="3,2"/>`,
      );
    }
  });
  const bottom = 55 + report.metrics.length * rowHeight;
  parts.push(
    `<line x1="${x(1)}" x2="${x(1)}" y1="50" y2="${bottom}" stroke="#000"/>`,
    `<text x="${x(1)}" y="${
      bottom + 14
    }" text-anchor="middle">1.0 = raw Deno</text>`,
    `</svg>`,
  );
  return parts.join("\n") + "\n";
}
