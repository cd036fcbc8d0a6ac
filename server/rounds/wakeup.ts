/**
 * Wakes the round loop early when something it waits for may have changed. A notify that arrives
 * while nobody waits is kept (latched) and ends the next wait at once, so a launch or a stop that
 * lands while the loop is between its check and its wait (an async store call, say) is never lost.
 */
/** The timer functions a wait uses: the host's by default, a virtual clock's in the round-loop property test. */
export interface Timers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const HOST_TIMERS: Timers = {
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

export class Wakeup {
  private waiters: (() => void)[] = [];
  private pending = false;

  constructor(private readonly timers: Timers = HOST_TIMERS) {}

  /** True while someone waits (the round loop is idle until a notify or its timeout). */
  get waiting(): boolean {
    return this.waiters.length > 0;
  }

  notify(): void {
    const waiters = this.waiters;
    this.waiters = [];
    this.pending = waiters.length === 0;
    for (const w of waiters) w();
  }

  wait(timeoutMs: number): Promise<void> {
    if (this.pending) {
      this.pending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const timers = this.timers;
      const timer = timers.setTimeout(done, Math.max(0, timeoutMs));
      const self = this;
      function done(): void {
        timers.clearTimeout(timer);
        self.waiters = self.waiters.filter((w) => w !== done);
        resolve();
      }
      this.waiters.push(done);
    });
  }
}
