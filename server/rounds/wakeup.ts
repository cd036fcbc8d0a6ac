/**
 * Wakes the round loop early when something it waits for may have changed. A notify that arrives
 * while nobody waits is kept (latched) and ends the next wait at once, so a launch or a stop that
 * lands while the loop is between its check and its wait (an async store call, say) is never lost.
 */
export class Wakeup {
  private waiters: (() => void)[] = [];
  private pending = false;

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
      const timer = setTimeout(done, Math.max(0, timeoutMs));
      const self = this;
      function done(): void {
        clearTimeout(timer);
        self.waiters = self.waiters.filter((w) => w !== done);
        resolve();
      }
      this.waiters.push(done);
    });
  }
}
