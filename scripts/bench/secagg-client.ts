/**
 * SecAgg+ client cost per stage in headless Chromium and in Node, side by side (issue 5: client
 * compute time, which should grow with k = O(log n), not n; shoppers' browsers are Portrait's main
 * clients, and the grid in scripts/bench/secagg.ts times Node clients only). For n in {10, 100,
 * 1,000}, (k, t) come from chooseParameters (10% dropout, 10% corrupt) and a round is played with
 * k + 1 clients in the complete graph of degree k: a client's work depends on k, t and P, not on n
 * (its neighbours' keys, shares and masks are k of each either way). Client 1 runs in Node and client
 * 2 in Chromium (the same bundled code, scripts/bench/secagg-client-measure.ts; page served from
 * 127.0.0.1, a secure context for WebCrypto), the others and the server in this process; each call
 * is awaited in turn, so the two measured clients never run at once. Per stage the median over the
 * rounds. Run:
 *   npx tsx scripts/bench/secagg-client.ts [--n 10,100,1000] [--p 10000,100000] [--rounds 3] [--no-append]
 */
import type { Page } from 'playwright-core';
import { nodeMaskKeyCrypto } from '../../server/rounds/secagg-native-crypto.ts';
import { nodeMaskSink } from '../../server/rounds/secagg-native-masks.ts';
import { nodeEd25519Verify } from '../../server/rounds/secagg-session.ts';
import { addModular } from '../../shared/privacy/modular.ts';
import { toBase64 } from '../../shared/secagg/bytes.ts';
import { SecAggClient } from '../../shared/secagg/client.ts';
import { generateSigningKeyPair } from '../../shared/secagg/keys.ts';
import type { ClientMessage, ServerMessage } from '../../shared/secagg/messages.ts';
import { chooseParameters } from '../../shared/secagg/parameters.ts';
import { cryptoRandomSource } from '../../shared/secagg/random.ts';
import { SecAggServerSession } from '../../shared/secagg/server.ts';
import { flag, numberList, numberOption } from './args.ts';
import { openBundlePage } from './chromium-page.ts';
import { markdownTable, writeBenchmark } from './report.ts';
import { benchInput, TimedClient, type ClientSpec, type TimedReply } from './secagg-client-measure.ts';
import { spread } from './secagg-replay.ts';

const STAGES = ['advertise keys', 'share keys', 'masked input', 'unmask'] as const;
type StageName = (typeof STAGES)[number];
/** The server message each later stage's client work starts from. */
const STAGE_OF: Record<ServerMessage['type'], StageName | undefined> = { 'round-keys': 'share keys', 'forwarded-shares': 'masked input', 'unmask-request': 'unmask', abort: undefined };

interface Measured {
  start(spec: ClientSpec): Promise<TimedReply>;
  receive(message: ServerMessage): Promise<TimedReply>;
}

const rounds = numberOption('--rounds', 3);
if (!Number.isInteger(rounds) || rounds < 1) throw new RangeError(`"--rounds" expected a positive integer, got ${rounds}`);

/** One round of k + 1 clients; returns the measured clients' stage times. */
async function playRound(k: number, t: number, P: number, measured: readonly Measured[]): Promise<Record<StageName, number>[]> {
  const m = k + 1;
  const random = cryptoRandomSource;
  const config = { roundId: `client-bench-${k}-${P}`, n: m, k, t, graphSeed: random(new Uint8Array(32)), vectorLength: P, prg: 'aes-ctr' as const };
  const enrollment = Array.from({ length: m }, () => generateSigningKeyPair(random));
  const server = new SecAggServerSession({ config, verifyKey: (i) => enrollment[i - 1]?.publicKey, verifySignature: nodeEd25519Verify, maskKeyCrypto: nodeMaskKeyCrypto, maskSink: nodeMaskSink });
  const others = enrollment.slice(measured.length).map((e, j) => new SecAggClient({
    config, index: measured.length + j + 1, input: benchInput(measured.length + j, P), signingSecretKey: e.secretKey, verifyKey: (i) => enrollment[i - 1]?.publicKey, random, binaryMaskedInput: true,
  }));
  const times = measured.map(() => ({}) as Record<StageName, number>);
  const send = (from: number, reply: ClientMessage | null) => {
    if (reply !== null) server.receive(from, reply);
  };
  const verifyKeys = enrollment.map((e) => toBase64(e.publicKey));
  for (const [i, client] of measured.entries()) {
    const { reply, ms } = await client.start({ ...config, graphSeed: toBase64(config.graphSeed), index: i + 1, signingSecretKey: toBase64(enrollment[i]!.secretKey), verifyKeys });
    times[i]!['advertise keys'] = ms;
    send(i + 1, reply);
  }
  for (const c of others) send(c.index, c.advertiseKeys());
  let outcome = await server.closeStage();
  while (outcome.status === 'continue') {
    for (const message of outcome.messages as readonly ServerMessage[]) {
      const i = message.to - 1;
      if (i < measured.length) {
        const { reply, ms } = await measured[i]!.receive(message);
        const stage = STAGE_OF[message.type];
        if (stage !== undefined) times[i]![stage] = ms;
        send(message.to, reply);
      } else {
        send(message.to, await others[i - measured.length]!.receive(message));
      }
    }
    outcome = await server.closeStage();
  }
  if (outcome.status !== 'done') throw new Error(`round k=${k} P=${P} ended ${outcome.status}`);
  const expected = new Uint32Array(P);
  for (let i = 0; i < m; i++) addModular(expected, benchInput(i, P));
  if (!expected.every((v, j) => v === outcome.sum[j])) throw new Error(`round k=${k} P=${P}: unmasked sum differs from the plain sum`);
  return times;
}

/** The page's client, through page.evaluate (JSON both ways, as over the wire). */
function chromiumClient(page: Page): Measured {
  type Bench = { secaggClientBench: { start(spec: ClientSpec): TimedReply; receive(message: ServerMessage): Promise<TimedReply> } };
  return {
    start: (spec) => page.evaluate((s) => (globalThis as unknown as Bench).secaggClientBench.start(s), spec),
    receive: (message) => page.evaluate((msg) => (globalThis as unknown as Bench).secaggClientBench.receive(msg), message),
  };
}

function nodeClient(): Measured {
  let client: TimedClient | undefined;
  return {
    start: async (spec) => {
      client = new TimedClient(spec);
      return client.advertise();
    },
    receive: (message) => client!.receive(message),
  };
}

const { page, version: chromiumVersion, close } = await openBundlePage(new URL('./secagg-client-measure.ts', import.meta.url));
const rows: (string | number)[][] = [];
const runStarted = performance.now();
try {
  const measured = [nodeClient(), chromiumClient(page)];
  await playRound(9, 6, 1000, measured); // warm-up: JIT, WebCrypto, the page's first calls
  for (const n of numberList('--n', [10, 100, 1000])) {
    const { k, t } = chooseParameters({ n, dropoutRate: 0.1, corruptFraction: 0.1 });
    for (const P of numberList('--p', [10_000, 100_000])) {
      const samples: Record<StageName, number>[][] = [];
      for (let r = 0; r < rounds; r++) samples.push(await playRound(k, t, P, measured));
      const median = (who: number, stage: StageName) => spread(samples.map((s) => s[who]![stage])).median;
      const total = (who: number) => spread(samples.map((s) => STAGES.reduce((sum, stage) => sum + s[who]![stage], 0))).median;
      const cells = STAGES.flatMap((stage) => [median(0, stage).toFixed(1), median(1, stage).toFixed(1)]);
      rows.push([n, k, t, P.toLocaleString('en'), ...cells, total(0).toFixed(1), total(1).toFixed(1), (total(1) / total(0)).toFixed(2), (total(1) / (k + 1)).toFixed(2)]);
      process.stderr.write(`n=${n} (k=${k}, t=${t}) P=${P}: Node ${total(0).toFixed(0)} ms, Chromium ${total(1).toFixed(0)} ms\n`);
    }
  }
} finally {
  await close();
}

const table = markdownTable(
  ['n', 'k', 't', 'P', ...STAGES.flatMap((s) => [`${s} ms, Node`, `${s} ms, Chromium`]), 'total ms, Node', 'total ms, Chromium', 'Chromium / Node', 'Chromium ms / (k+1)'],
  rows,
);
const notes = [
  `Node ${process.version}; Chromium ${chromiumVersion} (headless, --disable-gpu). One client in each, running the same bundled state machine (shared/secagg: WebCrypto Ed25519 verification, X25519, HKDF and AES-CTR where the runtime has them, tweetnacl otherwise; tweetnacl signing and XSalsa20-Poly1305 share ciphertexts) in a round of k + 1 clients (complete graph of degree k; a client's work depends on k, t and P, not on n). Median of ${rounds} rounds per cell after a warm-up round. Stages: advertise keys (key generation, signature), share keys (k advertisement signatures checked, two secrets split into k + 1 shares, k ciphertexts), masked input (k ciphertexts opened, k X25519 agreements and KDFs, k + 1 masks of P words), unmask (the requested shares). Each stage is timed inside its runtime around the client call; messages cross to the page as JSON (masked input in base64) outside that time. The page's DP noise and training are not here (scripts/bench/browser.ts times those).`,
  `Whole run: ${((performance.now() - runStarted) / 1000).toFixed(0)} s.`,
].join('\n\n');
if (flag('--no-append')) process.stdout.write(`${table}\n\n${notes}\n`);
else writeBenchmark({ key: 'secagg-client', title: 'SecAgg+ client per stage: Chromium and Node side by side', tfjsBackend: 'n/a (no tensors)', table, notes });
