/**
 * `portrait token create|list|revoke`: the REST API's bearer tokens in a data directory's
 * database (server/storage/sqlite-tokens.ts), or a cluster's PostgreSQL database (`--postgres`),
 * for the operator who holds it. `create --role
 * auditor --ttl 30d` prints a new token once (only its hash is stored); `revoke ID` ends one; an
 * expired or revoked token is refused UNAUTHENTICATED, saying which. Works while the coordinator
 * runs: it reads the table at every request, so a revocation holds from its next one.
 */
import type { Command } from 'commander';
import type { ApiTokenStore } from '../../server/storage/stores.ts';
import { action, CliError, emit, log, parseInteger } from './output.ts';

const ROLES = ['operator', 'auditor'] as const;
const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3_600, d: 86_400 };
/** Ten years: a longer token is one that never expires, which is what leaving out --ttl says. */
const MAX_TTL_SECONDS = 3_650 * 86_400;

/** `30d`, `12h`, `90m`, `3600s` in seconds, at least one and at most ten years. */
export function parseTtl(value: string): number {
  const match = /^(\d{1,9})([smhd])$/.exec(value.trim());
  const seconds = match ? Number(match[1]) * (UNIT_SECONDS[match[2] as string] as number) : Number.NaN;
  if (!(seconds >= 1 && seconds <= MAX_TTL_SECONDS)) throw new CliError('INVALID_ARGUMENT', `"ttl" expected a duration like 30d, 12h, 90m or 3600s, from 1s to 3650d, got ${JSON.stringify(value)}`);
  return seconds;
}

interface StoreOptions {
  dataDir: string;
  postgres?: string;
  json?: boolean;
}

/** Runs `use` on the token store of --postgres (a cluster) or else of --data-dir, closed after. */
async function withTokenStore<T>(options: StoreOptions, use: (store: ApiTokenStore) => Promise<T>): Promise<T> {
  if (options.postgres !== undefined) {
    const { openPostgresStores } = await import('../../server/storage/postgres.ts');
    const stores = await openPostgresStores(options.postgres);
    try {
      return await use(stores.tokens);
    } finally {
      await stores.close();
    }
  }
  const { openApiTokenStore } = await import('../../server/storage/sqlite-tokens.ts');
  const store = openApiTokenStore(options.dataDir);
  try {
    return await use(store);
  } finally {
    store.close();
  }
}

const POSTGRES_HELP = "a cluster's PostgreSQL database instead of a data directory";

export function registerTokenCommands(program: Command): void {
  const token = program.command('token').description("the REST API's bearer tokens in a data directory or a cluster's database (create with a role and expiry, list, revoke)");

  token
    .command('create')
    .description('create an API token and print it (the only time it is shown; the database keeps its hash)')
    .requiredOption('--role <role>', `what it may do: ${ROLES.join(' (launch, read, issue enrollment tokens) or ')} (read)`)
    .option('--name <name>', 'what it is for, shown by token list', '')
    .option('--ttl <duration>', 'how long it is valid, e.g. 30d, 12h, 90m (default: until revoked)')
    .option('--data-dir <dir>', "the coordinator's data directory", './data')
    .option('--postgres <url>', POSTGRES_HELP)
    .option('--json', 'machine-readable output')
    .action(
      action(async (options: StoreOptions & { role: string; name: string; ttl?: string }) => {
        if (!(ROLES as readonly string[]).includes(options.role)) throw new CliError('INVALID_ARGUMENT', `"role" expected ${ROLES.join(' or ')}, got ${JSON.stringify(options.role)}`);
        const role = options.role as (typeof ROLES)[number];
        const now = Date.now();
        const expiresAt = options.ttl === undefined ? null : new Date(now + parseTtl(options.ttl) * 1000).toISOString();
        const { createApiToken } = await import('../../server/auth/api-tokens.ts');
        const created = await withTokenStore(options, (store) => createApiToken(store, options.name || role, role, new Date(now).toISOString(), undefined, expiresAt));
        if (!options.json) log(`API token ${created.record.id} (${role}) ${expiresAt ? `valid until ${expiresAt}` : 'valid until revoked'}; it is not shown again`);
        emit(options, { ...created.record, token: created.token }, () => created.token);
      }),
    );

  token
    .command('list')
    .description('list the API tokens (never the tokens themselves): id, name, role, expiry, revocation')
    .option('--data-dir <dir>', "the coordinator's data directory", './data')
    .option('--postgres <url>', POSTGRES_HELP)
    .option('--json', 'machine-readable output')
    .action(
      action(async (options: StoreOptions) => {
        const { tokenStatus } = await import('../../server/auth/api-tokens.ts');
        const now = Date.now();
        const tokens = (await withTokenStore(options, (store) => store.all())).map(({ hash: _hash, ...record }) => ({ ...record, status: tokenStatus(record, now) }));
        emit(options, { tokens }, () => tokens.map((t) => `${t.id}\t${t.role}\t${t.status}\t${t.expiresAt ?? 'no expiry'}\t${t.name}`).join('\n'));
      }),
    );

  token
    .command('revoke')
    .description('revoke an API token by its id (token list); it is refused from the next request on')
    .argument('<id>', 'the token id')
    .option('--data-dir <dir>', "the coordinator's data directory", './data')
    .option('--postgres <url>', POSTGRES_HELP)
    .option('--json', 'machine-readable output')
    .action(
      action(async (id: string, options: StoreOptions) => {
        const tokenId = parseInteger('id', id, 1);
        const revoked = await withTokenStore(options, (store) => store.revoke(tokenId, new Date().toISOString()));
        if (!revoked) throw new CliError('NOT_FOUND', `"id": no API token ${tokenId}`);
        emit(options, revoked, () => `API token ${revoked.id} (${revoked.role}, ${JSON.stringify(revoked.name)}) revoked at ${revoked.revokedAt}`);
      }),
    );
}
