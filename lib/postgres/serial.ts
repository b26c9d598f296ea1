/**
 * Tasks run one after another per key, in call order: a node's publishes
 * to one topic, which the pool's connections would otherwise reorder.
 *
 * @module
 */

/** One queue per key, forgotten once empty. */
export class SerialByKey {
  readonly #last = new Map<string, Promise<unknown>>();

  /** Runs `task` after the tasks of `key` under way; its outcome is its own. */
  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const before = this.#last.get(key) ?? Promise.resolve();
    const mine = before.then(task, task);
    const settled = mine.catch(() => {});
    this.#last.set(key, settled);
    settled.then(() => {
      if (this.#last.get(key) === settled) this.#last.delete(key);
    });
    return mine;
  }
}
