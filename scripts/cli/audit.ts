/**
 * `portrait audit export|verify|report|rotate-key`: the compliance team's view of the privacy
 * ledger (docs/ledger.md). The ledger comes from a signed bundle file (`--bundle`), a
 * coordinator (`--server URL`, fetched as a bundle with a read token and verified here, never
 * trusting the server's own verdict), or else the data directory's `ledger.db` (`--data-dir`,
 * default ./data). `verify --json` prints `{ ok, entries, epsilon, delta, firstBadEntry?, reason? }`
 * and exits 1 when the ledger does not verify.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { BudgetCapSchema, verifyBundle } from '../../shared/ledger/bundle.ts';
import type { BudgetCap, LedgerBundle } from '../../shared/ledger/bundle.ts';
import { LedgerEntrySchema } from '../../shared/ledger/entry.ts';
import { buildReport, renderHtml, renderMarkdown } from '../../shared/ledger/report.ts';
import type { LedgerReport } from '../../shared/ledger/report.ts';
import { verifyLedger } from '../../shared/ledger/verify.ts';
import { nodeEd25519Verify } from '../../server/auth/native-ed25519.ts';
import type { VerifyResult } from '../../shared/ledger/verify.ts';
import { openDataDirLedger, readBudgetCap, rotateDataDirKey } from '../../server/ledger/data-dir.ts';
import { LEDGER_DATABASE_FILE, SqliteLedgerStore } from '../../server/ledger/sqlite.ts';
import { acquireDataDirLock } from '../../server/data-dir-lock.ts';
import { callApi, resolveToken } from './api-client.ts';
import { readInputFile } from './inputs.ts';
import { action, CliError, emit, log, parseNumber } from './output.ts';

interface SourceOptions {
  bundle?: string;
  server?: string;
  token?: string;
  dataDir: string;
  publicKey?: string;
  epsilonCap?: string;
  delta?: string;
  json?: boolean;
}

interface Loaded {
  entries: unknown[];
  result: VerifyResult;
  cap: BudgetCap | null;
  enabledHeads: string[] | null;
  source: string;
  /** Set when the ledger was read from a data directory (whose model store `report` then reads). */
  dataDir?: string;
}

function capFrom(options: SourceOptions): BudgetCap | null {
  if (options.epsilonCap === undefined && options.delta === undefined) return null;
  if (options.epsilonCap === undefined || options.delta === undefined) throw new CliError('INVALID_ARGUMENT', '"--epsilon-cap" and "--delta" go together');
  const parsed = BudgetCapSchema.safeParse({ epsilon: parseNumber('epsilon-cap', options.epsilonCap), delta: parseNumber('delta', options.delta) });
  if (!parsed.success) throw new CliError('INVALID_ARGUMENT', `"--epsilon-cap" expected > 0 and "--delta" in (0, 1), got ${options.epsilonCap} and ${options.delta}`);
  return parsed.data;
}

function checkKey(publicKey: string | undefined): string | undefined {
  if (publicKey !== undefined && !/^[0-9a-f]{64}$/.test(publicKey)) throw new CliError('INVALID_ARGUMENT', `"--public-key" expected 32 bytes as 64 lowercase hex digits, got ${publicKey.length} characters`);
  return publicKey;
}

async function fetchBundle(options: SourceOptions & { server: string }): Promise<{ bundle: LedgerBundle; enabledHeads: string[] | null }> {
  const token = resolveToken(options, 'auditor');
  const bundle = await callApi<LedgerBundle>(options.server, token, 'GET', '/ledger/bundle');
  const report = await callApi<LedgerReport>(options.server, token, 'GET', '/ledger/report?format=json');
  return { bundle, enabledHeads: report.sensitiveHeads.enabled };
}

function readDataDir(dataDir: string): Promise<unknown[]> {
  const file = path.join(dataDir, LEDGER_DATABASE_FILE);
  if (!fs.existsSync(file)) throw new CliError('NOT_FOUND', `no ledger at ${file}: pass --data-dir, --server or --bundle`);
  const store = new SqliteLedgerStore(file);
  return store.all().finally(() => store.close());
}

async function load(options: SourceOptions): Promise<Loaded> {
  const publicKey = checkKey(options.publicKey);
  const cap = capFrom(options);
  if (options.bundle || options.server) {
    let raw: unknown;
    let enabledHeads: string[] | null = null;
    if (options.bundle) {
      const text = readInputFile('bundle', options.bundle);
      try {
        raw = JSON.parse(text);
      } catch (err) {
        throw new CliError('INVALID_ARGUMENT', `"bundle": ${path.resolve(options.bundle)} is not JSON: ${err instanceof Error ? err.message : String(err)}`);
      }
    } else {
      const fetched = await fetchBundle(options as SourceOptions & { server: string });
      raw = fetched.bundle;
      enabledHeads = fetched.enabledHeads;
    }
    if (!publicKey) {
      // Without a pinned key the bundle vouches for itself: a forger could re-sign a whole ledger.
      log('warning: no --public-key given: the chain is checked against the key inside the bundle itself, which proves integrity but not who signed it; pass the coordinator\'s published ledger key');
    }
    const result = await verifyBundle(raw, { ...(publicKey ? { publicKey } : {}), verify: nodeEd25519Verify });
    const b = raw as Partial<LedgerBundle>;
    const entries = Array.isArray(b.entries) ? b.entries : [];
    return { entries, result, cap: cap ?? BudgetCapSchema.nullable().catch(null).parse(b.cap ?? null), enabledHeads, source: options.bundle ?? `${options.server}/api/v1/ledger/bundle` };
  }
  const dataDir = path.resolve(options.dataDir);
  const entries = await readDataDir(dataDir);
  // Without flags, the cap the coordinator last ran with (recorded in the data directory).
  const dirCap = cap ?? readBudgetCap(dataDir);
  const result = await verifyLedger(entries, { verify: nodeEd25519Verify, ...(publicKey ? { publicKey } : {}), ...(dirCap ? { delta: dirCap.delta } : {}) });
  return { entries, result, cap: dirCap, enabledHeads: null, source: path.join(dataDir, LEDGER_DATABASE_FILE), dataDir };
}

/**
 * The heads of the data directory's latest model version (the one devices run), from its
 * model.json alone; null when there is none or it cannot be read: the report then says "unknown
 * here", and nothing about the model store can fail a ledger report.
 */
async function latestModelHeads(dataDir: string): Promise<string[] | null> {
  // The model store and tfjs load only for a report, never for verify or export.
  const [{ DATABASE_FILE, openSqliteStores }, { configFromModelJson }] = await Promise.all([import('../../server/storage/sqlite.ts'), import('../../shared/model/artifacts.ts')]);
  if (!fs.existsSync(path.join(dataDir, DATABASE_FILE))) return null;
  try {
    const stores = openSqliteStores(dataDir);
    let latest;
    try {
      latest = await stores.models.latest();
    } finally {
      stores.close();
    }
    if (!latest) return null;
    const modelJson = JSON.parse(fs.readFileSync(path.join(dataDir, 'models', String(latest.version), 'model.json'), 'utf8')) as Parameters<typeof configFromModelJson>[0];
    return [...configFromModelJson(modelJson).heads];
  } catch {
    return null;
  }
}

function sourceOptions(command: Command): Command {
  return command
    .option('--bundle <file>', 'a bundle written by `portrait audit export`')
    .option('--server <url>', 'read the ledger from a coordinator (as a signed bundle, verified here)')
    .option('--token <token>', 'read (auditor) API token for --server (default: PORTRAIT_TOKEN or the data dir token file)')
    .option('--data-dir <dir>', 'read ledger.db from a coordinator data directory', './data')
    .option('--public-key <hex>', 'the trusted genesis ledger public key (hex); default: the one the ledger names')
    .option('--epsilon-cap <e>', 'deployment cap to report against (a bundle carries its own)')
    .option('--delta <d>', 'delta of the cap')
    .option('--json', 'machine-readable output');
}

/** Whether any entry released a model without DP (every cumulative epsilon after it is unbounded). */
function releasedWithoutDp(entries: readonly unknown[]): boolean {
  return entries.some((e) => {
    const parsed = LedgerEntrySchema.safeParse(e);
    return parsed.success && parsed.data.kind === 'round' && parsed.data.round.outcome === 'released' && parsed.data.round.mode === 'none';
  });
}

export function registerAuditCommands(program: Command): void {
  const audit = program.command('audit').description('the signed privacy ledger: export, verify offline, report for compliance');

  sourceOptions(audit.command('verify').description('check the hash chain, every signature, and recompute every epsilon; exit 1 naming the first bad entry')).action(
    action(async (options: SourceOptions) => {
      const { entries, result, source } = await load(options);
      const { headHash: _h, currentKey: _k, rootHash: _r, ...json } = result;
      if (!result.ok) process.exitCode = 1;
      const spent = releasedWithoutDp(entries)
        ? `cumulative epsilon unbounded (a model was released without differential privacy)${result.delta === null ? '' : ` at delta ${result.delta}`}`
        : result.delta === null
          ? 'no differentially private round released yet'
          : `cumulative epsilon ${result.epsilon === null ? 'unbounded' : result.epsilon.toFixed(6)} at delta ${result.delta}`;
      emit(options, json, () => (result.ok ? `ledger OK (${source}): ${result.entries} entries, chain and signatures verified, epsilons recomputed; ${spent}` : `ledger FAILED (${source}) at entry ${result.firstBadEntry}: ${result.reason}`));
    }),
  );

  sourceOptions(audit.command('report').description('per-round and cumulative spend, budget left, mechanisms, sensitive heads, chart against the cap'))
    .option('--format <format>', 'md | html | json', 'md')
    .option('--out <file>', 'write the report to a file instead of stdout')
    .action(
      action(async (options: SourceOptions & { format: string; out?: string }) => {
        if (!['md', 'html', 'json'].includes(options.format)) throw new CliError('INVALID_ARGUMENT', `"--format" expected md, html or json, got ${JSON.stringify(options.format)}`);
        const { entries, result, cap, enabledHeads, dataDir } = await load(options);
        const heads = enabledHeads ?? (dataDir === undefined ? null : await latestModelHeads(dataDir));
        const report = buildReport(entries, result, { cap, enabledHeads: heads, generatedAt: new Date().toISOString() });
        const text = options.format === 'json' ? `${JSON.stringify(report, null, 2)}\n` : options.format === 'html' ? renderHtml(report) : renderMarkdown(report);
        if (!result.ok) process.exitCode = 1;
        if (options.out) {
          fs.writeFileSync(options.out, text);
          emit(options, { out: path.resolve(options.out), ok: result.ok }, () => `report written to ${options.out}`);
        } else process.stdout.write(text);
      }),
    );

  audit
    .command('export')
    .description('write a self-contained signed bundle: entries, public key, accountant parameters, signed head')
    .requiredOption('--out <file>', 'bundle file to write')
    .option('--server <url>', 'export from a running coordinator')
    .option('--token <token>', 'read API token for --server')
    .option('--data-dir <dir>', 'export from a data directory (needs its ledger key; reading is safe while the server runs)', './data')
    .option('--epsilon-cap <e>', 'deployment cap recorded in the bundle (with --data-dir; default: the cap the coordinator last ran with)')
    .option('--delta <d>', 'delta of the cap')
    .option('--force', 'overwrite --out if it exists')
    .option('--json', 'machine-readable output')
    .action(
      action(async (options: SourceOptions & { out: string; force?: boolean }) => {
        if (fs.existsSync(options.out) && options.force !== true) throw new CliError('INVALID_ARGUMENT', `"--out": ${path.resolve(options.out)} exists; refusing to overwrite it (pass --force)`);
        let bundle: LedgerBundle;
        if (options.server) bundle = (await fetchBundle(options as SourceOptions & { server: string })).bundle;
        else {
          const dataDir = path.resolve(options.dataDir);
          if (!fs.existsSync(path.join(dataDir, LEDGER_DATABASE_FILE))) throw new CliError('NOT_FOUND', `no ledger in ${dataDir}`);
          const { ledger, store } = await openDataDirLedger(dataDir, { cap: capFrom(options) ?? readBudgetCap(dataDir), env: {} });
          try {
            bundle = await ledger.exportBundle();
          } finally {
            store.close();
          }
        }
        fs.writeFileSync(options.out, `${JSON.stringify(bundle, null, 2)}\n`);
        emit(options, { out: path.resolve(options.out), entries: bundle.entries.length, publicKey: bundle.publicKey }, () => `${bundle.entries.length} entries written to ${options.out} (genesis key ${bundle.publicKey})`);
      }),
    );

  audit
    .command('rotate-key')
    .description('rotate the ledger signing key of a data directory (a signed entry; refused while a coordinator runs on it)')
    .option('--data-dir <dir>', 'coordinator data directory', './data')
    .option('--reason <text>', 'recorded in the rotation entry', 'scheduled rotation')
    .option('--json', 'machine-readable output')
    .action(
      action(async (options: { dataDir: string; reason: string; json?: boolean }) => {
        const dataDir = path.resolve(options.dataDir);
        // A running coordinator appends to the same ledger from its own idea of the head.
        const release = acquireDataDirLock(dataDir, 'cannot rotate the ledger key');
        const { ledger, store } = await openDataDirLedger(dataDir, { env: {} }).catch((err: unknown) => {
          release();
          throw err;
        });
        try {
          const before = ledger.publicKey;
          const after = await rotateDataDirKey(dataDir, ledger, options.reason);
          log(`ledger key rotated in ${dataDir}`);
          emit(options, { previousKey: before, publicKey: after, entries: ledger.entries }, () => `ledger key rotated: ${before} -> ${after}`);
        } finally {
          store.close();
          release();
        }
      }),
    );
}

