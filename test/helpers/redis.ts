/**
 * Redis for the tests: whether the local server (127.0.0.1:6379, as CI's service provides it)
 * answers. Outside CI a missing server skips the cluster tests with a warning; in CI (CI=true) it
 * fails the run, so a broken service cannot pass as green.
 */
import { createClient } from 'redis';

export const REDIS_URL = 'redis://127.0.0.1:6379';

/** True when the server answers PING; false (with a warning naming why) outside CI; throws in CI. */
export async function redisAvailable(): Promise<boolean> {
  const client = createClient({ url: REDIS_URL, socket: { connectTimeout: 3_000, reconnectStrategy: false } });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.ping();
    return true;
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    if (process.env.CI === 'true') throw new Error(`Redis at ${REDIS_URL} is unreachable (${reason}); CI runs the cluster tests, so its service must be up`);
    console.warn(`Skipping the cluster tests: Redis at ${REDIS_URL} is unreachable (${reason})`);
    return false;
  } finally {
    if (client.isOpen) client.destroy();
  }
}
