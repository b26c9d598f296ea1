/**
 * A promise and its settlers, for `ready()` (what `Promise.withResolvers`
 * gives, for older browsers).
 *
 * @module
 */

/** A promise with its `resolve` and `reject`. */
export interface Deferred {
  /** The promise. */
  readonly promise: Promise<void>;
  /** Resolves it. */
  resolve(): void;
  /** Rejects it. */
  reject(error: Error): void;
}

/** Makes a {@linkcode Deferred}. */
export function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<void>((yes, no) => {
    resolve = yes;
    reject = no;
  });
  return { promise, resolve, reject };
}
