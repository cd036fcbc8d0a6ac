/**
 * SecAgg+ cost (issue 5, "Performance"): per cell of n clients x P coordinates x dropout rate, the
 * pure state machines (shared/secagg) play a whole round in this process, every client and the
 * server, with the crypto the coordinator and Node clients use (WebCrypto X25519 / Ed25519 / AES-CTR,
 * Node's native Ed25519 on the server). Reports client compute and bytes sent, server unmask time and
 * its PRG throughput next to the raw PRG throughput measured in the same run, the expansion over a
 * plain 32-bit update, and the whole round's compute with SecAgg+ on and off. Dropouts happen at the
 * masked-input stage (the server's most expensive case: their pairwise masks must be rebuilt).
 * Cells estimated above the time budget are not run and say so. Run:
 *   npx tsx scripts/bench/secagg.ts [--budget-s S] [--n 10,100] [--p 10000] [--dropout 0,0.1] [--replays 4] [--no-append] [--json]
 * After each live round its unmask is replayed `--replays` times into fresh server sessions
 * (scripts/bench/secagg-replay.ts) and the median ratio reported beside the live one.
 */
import fs from 'node:fs';
import path from 'node:path';
import { wireBytes } from '../../client/core/secagg-client.ts';
import { nodeMaskKeyCrypto } from '../../server/rounds/secagg-native-crypto.ts';
import { nodeMaskSink } from '../../server/rounds/secagg-native-masks.ts';
import { meanRawPrg, probeRawPrg, type RawPrg } from './secagg-raw-prg.ts';
import { maskExpansions, replayUnmask, spread } from './secagg-replay.ts';
import { nodeEd25519Verify, startUnmaskWorkers } from '../../server/rounds/secagg-session.ts';
import { addModular } from '../../shared/privacy/modular.ts';
import { SecAggClient } from '../../shared/secagg/client.ts';
import { generateSigningKeyPair } from '../../shared/secagg/keys.ts';
import type { ClientMessage, MaskedInputMessage, ServerMessage } from '../../shared/secagg/messages.ts';
import { chooseParameters } from '../../shared/secagg/parameters.ts';
import { aesCtrPrg, applyMasks } from '../../shared/secagg/prg.ts';
import { cryptoRandomSource } from '../../shared/secagg/random.ts';
import { SecAggServerSession } from '../../shared/secagg/server.ts';
import { flag, numberList, numberOption } from './args.ts';
import { benchmarkKey, markdownTable, writeBenchmark } from './report.ts';

const N_VALUES = [10, 100, 1000];
const P_VALUES = [10_000, 100_000, 1_000_000];
const DROPOUTS = [0, 0.1, 0.3];
const CORRUPT_FRACTION = 0.1;

interface CellResult {
  n: number;
  P: number;
  dropout: number;
  k: number;
  t: number;
  status: 'done' | 'aborted' | 'skipped';
  note?: string;
  clientMs?: number;
  clientBytes?: number;
  expansion?: number;
  serverUnmaskMs?: number;
  unmaskMBps?: number;
  rawPrgMBps?: number;
  rawWebCryptoMBps?: number;
  rawOpenSslMBps?: number;
  /** unmask / raw (faster) of the same round's unmask replayed into fresh server sessions (secagg-replay.ts). */
  replayRatios?: number[];
  roundSecondsOn?: number;
  roundSecondsOff?: number;
  /** Latency with devices in parallel: per stage the slowest client, plus the server's stage closes. */
  latencySecondsOn?: number;
  latencySecondsOff?: number;
  estimateSeconds: number;
}

const maskRateCache = new Map<number, number>();
const MASK_PROBE_SEEDS = 32;

/**
 * The rate at which a simulated client masks, MB/s at P words: `applyMasks` over 32 seeds at its
 * default depth, adds included, as SecAggClient does (k + 1 >= 10 masks), for at least 0.3 s. (The
 * estimate used to count each mask twice, an expansion and then an add, at the rate of one expansion
 * at a time; the client overlaps them. It put the n = 1,000, P = 10^6 cells at 2,633 and 2,758 s;
 * they took 523 and 453 s. Over 8 seeds the probe read 1.4-1.7x slower at P <= 10^5 than over 32.)
 */
async function clientMaskMBps(P: number): Promise<number> {
  const cached = maskRateCache.get(P);
  if (cached !== undefined) return cached;
  const target = new Uint32Array(P);
  const jobs = () => Array.from({ length: MASK_PROBE_SEEDS }, () => ({ seed: cryptoRandomSource(new Uint8Array(32)), sign: 1 as const }));
  await applyMasks(aesCtrPrg, target, jobs());
  let bytes = 0;
  const start = performance.now();
  while (performance.now() - start < 300) {
    await applyMasks(aesCtrPrg, target, jobs());
    bytes += MASK_PROBE_SEEDS * 4 * P;
  }
  const mbps = bytes / 1e6 / ((performance.now() - start) / 1000);
  maskRateCache.set(P, mbps);
  return mbps;
}

function expansionsOf(server: SecAggServerSession, dropped: ReadonlySet<number>): number {
  const survivors = new Set(Array.from({ length: server.config.n }, (_, i) => i + 1).filter((u) => !dropped.has(u)));
  return maskExpansions(server.graph, survivors, dropped);
}

/**
 * Rough cost model to keep the run within budget: per client a fixed part and ~0.7 ms per neighbour
 * (agreements, shares, ciphertexts; 0.51 s per client at k = 776 here), per surviving client k + 1
 * masks at the clients' rate; the server's masks (`serverMasks`) at the same rate (its native
 * workers are faster). (Until session 8 it had every client mask, dropped ones too, and the server
 * undo every neighbour of a dropped client, surviving or not: n = 1,000, P = 10^6, 30% was estimated
 * at 7,034 s and took 2,565.)
 */
function estimateSeconds(n: number, k: number, P: number, dropout: number, maskMBps: number): number {
  const fixed = n * (2.5e-3 + k * 0.7e-3);
  const clientMasks = (1 - dropout) * n * (k + 1);
  return fixed + ((clientMasks + serverMasks(n, k, dropout)) * 4 * P) / (maskMBps * 1e6) + n * 1e-3;
}

/** Masks the server removes, expected: one per survivor, one per surviving neighbour of each dropped client. */
function serverMasks(n: number, k: number, dropout: number): number {
  return (1 - dropout) * n + dropout * n * k * (1 - dropout);
}

/** Masked inputs kept per cell for replays at most (n * 4P bytes): above it (n = 1,000 at P = 10^6) the cell is not replayed. */
const REPLAY_MAX_BYTES = 2 ** 30;

/** One replay: the server's four stages again (signatures, ciphertext checks, sums, share decoding ~3 ms per client), the unmask, and two raw PRG probes of 2 x 0.3 s. */
function replaySeconds(n: number, k: number, P: number, dropout: number, maskMBps: number): number {
  return n * 3e-3 + (serverMasks(n, k, dropout) * 4 * P) / (maskMBps * 1e6) + 1.2;
}

function parameters(n: number, dropout: number): { k: number; t: number } {
  const p = chooseParameters({ n, dropoutRate: Math.max(0.1, dropout), corruptFraction: CORRUPT_FRACTION });
  return { k: p.k, t: p.t };
}

async function runCell(n: number, P: number, dropout: number, budgetSeconds: number, replays: number): Promise<CellResult> {
  const { k, t } = parameters(n, dropout);
  const maskMBps = await clientMaskMBps(P);
  const replaying = replays > 0 && n * 4 * P <= REPLAY_MAX_BYTES;
  const estimate = estimateSeconds(n, k, P, dropout, maskMBps) + (replaying ? replays * replaySeconds(n, k, P, dropout, maskMBps) : 0);
  const base = { n, P, dropout, k, t, estimateSeconds: estimate };
  if (estimate > budgetSeconds) return { ...base, status: 'skipped', note: `estimated ${estimate.toFixed(0)} s > budget` };

  const random = cryptoRandomSource;
  const config = { roundId: `bench-${n}-${P}-${dropout}`, n, k, t, graphSeed: random(new Uint8Array(32)), vectorLength: P, prg: 'aes-ctr' as const };
  const enrollment = Array.from({ length: n }, () => generateSigningKeyPair(random));
  const inputs = Array.from({ length: n }, (_, i) => Uint32Array.from({ length: P }, (_, j) => ((i * 7919 + j * 104_729) % 2001) - 1000));
  const dropped = new Set(Array.from({ length: Math.round(dropout * n) }, (_, i) => n - i));
  // The coordinator starts and warms its unmask workers when a round is created (secagg-session.ts),
  // during stages that take seconds; these rounds take milliseconds, so the bench waits for it here.
  await startUnmaskWorkers();
  const roundStarted = performance.now();
  const server = new SecAggServerSession({ config, verifyKey: (i) => enrollment[i - 1]?.publicKey, verifySignature: nodeEd25519Verify, maskKeyCrypto: nodeMaskKeyCrypto, maskSink: nodeMaskSink });
  const clientMs = new Float64Array(n + 1);
  const clientBytes = new Float64Array(n + 1);
  const clients: SecAggClient[] = enrollment.map((e, i) =>
    new SecAggClient({ config, index: i + 1, input: inputs[i]!, signingSecretKey: e.secretKey, verifyKey: (j) => enrollment[j - 1]?.publicKey, random, binaryMaskedInput: true }));
  const transcript = { config, verifyKeys: enrollment.map((e) => e.publicKey), advertise: [] as ClientMessage[], share: [] as ClientMessage[], masked: [] as MaskedInputMessage[], unmask: [] as ClientMessage[] };
  const send = (from: number, message: ClientMessage | null) => {
    if (message === null) return;
    if (replaying) {
      if (message.type === 'advertise-keys') transcript.advertise.push(message);
      else if (message.type === 'share-keys') transcript.share.push(message);
      else if (message.type === 'masked-input') transcript.masked.push(message);
      else transcript.unmask.push(message);
    }
    clientBytes[from] = clientBytes[from]! + wireBytes(message);
    // Server time per message counts too (validation, and masked inputs summed on arrival).
    const s = performance.now();
    server.receive(from, message);
    serverMs += performance.now() - s;
  };
  let slowestClientMs = 0;
  let serverMs = 0;
  let stageSlowest = 0;
  for (const c of clients) {
    const s = performance.now();
    const m = c.advertiseKeys();
    const ms = performance.now() - s;
    clientMs[c.index] = clientMs[c.index]! + ms;
    stageSlowest = Math.max(stageSlowest, ms);
    send(c.index, m);
  }
  let unmaskMs = 0;
  let rawBefore: RawPrg | undefined;
  const closeStarted = performance.now();
  let outcome = await server.closeStage();
  serverMs += performance.now() - closeStarted;
  slowestClientMs += stageSlowest;
  while (outcome.status === 'continue') {
    stageSlowest = 0;
    for (const message of outcome.messages as readonly ServerMessage[]) {
      const c = clients[message.to - 1]!;
      if (message.type === 'forwarded-shares' && dropped.has(c.index)) continue;
      const s = performance.now();
      const reply = await c.receive(message);
      const ms = performance.now() - s;
      clientMs[c.index] = clientMs[c.index]! + ms;
      stageSlowest = Math.max(stageSlowest, ms);
      send(c.index, reply);
    }
    slowestClientMs += stageSlowest;
    const stage = server.stage;
    if (stage === 'unmask') rawBefore = await probeRawPrg(P, 300, Math.min(50, expansionsOf(server, dropped)));
    const s = performance.now();
    outcome = await server.closeStage();
    serverMs += performance.now() - s;
    if (stage === 'unmask') unmaskMs = performance.now() - s;
  }
  const roundSecondsOn = (performance.now() - roundStarted) / 1000;
  if (outcome.status !== 'done') return { ...base, status: 'aborted', note: outcome.status === 'aborted' ? outcome.reason : '' };
  const survivors = outcome.survivors;
  const expected = new Uint32Array(P);
  for (const u of survivors) addModular(expected, inputs[u - 1]!);
  if (!expected.every((v, i) => v === outcome.sum[i])) throw new Error(`cell n=${n} P=${P}: unmasked sum differs from the plain sum`);

  // Same round with SecAgg+ off: each client sends its 4P-byte residues, the server adds them up.
  const offStarted = performance.now();
  const plainSum = new Uint32Array(P);
  for (const u of survivors) addModular(plainSum, inputs[u - 1]!);
  const roundSecondsOff = (performance.now() - offStarted) / 1000;

  const expansions = expansionsOf(server, dropped);
  // Raw PRG throughput right before and right after the unmask (mean of the two), so both see the
  // same machine load: on this shared 2-core machine one 300 ms probe varied up to 3x between cells.
  const rawNow = meanRawPrg(rawBefore!, await probeRawPrg(P, 300, Math.min(50, expansions)));
  const mean = (values: Float64Array) => survivors.reduce((s, u) => s + values[u]!, 0) / survivors.length;
  const bytes = mean(clientBytes);
  // The same unmask again in fresh server sessions, with the clients let go (a coordinator does not
  // hold them): one sample of a 5-70 ms unmask varies 2-5x here.
  clients.length = 0;
  const replayRatios: number[] = [];
  for (let r = 0; replaying && r < replays; r++) replayRatios.push((await replayUnmask(transcript, expected)).ratio);
  return {
    ...base,
    status: 'done',
    clientMs: mean(clientMs),
    clientBytes: bytes,
    expansion: bytes / (4 * P),
    serverUnmaskMs: unmaskMs,
    unmaskMBps: (expansions * 4 * P) / 1e6 / (unmaskMs / 1000),
    rawPrgMBps: rawNow.best,
    rawWebCryptoMBps: rawNow.webcrypto,
    rawOpenSslMBps: rawNow.openssl,
    ...(replaying ? { replayRatios } : {}),
    roundSecondsOn,
    roundSecondsOff,
    latencySecondsOn: (slowestClientMs + serverMs) / 1000,
    latencySecondsOff: roundSecondsOff,
  };
}

const cells = { n: numberList('--n', N_VALUES), P: numberList('--p', P_VALUES), dropout: numberList('--dropout', DROPOUTS) };
const budgetSeconds = numberOption('--budget-s', 40);
const replays = numberOption('--replays', 4);
if (!Number.isInteger(replays) || replays < 0) throw new RangeError(`"--replays" expected a non-negative integer, got ${replays}`);
const results: CellResult[] = [];
const runStarted = performance.now();
// Warm-up (JIT, WebCrypto, allocator) so the first reported cell is not charged for it.
await runCell(10, 1_000_000, 0.1, Number.POSITIVE_INFINITY, 1);
for (const n of cells.n) {
  for (const P of cells.P) {
    for (const dropout of cells.dropout) {
      const r = await runCell(n, P, dropout, budgetSeconds, replays);
      results.push(r);
      process.stderr.write(`n=${n} P=${P} dropout=${dropout}: ${r.status}${r.note ? ` (${r.note})` : ''}${r.roundSecondsOn !== undefined ? ` in ${r.roundSecondsOn.toFixed(1)} s` : ''}\n`);
    }
  }
}
const totalSeconds = (performance.now() - runStarted) / 1000;

if (flag('--json')) {
  process.stdout.write(`${JSON.stringify({ node: process.version, totalSeconds, results }, null, 2)}\n`);
} else {
  const f = (v: number | undefined, digits = 1) => (v === undefined ? '-' : v.toFixed(digits));
  const rows = results.map((r) => [
    r.n,
    r.P.toLocaleString('en'),
    `${Math.round(r.dropout * 100)}%`,
    r.status === 'skipped' ? `not run (${r.note})` : r.status,
    r.k,
    r.t,
    f(r.clientMs),
    r.clientMs === undefined ? '-' : (r.clientMs / (r.k + 1)).toFixed(2),
    r.clientBytes === undefined ? '-' : (r.clientBytes / 1024).toFixed(1),
    ((4 * r.P) / 1024).toFixed(1),
    f(r.expansion, 4),
    f(r.serverUnmaskMs, 0),
    f(r.unmaskMBps, 0),
    f(r.rawWebCryptoMBps, 0),
    f(r.rawOpenSslMBps, 0),
    r.unmaskMBps !== undefined && r.rawPrgMBps !== undefined ? (r.unmaskMBps / r.rawPrgMBps).toFixed(2) : '-',
    r.unmaskMBps !== undefined && r.rawWebCryptoMBps !== undefined ? (r.unmaskMBps / r.rawWebCryptoMBps).toFixed(2) : '-',
    ...(replays > 0 ? [replayCell(r)] : []),
    f(r.latencySecondsOn, 2),
    f(r.latencySecondsOff, 3),
    f(r.roundSecondsOn, 2),
    f(r.roundSecondsOff, 3),
  ]);
  const table = markdownTable(
    ['n', 'P', 'dropout', 'status', 'k', 't', 'client ms (mean)', 'client ms / (k+1)', 'client KiB sent', 'plain KiB', 'expansion', 'server unmask ms', 'unmask MB/s', 'raw PRG MB/s, WebCrypto', 'raw PRG MB/s, OpenSSL', 'unmask / raw (faster)', 'unmask / raw WebCrypto', ...(replays > 0 ? [`unmask / raw (faster), ${replays} replays: median (range)`] : []), 'end-to-end s, on', 'end-to-end s, off', 'compute s, on', 'compute s, off'],
    rows,
  );
  const appending = !flag('--no-append');
  const plotted = appending ? writeCostPlot(results) : 0;
  const notes = [
    'All cells run the pure state machines in one process (no sockets). "end-to-end" is the round latency with devices in parallel: for each stage the slowest client\'s compute, plus every server stage close (unmask included); with SecAgg+ off it is the server\'s sum of the survivors\' plain 32-bit updates (the clients send them as they are). "compute" is every client and the server back to back. Transfer time is not included (bytes are listed instead).',
    `(k, t) from chooseParameters with dropoutRate max(0.1, dropout) and corruptFraction ${CORRUPT_FRACTION}; dropouts leave at the masked-input stage. Client ms and bytes are the mean over surviving clients of all four stages; "client ms / (k+1)" is that per share holder: flat across n means the client cost follows k = O(log n) (Bell et al. 2020), not n. Bytes count payload fields (binary masked input, base64 keys, shares and ciphertexts), not Socket.IO framing.`,
    '"unmask MB/s" = mask bytes removed (one P-word mask per survivor, one per surviving neighbour of each dropped client) / server unmask time (reconstruction, X25519 and KDF for dropped clients, PRG, removing the masks; the masked inputs are summed as they arrive, in the server time of the end-to-end column, not here). The server runs as the coordinator does: OpenSSL X25519 / HKDF on worker threads, AES-CTR keystreams from OpenSSL added with WebAssembly SIMD on worker threads, or on the main thread when the unmask has at most 8 MiB of keystream over the number of mask workers (4 MiB with two; server/rounds/secagg-native-masks.ts); the workers are started and warmed before the round, as the coordinator does when it creates one. "raw PRG" = sequential fresh-key AES-256-CTR expansions at the same P, nothing added, through WebCrypto and through OpenSSL on the main thread (scripts/bench/secagg-raw-prg.ts), each the mean of a probe right before and one right after the unmask, in the same process. Target: unmask / raw >= 0.5 against the faster of the two (the WebCrypto ratio is listed beside it because WebCrypto is the PRG the clients use).',
    ...(replays > 0 ? [`"replays": the same round's client messages played into ${replays} fresh server sessions after the live round, each unmask timed between its own two raw PRG probes (scripts/bench/secagg-replay.ts). Two things differ from the live round: several samples (one unmask of 5-70 ms varies 2-5x on this shared machine), and the simulated clients released first (a coordinator does not hold them; at n = 1,000 their keys, shares and inputs in the same heap slow the live unmask). The live round's server session, inputs and the transcript stay on the heap during the replays.`] : []),
    `Cells whose estimated compute exceeds the ${budgetSeconds} s budget are not run (estimate from the per-neighbour cost measured here and the clients' masking rate, probed at each P). Whole run: ${totalSeconds.toFixed(0)} s.`,
    appending ? `Plot of every cell run so far (this run's cells replace earlier ones): [docs/secagg-cost.svg](secagg-cost.svg) (${plotted} cells).` : 'Plot not written (--no-append).',
  ].join('\n\n');
  if (!appending) process.stdout.write(`${table}\n\n${notes}\n`);
  else {
    // One section per set of cells: the grid, and the cells above its budget run alone (docs/secagg.md cites both).
    const grid = cells.n.join() === N_VALUES.join() && cells.P.join() === P_VALUES.join() && cells.dropout.join() === DROPOUTS.join();
    const which = `n ${cells.n.map((n) => n.toLocaleString('en')).join(', ')}; P ${cells.P.map((p) => p.toLocaleString('en')).join(', ')}; dropout ${cells.dropout.map((d) => `${Math.round(d * 100)}%`).join(', ')}`;
    writeBenchmark({
      key: benchmarkKey('secagg-cost', `n=${cells.n.join(',')}`, `p=${cells.P.join(',')}`, `dropout=${cells.dropout.join(',')}`),
      title: `SecAgg+ cost (${grid ? `grid: ${which}` : which})`,
      tfjsBackend: 'n/a (no tensors)',
      table,
      notes,
    });
  }
}

/** The replays' ratio as "median (min-max)", or why there is none. */
function replayCell(r: CellResult): string {
  if (r.replayRatios === undefined || r.replayRatios.length === 0) return r.status === 'done' && r.n * 4 * r.P > REPLAY_MAX_BYTES ? 'not replayed (n x 4P > 1 GiB)' : '-';
  const { median, min, max } = spread(r.replayRatios);
  return `${median.toFixed(2)} (${min.toFixed(2)}-${max.toFixed(2)})`;
}

interface PlotCell {
  n: number;
  P: number;
  dropout: number;
  k: number;
  clientMs: number;
  expansion: number;
  /** Server unmask / raw PRG (faster): the replays' median where the cell was replayed, else the live ratio; absent in cells plotted before it was recorded. */
  unmaskRatio?: number;
}

/**
 * docs/secagg-cost.svg: client ms vs n (log-log) per P with k at each point, expansion vs n per P
 * with the 1.1 target, and the server's unmask / raw PRG per cell with the 0.5 target. The SVG carries its cells as JSON in <metadata>, so a later run restricted to
 * some cells merges into it instead of erasing the others. Returns the number of cells plotted.
 */
function writeCostPlot(results: readonly CellResult[]): number {
  const file = path.resolve('docs/secagg-cost.svg');
  const key = (c: { n: number; P: number; dropout: number }) => `${c.n}/${c.P}/${c.dropout}`;
  const cells = new Map<string, PlotCell>();
  if (fs.existsSync(file)) {
    const match = /<metadata id="secagg-cells">([^<]*)<\/metadata>/.exec(fs.readFileSync(file, 'utf8'));
    if (match) for (const c of JSON.parse(match[1]!.replaceAll('&quot;', '"')) as PlotCell[]) cells.set(key(c), c);
  }
  for (const r of results) {
    if (r.status !== 'done' || r.clientMs === undefined || r.expansion === undefined) continue;
    const live = r.unmaskMBps !== undefined && r.rawPrgMBps !== undefined ? r.unmaskMBps / r.rawPrgMBps : undefined;
    const unmaskRatio = r.replayRatios !== undefined && r.replayRatios.length > 0 ? spread(r.replayRatios).median : live;
    cells.set(key(r), { n: r.n, P: r.P, dropout: r.dropout, k: r.k, clientMs: r.clientMs, expansion: r.expansion, ...(unmaskRatio === undefined ? {} : { unmaskRatio }) });
  }
  const all = [...cells.values()].sort((a, b) => a.P - b.P || a.n - b.n || a.dropout - b.dropout);
  // One series per P: at each n the cell with the dropout closest to 10% (the default rate).
  const series = new Map<number, PlotCell[]>();
  for (const c of all) {
    const list = series.get(c.P) ?? [];
    const same = list.findIndex((x) => x.n === c.n);
    if (same < 0) list.push(c);
    else if (Math.abs(c.dropout - 0.1) < Math.abs(list[same]!.dropout - 0.1)) list[same] = c;
    series.set(c.P, list);
  }
  const colours = ['#1b6ca8', '#d1495b', '#2a9d8f', '#e9a03b'];
  const W = 440;
  const H = 320;
  const margin = { left: 62, right: 16, top: 34, bottom: 46 };
  const plotW = W - margin.left - margin.right;
  const plotH = H - margin.top - margin.bottom;
  const ns = all.map((c) => c.n);
  const logN = [Math.floor(Math.log10(Math.min(10, ...ns))), Math.ceil(Math.log10(Math.max(1000, ...ns)))] as const;
  const x = (n: number) => margin.left + ((Math.log10(n) - logN[0]) / (logN[1] - logN[0])) * plotW;
  const ms = all.map((c) => c.clientMs);
  const logMs = [Math.floor(Math.log10(Math.min(...ms, 10))), Math.ceil(Math.log10(Math.max(...ms, 100)))] as const;
  const yMs = (v: number) => margin.top + plotH - ((Math.log10(v) - logMs[0]) / (logMs[1] - logMs[0])) * plotH;
  // The expansion panel draws one cell per P and n (the series), so its axis fits those, not every cell kept.
  const maxExpansion = Math.max(2, Math.ceil(Math.max(...[...series.values()].flat().map((c) => c.expansion), 1) * 2) / 2);
  const yExp = (v: number) => margin.top + plotH - ((v - 1) / (maxExpansion - 1)) * plotH;
  const text = (tx: number, ty: number, body: string, extra = '') => `<text x="${tx.toFixed(1)}" y="${ty.toFixed(1)}" ${extra}>${body}</text>`;
  const panel = (offset: number, title: string, yTicks: { v: number; label: string; y: number }[], yLabel: string, body: string) => [
    `<g transform="translate(${offset},0)">`,
    text(W / 2, 18, title, 'text-anchor="middle" font-weight="bold"'),
    `<rect x="${margin.left}" y="${margin.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#999"/>`,
    ...Array.from({ length: logN[1] - logN[0] + 1 }, (_, i) => {
      const n = 10 ** (logN[0] + i);
      return `<line x1="${x(n)}" x2="${x(n)}" y1="${margin.top}" y2="${margin.top + plotH}" stroke="#eee"/>${text(x(n), margin.top + plotH + 16, n.toLocaleString('en'), 'text-anchor="middle"')}`;
    }),
    text(margin.left + plotW / 2, H - 8, 'clients per round n (log scale)', 'text-anchor="middle"'),
    ...yTicks.map((t) => `<line x1="${margin.left}" x2="${margin.left + plotW}" y1="${t.y}" y2="${t.y}" stroke="#eee"/>${text(margin.left - 6, t.y + 4, t.label, 'text-anchor="end"')}`),
    text(14, margin.top + plotH / 2, yLabel, `text-anchor="middle" transform="rotate(-90 14 ${margin.top + plotH / 2})"`),
    body,
    '</g>',
  ].join('\n');
  const lines = (y: (c: PlotCell) => number, labels: boolean) => [...series.entries()].map(([P, list], i) => {
    const colour = colours[i % colours.length]!;
    const sorted = [...list].sort((a, b) => a.n - b.n);
    const points = sorted.map((c) => `${x(c.n).toFixed(1)},${y(c).toFixed(1)}`).join(' ');
    return [
      `<polyline points="${points}" fill="none" stroke="${colour}" stroke-width="2"/>`,
      ...sorted.map((c) => `<circle cx="${x(c.n).toFixed(1)}" cy="${y(c).toFixed(1)}" r="3.5" fill="${colour}"/>${labels ? text(x(c.n) + 5, y(c) - 6, `k=${c.k}`, `fill="${colour}"`) : ''}`),
      `<rect x="${margin.left + 8}" y="${margin.top + 8 + i * 16}" width="10" height="10" fill="${colour}"/>${text(margin.left + 22, margin.top + 17 + i * 16, `P = ${P.toLocaleString('en')}`)}`,
    ].join('\n');
  }).join('\n');
  const msTicks = Array.from({ length: logMs[1] - logMs[0] + 1 }, (_, i) => {
    const v = 10 ** (logMs[0] + i);
    return { v, label: v.toLocaleString('en'), y: yMs(v) };
  });
  const expTicks = Array.from({ length: Math.round((maxExpansion - 1) / 0.25) + 1 }, (_, i) => {
    const v = 1 + i * 0.25;
    return { v, label: v.toFixed(2), y: yExp(v) };
  });
  const target = `<line x1="${margin.left}" x2="${margin.left + plotW}" y1="${yExp(1.1)}" y2="${yExp(1.1)}" stroke="#555" stroke-dasharray="5 4"/>${text(margin.left + plotW - 4, yExp(1.1) - 4, 'target 1.1 (P = 10^6, n = 1,000)', 'text-anchor="end" fill="#555"')}`;
  // Unmask / raw PRG per cell: colour by P (as the other panels), filled and joined at 10% dropout,
  // hollow circle at 0%, hollow square at 30% (nudged sideways so they do not hide each other).
  const rated = all.filter((c) => c.unmaskRatio !== undefined && c.unmaskRatio > 0);
  const ratios = rated.map((c) => c.unmaskRatio!);
  const logR = [Math.floor(Math.log10(Math.min(0.05, ...ratios))), Math.ceil(Math.log10(Math.max(2, ...ratios)))] as const;
  const yR = (v: number) => margin.top + plotH - ((Math.log10(v) - logR[0]) / (logR[1] - logR[0])) * plotH;
  const ratioTicks = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10].filter((v) => Math.log10(v) >= logR[0] - 1e-9 && Math.log10(v) <= logR[1] + 1e-9).map((v) => ({ v, label: String(v), y: yR(v) }));
  const ratioBody = [...series.keys()].map((P, i) => {
    const colour = colours[i % colours.length]!;
    const mine = rated.filter((c) => c.P === P).sort((a, b) => a.n - b.n);
    const at = (c: PlotCell) => ({ cx: x(c.n) + (c.dropout === 0 ? -6 : c.dropout > 0.2 ? 6 : 0), cy: yR(c.unmaskRatio!) });
    const joined = mine.filter((c) => c.dropout === 0.1).map((c) => `${at(c).cx.toFixed(1)},${at(c).cy.toFixed(1)}`).join(' ');
    return [
      joined ? `<polyline points="${joined}" fill="none" stroke="${colour}" stroke-width="2"/>` : '',
      ...mine.map((c) => {
        const { cx, cy } = at(c);
        if (c.dropout === 0.1) return `<circle cx="${cx.toFixed(1)}" cy="${cy.toFixed(1)}" r="3.5" fill="${colour}"/>`;
        if (c.dropout === 0) return `<circle cx="${cx.toFixed(1)}" cy="${cy.toFixed(1)}" r="3.5" fill="white" stroke="${colour}" stroke-width="1.5"/>`;
        return `<rect x="${(cx - 3.5).toFixed(1)}" y="${(cy - 3.5).toFixed(1)}" width="7" height="7" fill="white" stroke="${colour}" stroke-width="1.5"/>`;
      }),
      `<rect x="${margin.left + 8}" y="${margin.top + 8 + i * 16}" width="10" height="10" fill="${colour}"/>${text(margin.left + 22, margin.top + 17 + i * 16, `P = ${P.toLocaleString('en')}`)}`,
    ].join('\n');
  }).join('\n');
  const ratioTarget = `<line x1="${margin.left}" x2="${margin.left + plotW}" y1="${yR(0.5)}" y2="${yR(0.5)}" stroke="#555" stroke-dasharray="5 4"/>${text(margin.left + plotW - 4, yR(0.5) - 4, 'target 0.5', 'text-anchor="end" fill="#555"')}`;
  const ratioLegend = text(margin.left + plotW - 4, margin.top + plotH - 8, 'filled: 10% dropout, circle: 0%, square: 30%', 'text-anchor="end" fill="#555"');
  const metadata = JSON.stringify(all).replaceAll('"', '&quot;');
  const svg = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${3 * W}" height="${H}" viewBox="0 0 ${3 * W} ${H}" font-family="sans-serif" font-size="11">`,
    `<metadata id="secagg-cells">${metadata}</metadata>`,
    '<rect width="100%" height="100%" fill="white"/>',
    panel(0, 'SecAgg+ client compute per round (mean, 4 stages)', msTicks, 'client ms (log scale)', lines((c) => yMs(c.clientMs), true)),
    panel(W, 'Bytes sent / plain 32-bit update', expTicks, 'expansion', `${target}\n${lines((c) => yExp(c.expansion), false)}`),
    panel(2 * W, 'Server unmask / raw PRG (replay median)', ratioTicks, 'unmask / raw, faster PRG (log scale)', `${ratioTarget}\n${ratioLegend}\n${ratioBody}`),
    '</svg>',
    '',
  ].join('\n');
  fs.writeFileSync(file, svg);
  return all.length;
}
