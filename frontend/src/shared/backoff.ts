// Reconnect backoff: 0.5 s doubling to a 10 s cap, reset once a connection proves healthy.

export class Backoff {
  private next: number;

  constructor(
    readonly initialMs = 500,
    readonly maxMs = 10_000,
    readonly factor = 2,
  ) {
    this.next = initialMs;
  }

  /** The delay before the next attempt; each call doubles the one after it, up to the cap. */
  nextDelay(): number {
    const d = this.next;
    this.next = Math.min(this.maxMs, this.next * this.factor);
    return d;
  }

  /** The delay nextDelay() would return, without consuming it. */
  peek(): number {
    return this.next;
  }

  reset(): void {
    this.next = this.initialMs;
  }
}
