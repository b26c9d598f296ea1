/**
 * Renders bench results: per comparison, a Markdown table of every server's
 * medians with their ratio to the comparison's baseline, and an SVG bar
 * chart of those ratios.
 */

/** Median, min and max of one metric over the repetitions. */
export interface Summary {
  median: number;
  min: number;
  max: number;
}

/** One metric of one workload, for every server of a comparison. */
export interface MetricRow {
  workload: string;
  metric: string;
  /** Whether a smaller value is better (CPU, latency, memory). */
  lowerIsBetter: boolean;
  /** Server → its summary; absent when the server does not run the workload. */
  values: Record<string, Summary | undefined>;
  /** Server → its median ÷ the baseline's median. */
  ratios: Record<string, number | undefined>;
  /**
   * A target for one server's ratio, when the issues set one, and the
   * servers it must be ahead of.
   */
  target?: { server: string; ratio: number; aheadOf?: string[] };
  /**
   * Whether zero or less is a real measurement here (a yes/no, a count that
   * can be none, a memory change), not a broken run.
   */
  mayBeZero?: boolean;
}

/** Servers measured against one baseline, in the same run. */
export interface Comparison {
  /** The suite's name (`--suite`). */
  suite: string;
  /** What is compared, for people. */
  title: string;
  /** The server every ratio is relative to. */
  baseline: string;
  /** Every server, the baseline first. */
  servers: string[];
  rows: MetricRow[];
  /** How the servers differ, what was skipped and why. */
  notes?: string[];
}

/** Everything one bench run found. */
export interface BenchReport {
  date: string;
  /** The commit measured (`git rev-parse --short HEAD`, `+dirty` when changed). */
  commit?: string;
  deno: string;
  machine: { cpu: string; cores: number; pinned: boolean };
  mode: "full" | "quick";
  repetitions: number;
  comparisons: Comparison[];
}

const fmt = (n: number | undefined) =>
  n === undefined || !Number.isFinite(n)
    ? "–"
    : Math.abs(n) >= 1000
    ? n.toFixed(0)
    : Math.abs(n) >= 10
    ? n.toFixed(1)
    : n.toFixed(2);

/** This machine's CPU model, from /proc/cpuinfo. */
export function cpuModel(): string {
  return Deno.readTextFileSync("/proc/cpuinfo").match(
    /^model name\s*:\s*(.+)$/m,
  )?.[1] ?? "unknown CPU";
}

/**
 * Writes a suite's own record of one comparison measured once
 * (`results/<name>{,-quick}.{json,md}`, with `raw` in the JSON) and returns
 * its Markdown: what `capacity` and `channels` keep besides `latest.*`.
 */
export async function writeOwnRecord(
  name: string,
  comparison: Comparison,
  quick: boolean,
  raw: Record<string, unknown>,
): Promise<string> {
  const report: BenchReport = {
    date: new Date().toISOString(),
    deno: Deno.version.deno,
    machine: {
      cpu: cpuModel(),
      cores: navigator.hardwareConcurrency,
      pinned: false,
    },
    mode: quick ? "quick" : "full",
    repetitions: 1,
    comparisons: [comparison],
  };
  const file = new URL(
    `./results/${name}${quick ? "-quick" : ""}`,
    import.meta.url,
  ).pathname;
  const markdown = toMarkdown(report);
  await Deno.writeTextFile(
    `${file}.json`,
    JSON.stringify({ ...report, ...raw }, null, 2) + "\n",
  );
  await Deno.writeTextFile(`${file}.md`, markdown);
  return markdown;
}

/** Whether a row meets its target. */
export function meetsTarget(row: MetricRow): boolean | undefined {
  if (!row.target) return undefined;
  const { server, aheadOf = [] } = row.target;
  const ratio = row.ratios[server];
  if (ratio === undefined) return false;
  const within = row.lowerIsBetter
    ? ratio <= row.target.ratio
    : ratio >= row.target.ratio;
  const mine = row.values[server]?.median;
  const ahead = aheadOf.every((peer) => {
    const theirs = row.values[peer]?.median;
    if (theirs === undefined || mine === undefined) return true;
    return row.lowerIsBetter ? mine < theirs : mine > theirs;
  });
  return within && ahead;
}

/** The Markdown report: one table per comparison. */
export function toMarkdown(report: BenchReport): string {
  const lines = [
    `# duplex benchmarks`,
    "",
    `${report.date}${
      report.commit ? ` · commit ${report.commit}` : ""
    } · Deno ${report.deno} · ${report.machine.cpu} · ${report.machine.cores} cores · ` +
    `${
      report.machine.pinned
        ? "server and load generator pinned to different cores"
        : "not pinned"
    } · ` +
    `${report.mode} mode, ${report.repetitions} interleaved repetition(s), medians (min–max)`,
  ];
  for (const c of report.comparisons) {
    const others = c.servers.filter((s) => s !== c.baseline);
    lines.push(
      "",
      `## ${c.title}`,
      "",
      `Ratios are to **${c.baseline}**, measured in the same run.`,
      "",
      `| Workload | Metric | ${c.servers.join(" | ")} | ${
        others.map((s) => `${s} ÷ ${c.baseline}`).join(" | ")
      } | Target |`,
      `| --- | --- | ${c.servers.map(() => "---").join(" | ")} | ${
        others.map(() => "---").join(" | ")
      } | --- |`,
    );
    for (const row of c.rows) {
      const cell = (s: Summary | undefined) =>
        s ? `${fmt(s.median)} (${fmt(s.min)}–${fmt(s.max)})` : "–";
      const met = meetsTarget(row);
      const target = row.target
        ? `${row.target.server} ${row.lowerIsBetter ? "≤" : "≥"} ${
          row.target.ratio.toFixed(2)
        }${
          row.target.aheadOf?.length
            ? `, ahead of ${row.target.aheadOf.join(", ")}`
            : ""
        } ${met ? "✔" : "✘"}`
        : "";
      lines.push(
        `| ${row.workload} | ${row.metric} | ${
          c.servers.map((s) => cell(row.values[s])).join(" | ")
        } | ${others.map((s) => fmt(row.ratios[s])).join(" | ")} | ${target} |`,
      );
    }
    if (c.notes?.length) {
      lines.push("", ...c.notes.map((note) => `- ${note}`));
    }
  }
  return lines.join("\n") + "\n";
}

const escape = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;");
const COLOURS = [
  "#4a90d9",
  "#e8a33d",
  "#5cb85c",
  "#9b59b6",
  "#d9534f",
  "#17a2b8",
  "#6c757d",
];

/** Horizontal bars of every ratio, grouped by comparison, with the 1.0 line. */
export function toSvg(report: BenchReport): string {
  const rowHeight = 20;
  const left = 360;
  const width = 860;
  const barMax = width - left - 60;
  const ratios = report.comparisons.flatMap((c) =>
    c.rows.flatMap((r) => Object.values(r.ratios))
  ).filter((r): r is number => r !== undefined && Number.isFinite(r));
  const maxRatio = Math.min(10, Math.max(2, ...ratios));
  const x = (ratio: number) =>
    left + (Math.min(ratio, maxRatio) / maxRatio) * barMax;
  const parts: string[] = [];
  let y = 50;
  for (const c of report.comparisons) {
    const others = c.servers.filter((s) => s !== c.baseline);
    parts.push(
      `<text x="10" y="${y + 14}" font-weight="bold">${
        escape(`${c.title} (÷ ${c.baseline})`)
      }</text>`,
    );
    y += 22;
    const top = y;
    for (const row of c.rows) {
      parts.push(
        `<text x="${left - 8}" y="${y + 12}" text-anchor="end">${
          escape(`${row.workload} · ${row.metric}`)
        }</text>`,
      );
      const band = (rowHeight * others.length) || rowHeight;
      others.forEach((server, i) => {
        const ratio = row.ratios[server];
        if (ratio === undefined || !Number.isFinite(ratio)) return;
        const by = y + i * rowHeight;
        parts.push(
          `<rect x="${left}" y="${by + 3}" width="${
            Math.max(1, x(ratio) - left)
          }" height="${rowHeight - 6}" fill="${COLOURS[i % COLOURS.length]}"/>`,
          `<text x="${x(ratio) + 4}" y="${by + 14}">${
            escape(`${ratio.toFixed(2)} ${server}`)
          }</text>`,
        );
      });
      if (row.target) {
        parts.push(
          `<line x1="${x(row.target.ratio)}" x2="${
            x(row.target.ratio)
          }" y1="${y}" y2="${y + band}" stroke="#333" stroke-dasharray="3,2"/>`,
        );
      }
      y += band;
    }
    parts.push(
      `<line x1="${x(1)}" x2="${x(1)}" y1="${top}" y2="${y}" stroke="#000"/>`,
    );
    y += 16;
  }
  const height = y + 20;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="20" font-size="14" font-weight="bold">Ratios to each comparison's baseline (lower is better for CPU, latency, memory; higher for rates)</text>`,
    `<text x="10" y="38" fill="#555">${
      escape(
        `${report.date}${
          report.commit ? ` · commit ${report.commit}` : ""
        } · Deno ${report.deno} · ${report.machine.cpu} · ${report.mode}`,
      )
    }</text>`,
    ...parts,
    `</svg>`,
    "",
  ].join("\n");
}
