/**
 * SecAgg+ cost (issue 5, "Performance"): per cell of n clients x P coordinates x dropout rate, the
 * pure state machines (shared/secagg) play a whole round in this process, every client and the
 * server, with the crypto the coordinator and Node clients use (WebCrypto X25519 / Ed25519 / AES-CTR,
 * Node's native Ed25519 on the server). Reports client compute and bytes sent, server unmask time and
 * its PRG throughput next to the raw PRG throughput measured in the same run, the expansion over a
 * plain 32-bit update, and the whole round's compute with SecAgg+ on and off. Dropouts happen at the
 * masked-input stage (the server's most expensive case: their pairwise masks must be rebuilt).
 * Cells estimated above the time budget are not run and say so. Run:
 *   npx tsx scripts/bench/secagg.ts [--budget-s S] [--n 10,100] [--p 10000] [--dropout 0,0.1] [--no-append] [--json]
 */
import { wireBytes } from '../../client/core/secagg-client.ts';
import { nodeEd25519Verify } from '../../server/rounds/secagg-session.ts';
import { addModular } from '../../shared/privacy/modular.ts';
import { SecAggClient } from '../../shared/secagg/client.ts';
import { generateSigningKeyPair } from '../../shared/secagg/keys.ts';
import type { ClientMessage, ServerMessage } from '../../shared/secagg/messages.ts';
import { chooseParameters } from '../../shared/secagg/parameters.ts';
import { aesCtrPrg } from '../../shared/secagg/prg.ts';
import { cryptoRandomSource } from '../../shared/secagg/random.ts';
import { SecAggServerSession } from '../../shared/secagg/server.ts';
import { appendBenchmark, markdownTable } from './report.ts';

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
  roundSecondsOn?: number;
  roundSecondsOff?: number;
  estimateSeconds: number;
}

const rawPrgCache = new Map<number, number>();

/** Raw AES-CTR mask throughput at P words, MB/s, measured for at least 0.3 s. */
async function rawPrg(P: number): Promise<number> {
  const cached = rawPrgCache.get(P);
  if (cached !== undefined) return cached;
  const seed = cryptoRandomSource(new Uint8Array(32));
  await aesCtrPrg.expand(seed, P);
  let bytes = 0;
  const start = performance.now();
  while (performance.now() - start < 300) {
    await aesCtrPrg.expand(seed, P);
    bytes += 4 * P;
  }
  const mbps = bytes / 1e6 / ((performance.now() - start) / 1000);
  rawPrgCache.set(P, mbps);
  return mbps;
}

/** Rough cost model (measured on this machine's primitives) to keep the run within budget. */
function estimateSeconds(n: number, k: number, P: number, dropout: number, prgMBps: number): number {
  const perClient = 2.5e-3 + k * 0.9e-3 + ((k + 1) * 4 * P) / (prgMBps * 1e6);
  const server = ((n + dropout * n * k) * 4 * P) / (prgMBps * 1e6) + n * 1e-3;
  return n * perClient + server;
}

function parameters(n: number, dropout: number): { k: number; t: number } {
  const p = chooseParameters({ n, dropoutRate: Math.max(0.1, dropout), corruptFraction: CORRUPT_FRACTION });
  return { k: p.k, t: p.t };
}

async function runCell(n: number, P: number, dropout: number, budgetSeconds: number): Promise<CellResult> {
  const { k, t } = parameters(n, dropout);
  const prgMBps = await rawPrg(P);
  const estimate = estimateSeconds(n, k, P, dropout, prgMBps);
  const base = { n, P, dropout, k, t, estimateSeconds: estimate };
  if (estimate > budgetSeconds) return { ...base, status: 'skipped', note: `estimated ${estimate.toFixed(0)} s > budget` };

  const random = cryptoRandomSource;
  const config = { roundId: `bench-${n}-${P}-${dropout}`, n, k, t, graphSeed: random(new Uint8Array(32)), vectorLength: P, prg: 'aes-ctr' as const };
  const enrollment = Array.from({ length: n }, () => generateSigningKeyPair(random));
  const inputs = Array.from({ length: n }, (_, i) => Uint32Array.from({ length: P }, (_, j) => ((i * 7919 + j * 104_729) % 2001) - 1000));
  const dropped = new Set(Array.from({ length: Math.round(dropout * n) }, (_, i) => n - i));
  const roundStarted = performance.now();
  const server = new SecAggServerSession({ config, verifyKey: (i) => enrollment[i - 1]?.publicKey, verifySignature: nodeEd25519Verify });
  const clientMs = new Float64Array(n + 1);
  const clientBytes = new Float64Array(n + 1);
  const clients = enrollment.map((e, i) =>
    new SecAggClient({ config, index: i + 1, input: inputs[i]!, signingSecretKey: e.secretKey, verifyKey: (j) => enrollment[j - 1]?.publicKey, random, binaryMaskedInput: true }));
  const send = (from: number, message: ClientMessage | null) => {
    if (message === null) return;
    clientBytes[from] = clientBytes[from]! + wireBytes(message);
    server.receive(from, message);
  };
  for (const c of clients) {
    const s = performance.now();
    const m = c.advertiseKeys();
    clientMs[c.index] = clientMs[c.index]! + performance.now() - s;
    send(c.index, m);
  }
  let unmaskMs = 0;
  let outcome = await server.closeStage();
  while (outcome.status === 'continue') {
    for (const message of outcome.messages as readonly ServerMessage[]) {
      const c = clients[message.to - 1]!;
      if (message.type === 'forwarded-shares' && dropped.has(c.index)) continue;
      const s = performance.now();
      const reply = await c.receive(message);
      clientMs[c.index] = clientMs[c.index]! + performance.now() - s;
      send(c.index, reply);
    }
    const s = performance.now();
    const stage = server.stage;
    outcome = await server.closeStage();
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

  const survivorSet = new Set(survivors);
  const droppedWithSurvivors = [...dropped].filter((d) => server.graph.neighbours(d).some((v) => survivorSet.has(v)));
  const expansions = survivors.length + droppedWithSurvivors.reduce((s, d) => s + server.graph.neighbours(d).filter((v) => survivorSet.has(v)).length, 0);
  // Raw PRG throughput right after the unmask, on as many expansions (up to 50) at the same P, so both see the same machine load.
  const probe = Math.min(50, expansions);
  const probeSeed = random(new Uint8Array(32));
  const probeStarted = performance.now();
  for (let i = 0; i < probe; i++) await aesCtrPrg.expand(probeSeed, P);
  const rawNow = (probe * 4 * P) / 1e6 / ((performance.now() - probeStarted) / 1000);
  const mean = (values: Float64Array) => survivors.reduce((s, u) => s + values[u]!, 0) / survivors.length;
  const bytes = mean(clientBytes);
  return {
    ...base,
    status: 'done',
    clientMs: mean(clientMs),
    clientBytes: bytes,
    expansion: bytes / (4 * P),
    serverUnmaskMs: unmaskMs,
    unmaskMBps: (expansions * 4 * P) / 1e6 / (unmaskMs / 1000),
    rawPrgMBps: rawNow,
    roundSecondsOn,
    roundSecondsOff,
  };
}

const args = process.argv.slice(2);
const option = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const list = (name: string, fallback: readonly number[]): number[] => {
  const value = option(name);
  if (value === undefined) return [...fallback];
  const values = value.split(',').map(Number);
  if (values.some((v) => !Number.isFinite(v))) throw new RangeError(`"${name}" expected comma-separated numbers, got ${value}`);
  return values;
};
const budgetSeconds = Number(option('--budget-s') ?? 40);
const results: CellResult[] = [];
const runStarted = performance.now();
// Warm-up (JIT, WebCrypto, allocator) so the first reported cell is not charged for it.
await runCell(10, 1_000_000, 0.1, Number.POSITIVE_INFINITY);
for (const n of list('--n', N_VALUES)) {
  for (const P of list('--p', P_VALUES)) {
    for (const dropout of list('--dropout', DROPOUTS)) {
      const r = await runCell(n, P, dropout, budgetSeconds);
      results.push(r);
      process.stderr.write(`n=${n} P=${P} dropout=${dropout}: ${r.status}${r.note ? ` (${r.note})` : ''}${r.roundSecondsOn !== undefined ? ` in ${r.roundSecondsOn.toFixed(1)} s` : ''}\n`);
    }
  }
}
const totalSeconds = (performance.now() - runStarted) / 1000;

if (args.includes('--json')) {
  process.stdout.write(`${JSON.stringify({ node: process.version, totalSeconds, results }, null, 2)}\n`);
} else {
  const f = (v: number | undefined, digits = 1) => (v === undefined ? '-' : v.toFixed(digits));
  const rows = results.map((r) => [
    r.n,
    r.P.toLocaleString('en'),
    `${Math.round(r.dropout * 100)}%`,
    `${r.k} / ${r.t}`,
    r.status === 'skipped' ? `not run (${r.note})` : r.status,
    f(r.clientMs),
    r.clientBytes === undefined ? '-' : (r.clientBytes / 1024).toFixed(1),
    ((4 * r.P) / 1024).toFixed(1),
    f(r.expansion, 4),
    f(r.serverUnmaskMs, 0),
    f(r.unmaskMBps, 0),
    f(r.rawPrgMBps, 0),
    r.unmaskMBps !== undefined && r.rawPrgMBps !== undefined ? (r.unmaskMBps / r.rawPrgMBps).toFixed(2) : '-',
    f(r.roundSecondsOn, 2),
    f(r.roundSecondsOff, 3),
  ]);
  const table = markdownTable(
    ['n', 'P', 'dropout', 'k / t', 'status', 'client ms (mean)', 'client KiB sent', 'plain KiB', 'expansion', 'server unmask ms', 'unmask MB/s', 'raw PRG MB/s', 'unmask / raw', 'round s, SecAgg+ on', 'round s, off'],
    rows,
  );
  const notes = [
    'All cells run the pure state machines in one process (no sockets): "round s" is the compute of every client and the server back to back, not a latency with devices in parallel; "off" is the same round\'s server-side sum of plain 32-bit updates.',
    `(k, t) from chooseParameters with dropoutRate max(0.1, dropout) and corruptFraction ${CORRUPT_FRACTION}; dropouts leave at the masked-input stage. Client ms and bytes are the mean over surviving clients of all four stages; bytes count payload fields (binary masked input, base64 keys, shares and ciphertexts), not Socket.IO framing.`,
    `Cells whose estimated compute exceeds the ${budgetSeconds} s budget are not run (estimate from per-agreement and PRG costs measured here). Whole run: ${totalSeconds.toFixed(0)} s.`,
  ].join('\n\n');
  if (args.includes('--no-append')) process.stdout.write(`${table}\n\n${notes}\n`);
  else appendBenchmark('SecAgg+ cost: client compute and bytes, server unmask, round compute with SecAgg+ on and off', 'n/a (no tensors)', table, notes);
}
