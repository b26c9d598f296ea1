/**
 * Structured logging: one JSON object per line, with a level filter. Every
 * part of the library logs through a {@linkcode Logger}, so an application
 * can hand in its own.
 *
 * @module
 */

/** Log levels, least to most severe. */
export type LogLevel = "debug" | "info" | "warn" | "error" | "silent";

/** Extra structured fields of a log line. Never put payloads or tokens here. */
export type LogFields = Record<string, unknown>;

/** What the library logs through. */
export interface Logger {
  /** Detail for debugging. */
  debug(message: string, fields?: LogFields): void;
  /** Normal events: connections opened and closed, refusals. */
  info(message: string, fields?: LogFields): void;
  /** Something went wrong for one peer. */
  warn(message: string, fields?: LogFields): void;
  /** Something went wrong in the server or an application handler. */
  error(message: string, fields?: LogFields): void;
}

const RANK: Record<LogLevel, number> = {
  debug: 10,
  info: 20,
  warn: 30,
  error: 40,
  silent: 100,
};

/** The accepted level names. */
export const LOG_LEVELS: readonly LogLevel[] = Object.keys(RANK) as LogLevel[];

/** Options of {@linkcode createLogger}. */
export interface LoggerOptions {
  /**
   * The least severe level written.
   * @default {"info"}
   */
  level?: LogLevel;
  /**
   * Where lines go. The default uses the console method of the line's level
   * (`console.debug`/`info` to stdout, `warn`/`error` to stderr), so Deno's
   * OpenTelemetry export gives each line its real severity.
   * @default {(line, level) => console[level](line)}
   */
  write?: (line: string, level: Exclude<LogLevel, "silent">) => void;
}

function writeToConsole(
  line: string,
  level: Exclude<LogLevel, "silent">,
): void {
  console[level](line);
}

/** The most characters a logged string field keeps (a stack keeps 4096). */
export const MAX_LOG_FIELD = 256;

/** Cuts a string a peer may have chosen (an Origin, a path) to a bounded length. */
function bounded(text: string, limit = MAX_LOG_FIELD): string {
  return text.length <= limit
    ? text
    : `${text.slice(0, limit)}…(${text.length - limit} more)`;
}

function serialize(value: unknown): unknown {
  if (value instanceof Error) {
    return {
      name: bounded(value.name),
      message: bounded(value.message, 1024),
      stack: value.stack === undefined ? undefined : bounded(value.stack, 4096),
    };
  }
  return typeof value === "string" ? bounded(value) : value;
}

/**
 * Creates a logger that writes JSON lines: `{"time","level","msg",...fields}`.
 *
 * @example
 * ```ts
 * import { createLogger } from "./logger.ts";
 * const lines: string[] = [];
 * const log = createLogger({ level: "info", write: (line) => lines.push(line) });
 * log.debug("hidden");
 * log.info("connection opened", { id: "c1" });
 * console.assert(lines.length === 1 && JSON.parse(lines[0]).id === "c1");
 * ```
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const { level = "info", write = writeToConsole } = options;
  if (!(level in RANK)) {
    throw new RangeError(
      `Cannot create logger: level "${level}" is not one of ${
        LOG_LEVELS.join(", ")
      }`,
    );
  }
  const threshold = RANK[level];
  const emit =
    (at: Exclude<LogLevel, "silent">) =>
    (message: string, fields?: LogFields) => {
      if (RANK[at] < threshold) return;
      const record: LogFields = {
        time: new Date().toISOString(),
        level: at,
        msg: message,
      };
      if (fields) {
        for (const key in fields) record[key] = serialize(fields[key]);
      }
      write(JSON.stringify(record), at);
    };
  return {
    debug: emit("debug"),
    info: emit("info"),
    warn: emit("warn"),
    error: emit("error"),
  };
}

/** A logger that writes nothing. */
export const silentLogger: Logger = createLogger({ level: "silent" });

/**
 * Logs through `log` at most `perSecond` times a second; the lines past that
 * are counted and reported once a second as `"<message> suppressed"` with
 * their count. For lines a peer can cause at will (handshake refusals).
 *
 * @example
 * ```ts
 * import { throttle } from "./logger.ts";
 * const lines: string[] = [];
 * const log = throttle((message) => lines.push(message), 2);
 * for (let i = 0; i < 10; i++) log("handshake refused", {});
 * console.assert(lines.length === 2);
 * ```
 */
export function throttle(
  log: (message: string, fields: LogFields) => void,
  perSecond: number,
): (message: string, fields: LogFields) => void {
  let windowStart = 0;
  let written = 0;
  let suppressed = 0;
  let lastMessage = "";
  return (message, fields) => {
    const now = performance.now();
    if (now - windowStart >= 1000) {
      if (suppressed > 0) {
        log(`${lastMessage} suppressed`, { count: suppressed });
      }
      windowStart = now;
      written = suppressed = 0;
    }
    if (written < perSecond) {
      written++;
      log(message, fields);
    } else {
      suppressed++;
      lastMessage = message;
    }
  };
}
