/**
 * Server metrics: plain counters, cheap enough to leave on, rendered in the
 * Prometheus text format (version 0.0.4).
 *
 * @module
 */

import { ErrorCode, NoReplyCode } from "@duplex-ws/protocol";

/** What the gauges are read from when rendering. */
export interface MetricsSnapshot {
  /** Open connections. */
  connections: number;
  /** Sockets closed by duplex that the runtime still holds. */
  lingering: number;
  /** The backplane's kind, whether it is healthy, the frames it dropped, the history it holds. */
  backplane: {
    kind: string;
    state: "ok" | "degraded";
    dropped?: number;
    history?: { topics: number; bytes: number };
  };
}

/** Error codes counted under their own label besides the library's. */
export const MAX_ERROR_LABELS = 50;

const LIBRARY_CODES: ReadonlySet<string> = new Set([
  ...Object.values(ErrorCode),
  ...Object.values(NoReplyCode),
]);

function bump<K>(map: Map<K, number>, key: K, by = 1): void {
  map.set(key, (map.get(key) ?? 0) + by);
}

/** The bounded label of a close code (see {@linkcode Metrics.closed}). */
export function closeCodeLabel(code: number): string {
  if (code >= 1000 && code <= 1015) return String(code);
  if (code >= 3000 && code <= 3999) return "3xxx";
  if (code >= 4000 && code <= 4999) return "4xxx";
  return "other";
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(
    /\n/g,
    "\\n",
  );
}

/**
 * The counters of one server. Text sizes are counted in UTF-16 code units
 * (bytes for ASCII), so counting costs no encoding.
 *
 * @example
 * ```ts
 * import { Metrics } from "./metrics.ts";
 * const metrics = new Metrics();
 * metrics.messageIn(12);
 * const text = metrics.render({ connections: 1, lingering: 0, backplane: { kind: "local", state: "ok" } });
 * console.assert(text.includes('duplex_messages_total{direction="in"} 1'));
 * ```
 */
export class Metrics {
  #handshakesAccepted = 0;
  #handshakesRefused = new Map<string, number>();
  #messagesIn = 0;
  #messagesOut = 0;
  #bytesIn = 0;
  #bytesOut = 0;
  #errors = new Map<string, number>();
  /** Error codes not the library's that have a series of their own. */
  #appLabels = 0;
  #closes = new Map<string, number>();
  #refreshes = new Map<string, number>();

  /** A handshake was upgraded. */
  handshakeAccepted(): void {
    this.#handshakesAccepted++;
  }

  /** A handshake was refused, for `reason` (`bad_origin`, `auth`…). */
  handshakeRefused(reason: string): void {
    bump(this.#handshakesRefused, reason);
  }

  /** Messages received and sent since the start. */
  get messages(): { in: number; out: number } {
    return { in: this.#messagesIn, out: this.#messagesOut };
  }

  /** A message arrived. */
  messageIn(size: number): void {
    this.#messagesIn++;
    this.#bytesIn += size;
  }

  /** A message was sent. */
  messageOut(size: number): void {
    this.#messagesOut++;
    this.#bytesOut += size;
  }

  /**
   * An error envelope was sent with `code`. Codes are labels, and a client
   * can make the server send codes of its choosing (an answer to a server
   * request that a handler rethrows): the library's codes and the first
   * {@linkcode MAX_ERROR_LABELS} others get their own series, the rest
   * count as `other`.
   */
  error(code: string): void {
    let label = code;
    if (!this.#errors.has(code) && !LIBRARY_CODES.has(code)) {
      if (this.#appLabels < MAX_ERROR_LABELS) this.#appLabels++;
      else label = "other";
    }
    bump(this.#errors, label);
  }

  /**
   * A connection finished with `code`. Peers choose their codes, so the
   * label is bucketed: the codes RFC 6455 and IANA define as themselves,
   * `3xxx` and `4xxx` for the registered and private ranges, else `other`.
   */
  closed(code: number): void {
    bump(this.#closes, closeCodeLabel(code));
  }

  /**
   * A live connection's `auth.refresh` ended with `result`: `ok`,
   * `subject_changed`, or `token_<reason>` (a fixed list).
   */
  refreshed(result: string): void {
    bump(this.#refreshes, result);
  }

  /** The Prometheus text exposition. */
  render(snapshot: MetricsSnapshot): string {
    return renderMetrics(this.families(snapshot));
  }

  /** The metric families, with the gauges read from `snapshot`. */
  families(snapshot: MetricsSnapshot): MetricFamily[] {
    const { backplane } = snapshot;
    const kind = `{kind="${escapeLabel(backplane.kind)}"}`;
    const families: MetricFamily[] = [
      ["duplex_connections", "gauge", "Open WebSocket connections.", [[
        "",
        snapshot.connections,
      ]]],
      [
        "duplex_sockets_lingering",
        "gauge",
        "Sockets closed by duplex that the runtime still holds (they count against the caps).",
        [["", snapshot.lingering]],
      ],
      ...this.#counters(),
      [
        "duplex_backplane_up",
        "gauge",
        "1 when the backplane reaches the other nodes.",
        [[kind, backplane.state === "ok" ? 1 : 0]],
      ],
      [
        "duplex_backplane_dropped_frames_total",
        "counter",
        "Frames from other nodes dropped as too large, malformed or unsigned.",
        [[kind, backplane.dropped ?? 0]],
      ],
    ];
    const { history } = backplane;
    if (history) {
      families.push([
        "duplex_history_topics",
        "gauge",
        "Topics whose history this process holds in memory.",
        [["", history.topics]],
      ], [
        "duplex_history_bytes",
        "gauge",
        "Bytes of history this process holds in memory.",
        [["", history.bytes]],
      ]);
    }
    return families;
  }

  #counters(): MetricFamily[] {
    const by = (label: string, map: Map<string, number>): Sample[] =>
      [...map].map(([key, n]) => [`{${label}="${escapeLabel(key)}"}`, n]);
    return [
      [
        "duplex_handshakes_total",
        "counter",
        "WebSocket handshakes by result and refusal reason.",
        [
          ['{result="accepted"}', this.#handshakesAccepted],
          ...[...this.#handshakesRefused].map(([reason, n]): Sample => [
            `{result="refused",reason="${escapeLabel(reason)}"}`,
            n,
          ]),
        ],
      ],
      ["duplex_messages_total", "counter", "WebSocket messages by direction.", [
        ['{direction="in"}', this.#messagesIn],
        ['{direction="out"}', this.#messagesOut],
      ]],
      [
        "duplex_message_bytes_total",
        "counter",
        "Message sizes by direction (text in UTF-16 code units).",
        [
          ['{direction="in"}', this.#bytesIn],
          ['{direction="out"}', this.#bytesOut],
        ],
      ],
      [
        "duplex_errors_total",
        "counter",
        "Error envelopes sent, by code.",
        by("code", this.#errors),
      ],
      [
        "duplex_closes_total",
        "counter",
        "Finished connections by close code (1006: abnormal).",
        by("code", this.#closes),
      ],
      [
        "duplex_auth_refreshes_total",
        "counter",
        "Token refreshes on live connections by result.",
        by("result", this.#refreshes),
      ],
    ];
  }
}

/** One metric family: name, type, help, samples (labels, `{a="b"}` or empty, and value). */
export type MetricFamily = [
  name: string,
  type: string,
  help: string,
  samples: [labels: string, value: number][],
];

/** One sample of a family. */
type Sample = MetricFamily[3][number];

/** `families` with `label` (`endpoint="/admin"`) added to every sample. */
export function labelled(
  families: MetricFamily[],
  label: string,
): MetricFamily[] {
  return families.map(([name, type, help, samples]) => [
    name,
    type,
    help,
    samples.map(([labels, value]): Sample => [
      `{${[labels.slice(1, -1), label].filter(Boolean).join(",")}}`,
      value,
    ]),
  ]);
}

/**
 * The Prometheus text exposition of `families`: a family that comes more
 * than once (several servers on one port) is written once, with the
 * samples of all.
 */
export function renderMetrics(families: MetricFamily[]): string {
  const merged = new Map<string, string[]>();
  for (const [name, type, help, samples] of families) {
    let lines = merged.get(name);
    if (!lines) {
      merged.set(name, lines = [`# HELP ${name} ${help}`]);
      lines.push(`# TYPE ${name} ${type}`);
    }
    for (const [labels, value] of samples) {
      lines.push(`${name}${labels} ${value}`);
    }
  }
  return [...merged.values()].flat().join("\n") + "\n";
}
