/**
 * Device handshakes in paced turns. When thousands of devices (re)connect at once, every one of
 * them is a WebSocket upgrade, an engine.io open and a Socket.IO connect with a token check (about
 * 0.5 ms of CPU here); taken as they arrive, a burst of a few hundred holds the event loop for
 * hundreds of milliseconds, and /healthz, REST and round deadlines wait behind it. The pacer runs
 * such work in turns of at most `sliceMs`, one turn per event-loop iteration (setImmediate), so
 * everything else gets the loop between turns; within a turn, first come, first served.
 */
export class HandshakePacer {
  private queue: (() => void)[] = [];
  private head = 0;
  private scheduled = false;

  constructor(private readonly sliceMs = 5) {
    if (!(sliceMs > 0)) throw new RangeError(`"sliceMs" expected a positive number, got ${sliceMs}`);
  }

  /** Handshakes waiting for their turn. */
  get waiting(): number {
    return this.queue.length - this.head;
  }

  /** Runs `work` in a coming turn. */
  admit(work: () => void): void {
    this.queue.push(work);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.turn());
    }
  }

  private turn(): void {
    const ends = performance.now() + this.sliceMs;
    do {
      const work = this.queue[this.head] as () => void;
      this.queue[this.head++] = noop;
      try {
        work();
      } catch {
        // Each admitted handshake answers its own errors; one failing must not stall the others.
      }
    } while (this.head < this.queue.length && performance.now() < ends);
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
      this.scheduled = false;
    } else {
      if (this.head > 1024 && this.head * 2 > this.queue.length) {
        this.queue = this.queue.slice(this.head);
        this.head = 0;
      }
      setImmediate(() => this.turn());
    }
  }
}

function noop(): void {}
