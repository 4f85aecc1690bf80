/**
 * Group commit: a batch is handled while the items handed in meanwhile wait, and go together
 * in the next batch. Alone, an item goes at once; under load the batches grow instead of
 * running side by side, each with its own statements, plans and row locks. bipbip's end
 * reports come a few at a time as jobs end: handled as they came, 1,000 trivial jobs made
 * ~200 batches of ~5 (bench:e2e --pg-stats).
 */
export class GroupCommit<T, R> {
  #waiting: { items: T[]; resolve: (r: R) => void; reject: (e: unknown) => void }[] = [];
  #busy = false;

  /** `handle` gets the items of every submission of a batch, in the order they came. */
  constructor(readonly handle: (items: T[]) => Promise<R>) {}

  /** Resolves to the result of the batch `items` went in (rejects with its failure). */
  submit(items: T[]): Promise<R> {
    const p = new Promise<R>((resolve, reject) => {
      this.#waiting.push({ items, resolve, reject });
    });
    if (!this.#busy) this.#drain();
    return p;
  }

  async #drain(): Promise<void> {
    this.#busy = true;
    while (this.#waiting.length > 0) {
      const batch = this.#waiting;
      this.#waiting = [];
      try {
        const r = await this.handle(batch.flatMap((b) => b.items));
        for (const b of batch) b.resolve(r);
      } catch (e) {
        for (const b of batch) b.reject(e);
      }
    }
    this.#busy = false;
  }
}
