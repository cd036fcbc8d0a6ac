/**
 * `portrait audit export|verify|report|rotate-key`: the compliance team's view of the privacy
 * ledger (docs/ledger.md). The ledger comes from a signed bundle file (`--bundle`), a
 * coordinator (`--server URL`, fetched as a bundle with a read token and verified here, never
 * trusting the server's own verdict), or else the data directory's `ledger.db` (`--data-dir`,
 * default ./data). The auditor keeps the ledger's tree head (`--save-head FILE`) and later
 * requires the ledger to extend it consistently (`--since FILE`, RFC 9162 Sec. 2.1.4); from a
 * data directory or a server, every published model version must also have its release entry, and
 * its files (as stored, or as the server serves them) the digest its publication entry binds.
 * Devices' receipts (`--receipt FILE...`, shared/ledger/receipt.ts) must each find their round's
 * release entry in the ledger under their signed head. `verify --json` prints `{ ok, entries,
 * epsilon, delta, firstBadEntry?, reason?, head?, models?, receipts? }` and exits 1 when the ledger
 * does not verify.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { BudgetCapSchema, verifyBundle } from '../../shared/ledger/bundle.ts';
import type { BudgetCap, LedgerBundle } from '../../shared/ledger/bundle.ts';
import { describeIssues } from '../../shared/protocol/messages.ts';
import { fromHex } from '../../shared/ledger/digest.ts';
import { LedgerEntrySchema } from '../../shared/ledger/entry.ts';
import type { LedgerEntry } from '../../shared/ledger/entry.ts';
import { verifyConsistency } from '../../shared/ledger/merkle.ts';
import { modelDigestProblems, unreleasedModels } from '../../shared/ledger/models.ts';
import type { ReceiptCheck } from '../../shared/ledger/receipt.ts';
import type { PublishedModel, StoredModel } from '../../shared/ledger/models.ts';
import { buildReport, renderHtml, renderMarkdown } from '../../shared/ledger/report.ts';
import type { LedgerReport } from '../../shared/ledger/report.ts';
import { describeTreeHead, KeptTreeHeadSchema, TREE_HEAD_FORMAT } from '../../shared/ledger/tree-head.ts';
import type { KeptHeadCheck, KeptTreeHead, SignedTreeHead } from '../../shared/ledger/tree-head.ts';
import { verifyLedgerWithTotal } from '../../shared/ledger/verify.ts';
import { nodeEd25519Verify } from '../../server/auth/native-ed25519.ts';
import type { VerifyResult } from '../../shared/ledger/verify.ts';
import { LEDGER_KEY_FILE_ENV, ledgerKeyFile, openDataDirLedger, readBudgetCap, rotateLedgerKeyFile, softwareVersion } from '../../server/ledger/data-dir.ts';
import { readPublishedModels, readPublishedModelsFrom } from '../../server/ledger/models.ts';
import { PrivacyLedger } from '../../server/ledger/ledger.ts';
import { resolveLedgerKey } from '../../server/ledger/key.ts';
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
  /** A cluster's PostgreSQL database, read instead of the data directory. */
  postgres?: string;
  publicKey?: string;
  epsilonCap?: string;
  delta?: string;
  json?: boolean;
  /** A tree head kept earlier (--save-head, or a bundle): the ledger must extend it. */
  since?: string;
  /** Where to keep this ledger's tree head, once it verifies. */
  saveHead?: string;
  /** Files of device receipts the ledger must agree with. */
  receipt?: string[];
}

interface Loaded {
  entries: unknown[];
  result: VerifyResult;
  cap: BudgetCap | null;
  enabledHeads: string[] | null;
  source: string;
  /** Set when the ledger was read from a data directory (whose model store `report` then reads). */
  dataDir?: string;
  /** The head to keep when the ledger verifies: a bundle's signed head, or one computed here from a data directory. */
  head: KeptTreeHead | null;
  /** The published model versions checked against the ledger (data directory or server); null when none were. */
  models: { published: number; withoutRelease: number[]; digestMismatch: number[]; versionOnly: number[] } | null;
}

/** How the files of the published versions were checked, for the verify summary. */
function describeDigestCheck(models: NonNullable<Loaded['models']>): string {
  const bound = models.published - models.versionOnly.length;
  const byVersion = models.versionOnly.length === 0 ? '' : `; ${models.versionOnly.length === models.published ? 'all' : models.versionOnly.length} (${models.versionOnly.join(', ')}) checked by version only: the ledger predates publication entries, which bind a version's files to their digest`;
  return `${bound > 0 ? `, ${bound === models.published ? 'each' : bound} with files matching the digest its publication entry binds` : ''}${byVersion}`;
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

/** `--since FILE`: a head written by --save-head, or a whole bundle kept (its head). */
function readKeptHead(file: string): KeptHeadCheck {
  const text = readInputFile('since', file);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new CliError('INVALID_ARGUMENT', `"since": ${path.resolve(file)} is not JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  const candidate = raw !== null && typeof raw === 'object' && 'entries' in raw && 'head' in raw ? (raw as { head: unknown }).head : raw;
  const parsed = KeptTreeHeadSchema.safeParse(candidate);
  if (!parsed.success) throw new CliError('INVALID_ARGUMENT', `"since": ${path.resolve(file)} is not a ${TREE_HEAD_FORMAT} tree head (audit verify --save-head writes one) or a bundle: ${describeIssues(parsed.error)}`);
  return { head: parsed.data, name: `the tree head kept in ${file}` };
}

/**
 * With a server and a kept head, the coordinator is also asked for the consistency proof from the
 * kept head to the head it just signed, and the proof is checked (RFC 9162 Sec. 2.1.4.2): the
 * check a monitor that does not keep the entries relies on. The reason it fails, or null.
 */
async function servedConsistencyProblem(options: SourceOptions & { server: string }, kept: KeptHeadCheck, current: SignedTreeHead): Promise<string | null> {
  const first = kept.head.treeSize;
  const served = await callApi<{ proof: string[] }>(options.server, resolveToken(options, 'auditor'), 'GET', `/ledger/consistency?first=${first}&second=${current.treeSize}`);
  const hash = (hex: string) => fromHex('hash', hex, 32);
  let ok = false;
  try {
    ok = await verifyConsistency(first, current.treeSize, hash(kept.head.rootHash), hash(current.rootHash), served.proof.map(hash));
  } catch {
    ok = false;
  }
  return ok ? null : `the coordinator's consistency proof from ${kept.name} to its tree head of size ${current.treeSize} does not verify (RFC 9162 Sec. 2.1.4.2)`;
}

/**
 * Every published model version against the verified entries: the result fails naming each
 * without a release entry, or whose files disagree with the digest its publication entry binds.
 */
function checkModels(result: VerifyResult, models: readonly StoredModel[], entries: readonly LedgerEntry[]): { result: VerifyResult; models: NonNullable<Loaded['models']> } {
  const unreleased = unreleasedModels(models, entries);
  const digests = modelDigestProblems(models, entries);
  const problems = [...unreleased, ...digests.problems];
  const summary = { published: models.length, withoutRelease: unreleased.map((p) => p.version), digestMismatch: digests.problems.map((p) => p.version), versionOnly: digests.versionOnly };
  if (!result.ok || problems.length === 0) return { result, models: summary };
  return { result: { ...result, ok: false, reason: problems.map((p) => p.reason).join('; ') }, models: summary };
}

/** Each listed version's digest as the server serves it (model.json then weights.bin, public routes); null, with why, when it does not. */
async function servedModels(server: string, models: readonly PublishedModel[]): Promise<StoredModel[]> {
  const get = async (url: URL): Promise<Buffer> => {
    const res = await fetch(url);
    if (!res.ok) {
      const body = (await res.json().catch(() => ({}))) as { code?: string };
      throw new Error(`HTTP ${res.status}${body.code ? ` ${body.code}` : ''}`);
    }
    return Buffer.from(await res.arrayBuffer());
  };
  return Promise.all(
    models.map(async ({ version, roundId, parentVersion }) => {
      try {
        const [json, weights] = await Promise.all([get(new URL(`/models/${version}/model.json`, server)), get(new URL(`/models/${version}/weights.bin`, server))]);
        return { version, roundId, parentVersion, sha256: createHash('sha256').update(json).update(weights).digest('hex') };
      } catch (err) {
        log(`model version ${version}: ${server} does not serve its files (${err instanceof Error ? err.message : String(err)})`);
        return { version, roundId, parentVersion, sha256: null };
      }
    }),
  );
}

/**
 * `--receipt FILE`: one receipt, a JSON array of them (FederatedClient.receipts()), or a device's
 * privacy ledger file (`{ receipts: [{ keptAt, receipt }] }`), each named for the reasons.
 */
function readReceipts(files: readonly string[]): ReceiptCheck[] {
  return files.flatMap((file) => {
    const text = readInputFile('receipt', file);
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (err) {
      throw new CliError('INVALID_ARGUMENT', `"receipt": ${path.resolve(file)} is not JSON: ${err instanceof Error ? err.message : String(err)}`);
    }
    const kept = raw !== null && typeof raw === 'object' && !Array.isArray(raw) && Array.isArray((raw as { receipts?: unknown }).receipts) ? (raw as { receipts: unknown[] }).receipts : null;
    const list = Array.isArray(raw) ? raw : kept ?? [raw];
    if (list.length === 0) throw new CliError('INVALID_ARGUMENT', `"receipt": ${path.resolve(file)} holds no receipts`);
    const unwrap = (item: unknown) => (item !== null && typeof item === 'object' && 'receipt' in item && 'keptAt' in item ? (item as { receipt: unknown }).receipt : item);
    return list.map((item, i) => ({ receipt: unwrap(item), name: list.length === 1 ? `the receipt in ${file}` : `receipt ${i + 1} of ${list.length} in ${file}` }));
  });
}

function readDataDir(dataDir: string): Promise<unknown[]> {
  const file = path.join(dataDir, LEDGER_DATABASE_FILE);
  if (!fs.existsSync(file)) throw new CliError('NOT_FOUND', `no ledger at ${file}: pass --data-dir, --server or --bundle`);
  const store = new SqliteLedgerStore(file);
  return store.all().finally(() => store.close());
}

/**
 * Reads and verifies the ledger of --data-dir, --bundle or --server, with --since and the devices'
 * --receipt files held to it (the receipts against the entries as stored, whether or not their
 * chain verified: a deleted round is named by the receipt that witnessed it).
 */
async function loadLedger(options: SourceOptions): Promise<Loaded> {
  const publicKey = checkKey(options.publicKey);
  const receipts = readReceipts(options.receipt ?? []);
  const witnessed = receipts.length > 0 ? { receipts } : {};
  const cap = capFrom(options);
  const since = options.since === undefined ? undefined : readKeptHead(options.since);
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
    if (!publicKey && !since) {
      // Without a pinned key or a kept head the bundle vouches for itself: a forger could re-sign a whole ledger.
      log('warning: no --public-key given: the chain is checked against the key inside the bundle itself, which proves integrity but not who signed it; pass the coordinator\'s published ledger key (and keep its tree head: --save-head, then --since)');
    }
    let result = await verifyBundle(raw, { ...(publicKey ? { publicKey } : {}), ...(since ? { since } : {}), ...witnessed, verify: nodeEd25519Verify });
    const b = raw as Partial<LedgerBundle>;
    const entries = Array.isArray(b.entries) ? b.entries : [];
    let models: Loaded['models'] = null;
    if (result.ok && options.server) {
      const server = options as SourceOptions & { server: string };
      const bundle = raw as LedgerBundle;
      const problem = since ? await servedConsistencyProblem(server, since, bundle.head) : null;
      if (problem) result = { ...result, ok: false, reason: problem };
      const listed = await callApi<{ models: PublishedModel[] }>(server.server, resolveToken(server, 'auditor'), 'GET', '/models');
      ({ result, models } = checkModels(result, await servedModels(server.server, listed.models), entries.map((e) => LedgerEntrySchema.parse(e))));
    }
    return { entries, result, cap: cap ?? BudgetCapSchema.nullable().catch(null).parse(b.cap ?? null), enabledHeads, source: options.bundle ?? `${options.server}/api/v1/ledger/bundle`, head: result.ok ? (b.head as SignedTreeHead) : null, models };
  }
  if (options.postgres !== undefined) return loadPostgresLedger(options.postgres, { cap, publicKey, since, witnessed });
  const dataDir = path.resolve(options.dataDir);
  const entries = await readDataDir(dataDir);
  // Without flags, the cap the coordinator last ran with (recorded in the data directory).
  const dirCap = cap ?? readBudgetCap(dataDir);
  const verified = await verifyLedgerWithTotal(entries, { verify: nodeEd25519Verify, ...(publicKey ? { publicKey } : {}), ...(dirCap ? { delta: dirCap.delta } : {}), ...(since ? { since } : {}), ...witnessed });
  let { result } = verified;
  let models: Loaded['models'] = null;
  const published = readPublishedModels(dataDir);
  if (published !== null && verified.entries !== null) ({ result, models } = checkModels(result, published, verified.entries));
  // From a data directory the head is computed here, not signed: the auditor vouches for it to itself.
  const genesis = verified.entries?.[0];
  const head: KeptTreeHead | null = result.ok && genesis ? { format: TREE_HEAD_FORMAT, genesisKey: genesis.keyId, treeSize: result.entries, rootHash: result.rootHash, timestamp: Date.now() } : null;
  return { entries, result, cap: dirCap, enabledHeads: null, source: path.join(dataDir, LEDGER_DATABASE_FILE), dataDir, head, models };
}

/**
 * A cluster's ledger and model versions, read from its PostgreSQL database (`--postgres URL`) and
 * verified here exactly as a data directory's: the same checks, the same verdict.
 */
async function loadPostgresLedger(url: string, checks: { cap: BudgetCap | null | undefined; publicKey: string | undefined; since: KeptHeadCheck | undefined; witnessed: { receipts?: ReturnType<typeof readReceipts> } }): Promise<Loaded> {
  const { openPostgresStores, withoutPassword } = await import('../../server/storage/postgres.ts');
  const stores = await openPostgresStores(url);
  try {
    const entries = await stores.ledger.all();
    const { cap, publicKey, since, witnessed } = checks;
    const verified = await verifyLedgerWithTotal(entries, { verify: nodeEd25519Verify, ...(publicKey ? { publicKey } : {}), ...(cap ? { delta: cap.delta } : {}), ...(since ? { since } : {}), ...witnessed });
    let { result } = verified;
    let models: Loaded['models'] = null;
    if (verified.entries !== null) ({ result, models } = checkModels(result, await readPublishedModelsFrom(stores.models), verified.entries));
    const genesis = verified.entries?.[0];
    const head: KeptTreeHead | null = result.ok && genesis ? { format: TREE_HEAD_FORMAT, genesisKey: genesis.keyId, treeSize: result.entries, rootHash: result.rootHash, timestamp: Date.now() } : null;
    return { entries, result, cap: cap ?? null, enabledHeads: null, source: withoutPassword(url), head, models };
  } finally {
    await stores.close();
  }
}

/** `--save-head FILE`: keeps the head of a ledger that verified; a ledger that did not leaves the file as it was. */
function saveHead(file: string | undefined, head: KeptTreeHead | null): void {
  if (file === undefined) return;
  if (head === null) {
    log(`tree head not saved to ${file}: the ledger does not verify`);
    return;
  }
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify(head, null, 2)}\n`);
  fs.renameSync(tmp, file);
  log(`tree head kept in ${file} (${describeTreeHead(head)}): pass it as --since next time`);
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
    .option('--postgres <url>', "read a cluster's ledger and model versions from its PostgreSQL database")
    .option('--public-key <hex>', 'the trusted genesis ledger public key (hex); default: the one the ledger names')
    .option('--epsilon-cap <e>', 'deployment cap to report against (a bundle carries its own)')
    .option('--delta <d>', 'delta of the cap')
    .option('--since <file>', 'a tree head kept earlier (--save-head, or a bundle): fail unless the ledger extends it consistently')
    .option('--save-head <file>', "keep the ledger's tree head in this file once it verifies (for a later --since)")
    .option('--receipt <file...>', "device receipts (one, a JSON array, or a device's privacy ledger file): fail unless the ledger holds each witnessed release entry under its signed head")
    .option('--json', 'machine-readable output');
}

/** Whether any entry released a model without DP (every cumulative epsilon after it is unbounded). */
function releasedWithoutDp(entries: readonly unknown[]): boolean {
  return entries.some((e) => {
    const parsed = LedgerEntrySchema.safeParse(e);
    return parsed.success && parsed.data.kind === 'round' && parsed.data.round.outcome === 'released' && parsed.data.round.mode === 'none';
  });
}

/** The ledger key file an audit command signs with (--ledger-key, else the environment, else the data directory's); NOT_FOUND when absent. */
function existingKeyFile(dataDir: string, flag: string | undefined): string {
  const file = ledgerKeyFile(dataDir, { ...(flag !== undefined ? { keyFile: flag } : {}), env: process.env });
  if (!fs.existsSync(file)) throw new CliError('NOT_FOUND', `no ledger key at ${file}: pass the coordinator's key file with --ledger-key FILE (or ${LEDGER_KEY_FILE_ENV})`);
  return file;
}

export function registerAuditCommands(program: Command): void {
  const audit = program.command('audit').description('the signed privacy ledger: export, verify offline, report for compliance');

  sourceOptions(audit.command('verify').description('check the hash chain, every signature, and recompute every epsilon; exit 1 naming the first bad entry')).action(
    action(async (options: SourceOptions) => {
      const { entries, result, source, head, models } = await loadLedger(options);
      const { headHash: _h, currentKey: _k, rootHash: _r, ...verdict } = result;
      if (!result.ok) process.exitCode = 1;
      saveHead(options.saveHead, head);
      const spent = releasedWithoutDp(entries)
        ? `cumulative epsilon unbounded (a model was released without differential privacy)${result.delta === null ? '' : ` at delta ${result.delta}`}`
        : result.delta === null
          ? 'no differentially private round released yet'
          : `cumulative epsilon ${result.epsilon === null ? 'unbounded' : result.epsilon.toFixed(6)} at delta ${result.delta}`;
      const json = { ...verdict, ...(head ? { head } : {}), ...(models ? { models } : {}) };
      emit(options, json, () => {
        if (!result.ok) return `ledger FAILED (${source})${result.firstBadEntry === undefined ? '' : ` at entry ${result.firstBadEntry}`}: ${result.reason}`;
        const extra = [
          options.since ? `a consistent extension of the tree head kept in ${options.since}` : null,
          models ? `${models.published} published model versions, each released by a ledger entry${describeDigestCheck(models)}` : null,
          result.receipts ? `${result.receipts.checked} device receipt(s): each witnessed release entry is in the ledger under its signed tree head` : null,
        ].filter((x) => x !== null);
        return [`ledger OK (${source}): ${result.entries} entries, chain and signatures verified, epsilons recomputed; ${spent}`, ...extra.map((x) => `  ${x}`), `tree head to keep: size ${head?.treeSize}, root ${head?.rootHash}`].join('\n');
      });
    }),
  );

  sourceOptions(audit.command('report').description('per-round and cumulative spend, budget left, mechanisms, sensitive heads, chart against the cap'))
    .option('--format <format>', 'md | html | json', 'md')
    .option('--out <file>', 'write the report to a file instead of stdout')
    .action(
      action(async (options: SourceOptions & { format: string; out?: string }) => {
        if (!['md', 'html', 'json'].includes(options.format)) throw new CliError('INVALID_ARGUMENT', `"--format" expected md, html or json, got ${JSON.stringify(options.format)}`);
        const { entries, result, cap, enabledHeads, dataDir, head } = await loadLedger(options);
        saveHead(options.saveHead, head);
        const heads = enabledHeads ?? (dataDir === undefined ? null : await latestModelHeads(dataDir));
        const report = buildReport(entries, result, { cap, enabledHeads: heads, generatedAt: new Date().toISOString(), head });
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
    .option('--postgres <url>', "export a cluster's ledger from its PostgreSQL database (needs its ledger key: --ledger-key, or ledger-key.json in --data-dir, the cluster's key directory)")
    .option('--ledger-key <file>', `the ledger key file, when it is kept outside the data directory (default: ${LEDGER_KEY_FILE_ENV}, else ledger-key.json in --data-dir)`)
    .option('--epsilon-cap <e>', 'deployment cap recorded in the bundle (with --data-dir; default: the cap the coordinator last ran with)')
    .option('--delta <d>', 'delta of the cap')
    .option('--save-head <file>', "also keep the bundle's signed tree head in this file (for a later audit verify --since)")
    .option('--force', 'overwrite --out if it exists')
    .option('--json', 'machine-readable output')
    .action(
      action(async (options: SourceOptions & { out: string; force?: boolean; ledgerKey?: string }) => {
        if (fs.existsSync(options.out) && options.force !== true) throw new CliError('INVALID_ARGUMENT', `"--out": ${path.resolve(options.out)} exists; refusing to overwrite it (pass --force)`);
        let bundle: LedgerBundle;
        if (options.server) bundle = (await fetchBundle(options as SourceOptions & { server: string })).bundle;
        else if (options.postgres !== undefined) {
          const { openPostgresStores } = await import('../../server/storage/postgres.ts');
          const stores = await openPostgresStores(options.postgres);
          try {
            const keyFile = existingKeyFile(path.resolve(options.dataDir), options.ledgerKey);
            const ledger = await PrivacyLedger.open({ store: stores.ledger, key: (current) => resolveLedgerKey(keyFile, current, false), software: softwareVersion(), cap: capFrom(options) ?? null });
            bundle = await ledger.exportBundle();
          } finally {
            await stores.close();
          }
        } else {
          const dataDir = path.resolve(options.dataDir);
          if (!fs.existsSync(path.join(dataDir, LEDGER_DATABASE_FILE))) throw new CliError('NOT_FOUND', `no ledger in ${dataDir}`);
          const { ledger, store } = await openDataDirLedger(dataDir, { cap: capFrom(options) ?? readBudgetCap(dataDir), env: {}, keyFile: existingKeyFile(dataDir, options.ledgerKey), createKey: false });
          try {
            bundle = await ledger.exportBundle();
          } finally {
            store.close();
          }
        }
        fs.writeFileSync(options.out, `${JSON.stringify(bundle, null, 2)}\n`);
        saveHead(options.saveHead, bundle.head);
        emit(options, { out: path.resolve(options.out), entries: bundle.entries.length, publicKey: bundle.publicKey, head: bundle.head }, () => `${bundle.entries.length} entries written to ${options.out} (genesis key ${bundle.publicKey})`);
      }),
    );

  audit
    .command('rotate-key')
    .description('rotate the ledger signing key of a data directory (a signed entry; refused while a coordinator runs on it)')
    .option('--data-dir <dir>', 'coordinator data directory', './data')
    .option('--ledger-key <file>', `the ledger key file, when it is kept outside the data directory (default: ${LEDGER_KEY_FILE_ENV}, else ledger-key.json in --data-dir); the new key replaces it there`)
    .option('--reason <text>', 'recorded in the rotation entry', 'scheduled rotation')
    .option('--json', 'machine-readable output')
    .action(
      action(async (options: { dataDir: string; reason: string; json?: boolean; ledgerKey?: string }) => {
        const dataDir = path.resolve(options.dataDir);
        // A running coordinator appends to the same ledger from its own idea of the head.
        // A cluster's key directory holds no ledger (it is in PostgreSQL): opening one here would create an empty one.
        if (!fs.existsSync(path.join(dataDir, LEDGER_DATABASE_FILE))) throw new CliError('NOT_FOUND', `no ledger in ${dataDir}: rotate-key works on a data directory's ledger; a cluster's is in PostgreSQL, and rotating its key has no command yet (docs/cluster.md)`);
        const keyFile = existingKeyFile(dataDir, options.ledgerKey);
        const release = acquireDataDirLock(dataDir, 'cannot rotate the ledger key');
        const { ledger, store } = await openDataDirLedger(dataDir, { env: {}, keyFile, createKey: false }).catch((err: unknown) => {
          release();
          throw err;
        });
        try {
          const before = ledger.publicKey;
          const after = await rotateLedgerKeyFile(keyFile, ledger, options.reason);
          log(`ledger key rotated in ${keyFile}`);
          emit(options, { previousKey: before, publicKey: after, entries: ledger.entries }, () => `ledger key rotated: ${before} -> ${after}`);
        } finally {
          store.close();
          release();
        }
      }),
    );
}

