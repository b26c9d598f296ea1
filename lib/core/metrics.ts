/**
 * Server metrics: plain counters, cheap enough to leave on, rendered in the
 * Prometheus text format (version 0.0.4).
 *
 * @module
 */

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

  /** An error envelope was sent with `code`. */
  error(code: string): void {
    bump(this.#errors, code);
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
    const out: string[] = [];
    const family = (
      name: string,
      type: string,
      help: string,
      samples: [string, number][],
    ) => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      for (const [labels, value] of samples) {
        out.push(`${name}${labels} ${value}`);
      }
    };
    family("duplex_connections", "gauge", "Open WebSocket connections.", [[
      "",
      snapshot.connections,
    ]]);
    family(
      "duplex_sockets_lingering",
      "gauge",
      "Sockets closed by duplex that the runtime still holds (they count against the caps).",
      [["", snapshot.lingering]],
    );
    family(
      "duplex_handshakes_total",
      "counter",
      "WebSocket handshakes by result and refusal reason.",
      [
        ['{result="accepted"}', this.#handshakesAccepted],
        ...[...this.#handshakesRefused].map(([reason, n]): [string, number] => [
          `{result="refused",reason="${escapeLabel(reason)}"}`,
          n,
        ]),
      ],
    );
    family(
      "duplex_messages_total",
      "counter",
      "WebSocket messages by direction.",
      [
        ['{direction="in"}', this.#messagesIn],
        ['{direction="out"}', this.#messagesOut],
      ],
    );
    family(
      "duplex_message_bytes_total",
      "counter",
      "Message sizes by direction (text in UTF-16 code units).",
      [
        ['{direction="in"}', this.#bytesIn],
        ['{direction="out"}', this.#bytesOut],
      ],
    );
    family(
      "duplex_errors_total",
      "counter",
      "Error envelopes sent, by code.",
      [...this.#errors].map((
        [code, n],
      ) => [`{code="${escapeLabel(code)}"}`, n]),
    );
    family(
      "duplex_closes_total",
      "counter",
      "Finished connections by close code (1006: abnormal).",
      [...this.#closes].map(([code, n]) => [`{code="${code}"}`, n]),
    );
    family(
      "duplex_auth_refreshes_total",
      "counter",
      "Token refreshes on live connections by result.",
      [...this.#refreshes].map(([result, n]) => [`{result="${result}"}`, n]),
    );
    family(
      "duplex_backplane_up",
      "gauge",
      "1 when the backplane reaches the other nodes.",
      [
        [
          `{kind="${escapeLabel(snapshot.backplane.kind)}"}`,
          snapshot.backplane.state === "ok" ? 1 : 0,
        ],
      ],
    );
    family(
      "duplex_backplane_dropped_frames_total",
      "counter",
      "Frames from other nodes dropped as too large, malformed or unsigned.",
      [[
        `{kind="${escapeLabel(snapshot.backplane.kind)}"}`,
        snapshot.backplane.dropped ?? 0,
      ]],
    );
    const { history } = snapshot.backplane;
    if (history) {
      family(
        "duplex_history_topics",
        "gauge",
        "Topics whose history this process holds in memory.",
        [["", history.topics]],
      );
      family(
        "duplex_history_bytes",
        "gauge",
        "Bytes of history this process holds in memory (UTF-16 code units).",
        [["", history.bytes]],
      );
    }
    return out.join("\n") + "\n";
  }
}
