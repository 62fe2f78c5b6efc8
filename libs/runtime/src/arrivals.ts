/**
 * Items that arrive from a callback (a consumer's deliveries), taken in batches by one reader that
 * waits a while when there are none: under load a batch is whatever arrived meanwhile, and when
 * traffic is light the reader gets the first item at once.
 */
export class Arrivals<T> {
  #items: T[] = [];
  #wake: (() => void) | undefined;

  push(item: T): void {
    this.#items.push(item);
    this.#wake?.();
  }

  /** Ends a wait in progress without an item: the reader has something else to do. */
  wake(): void {
    this.#wake?.();
  }

  /** Up to `maxItems`; when there are none and `wait` is true, waits up to `waitMs` for one (or a wake) first. */
  async take(maxItems: number, waitMs: number, wait = true): Promise<T[]> {
    if (this.#items.length === 0 && wait) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, waitMs);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = undefined;
    }
    const taken = this.#items.length <= maxItems ? this.#items : this.#items.slice(0, maxItems);
    this.#items = taken === this.#items ? [] : this.#items.slice(maxItems);
    return taken;
  }

  clear(): void {
    this.#items = [];
  }
}
