/**
 * Test seam, never set in production: `PORTRAIT_TEST_CRASH_AT=<point>` makes the coordinator
 * process kill itself with SIGKILL at that point of a round's ledger write, so the crash tests
 * can show the ledger stays consistent and never under-counts (docs/ledger.md).
 *   before-ledger     the round is about to be entered, nothing written yet
 *   mid-ledger-write  the row is inserted but its transaction not committed
 *   after-ledger      the entry is committed, the sum not yet decoded
 */
export const CRASH_POINTS = ['before-ledger', 'mid-ledger-write', 'after-ledger'] as const;
export type CrashPoint = (typeof CRASH_POINTS)[number];
export const CRASH_ENV = 'PORTRAIT_TEST_CRASH_AT';

export type CrashHook = (point: CrashPoint) => void;

export function crashHookFromEnv(env: Record<string, string | undefined>): CrashHook | undefined {
  const wanted = env[CRASH_ENV];
  if (wanted === undefined || wanted === '') return undefined;
  if (!(CRASH_POINTS as readonly string[]).includes(wanted)) throw new RangeError(`"${CRASH_ENV}" expected one of ${CRASH_POINTS.join(', ')}, got ${JSON.stringify(wanted)}`);
  return (point) => {
    if (point === wanted) process.kill(process.pid, 'SIGKILL');
  };
}
