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

function serialize(value: unknown): unknown {
  if (value instanceof Error) {
    return { name: value.name, message: value.message, stack: value.stack };
  }
  return value;
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
