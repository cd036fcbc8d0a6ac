/**
 * The CLI's REST client for a coordinator: bearer token from `--token`, `PORTRAIT_TOKEN`, or the
 * bootstrap token file of a local data directory; errors `{code, message}` become CliErrors.
 */
import path from 'node:path';
import { API_TOKENS_FILE, readApiTokens } from '../../server/auth/bootstrap-tokens.ts';
import { CliError } from './output.ts';

/** Where `portrait server` listens when started without `--port`; the client commands' default `--server`. */
export const DEFAULT_SERVER = 'http://127.0.0.1:8080';

/** `portrait server`'s default `--data-dir`, where it writes the bootstrap tokens at first start. */
export const DEFAULT_DATA_DIR = './data';

export function resolveToken(options: { token?: string; dataDir?: string }, role: 'operator' | 'auditor'): string {
  const token = options.token ?? process.env.PORTRAIT_TOKEN;
  if (token) return token;
  const dataDir = options.dataDir ?? DEFAULT_DATA_DIR;
  let stored: ReturnType<typeof readApiTokens>;
  try {
    stored = readApiTokens(dataDir);
  } catch (err) {
    throw new CliError('INVALID_ARGUMENT', `cannot read ${path.join(dataDir, API_TOKENS_FILE)}: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (stored) return role === 'operator' ? stored.operator : stored.auditor;
  throw new CliError('UNAUTHENTICATED', `no API token: ${path.join(dataDir, API_TOKENS_FILE)} does not exist (the server writes it in its --data-dir at first start); pass --token, set PORTRAIT_TOKEN, or point --data-dir at the server's data directory`);
}

export async function callApi<T>(server: string, token: string, method: 'GET' | 'POST', pathname: string, body?: unknown): Promise<T> {
  let res: Response;
  try {
    res = await fetch(new URL(`/api/v1${pathname}`, server), {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  } catch (err) {
    throw new CliError('UNAVAILABLE', `cannot reach ${server}: ${err instanceof Error ? err.message : String(err)}`);
  }
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    throw new CliError('INTERNAL', `${server} answered HTTP ${res.status} with non-JSON`);
  }
  if (!res.ok) {
    const e = parsed as { code?: string; message?: string } | undefined;
    throw new CliError(e?.code ?? 'INTERNAL', e?.message ?? `HTTP ${res.status}`);
  }
  return parsed as T;
}
