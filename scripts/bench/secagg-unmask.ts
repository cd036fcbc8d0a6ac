/**
 * The SecAgg+ server's unmask stage alone (issue 5, "server unmask throughput >= 0.5 x raw PRG"),
 * from a recorded round: at n = 1,000 the clients take minutes per cell while the unmask takes
 * seconds, so a round is played once (`record`) and its transcript replayed into fresh server
 * sessions (`replay`), each time timing the unmask and then the raw PRG at the same P. A transcript
 * recorded at P replays at any P' <= P: masks are AES-CTR keystreams from a zero counter, so the
 * first P' words of every masked input are that round's masked input at P'. Run:
 *   npx tsx scripts/bench/secagg-unmask.ts record --n 1000 --p 100000 --dropout 0.1 --out DIR
 *   npx tsx scripts/bench/secagg-unmask.ts replay --in DIR [--p 10000] [--repeat 3] [--crypto native|isomorphic] (native: OpenSSL X25519/HKDF and AES-CTR mask workers, as the coordinator)
 */
import fs from 'node:fs';
import path from 'node:path';
import { nodeEd25519Verify } from '../../server/rounds/secagg-session.ts';
import { numberOption, option } from './args.ts';
import { replayUnmask, spread, type RoundTranscript } from './secagg-replay.ts';
import { addModular } from '../../shared/privacy/modular.ts';
import { fromBase64, toBase64 } from '../../shared/secagg/bytes.ts';
import { SecAggClient } from '../../shared/secagg/client.ts';
import type { SecAggRoundConfig } from '../../shared/secagg/config.ts';
import { generateSigningKeyPair } from '../../shared/secagg/keys.ts';
import type { ClientMessage, MaskedInputMessage, ServerMessage } from '../../shared/secagg/messages.ts';
import { chooseParameters } from '../../shared/secagg/parameters.ts';
import { cryptoRandomSource } from '../../shared/secagg/random.ts';
import { SecAggServerSession } from '../../shared/secagg/server.ts';

const CORRUPT_FRACTION = 0.1;

interface Transcript {
  config: Omit<SecAggRoundConfig, 'graphSeed'> & { graphSeed: string };
  verifyKeys: string[];
  /** Client messages in arrival order, per stage; masked inputs live in masked.bin (survivor order). */
  advertise: ClientMessage[];
  share: ClientMessage[];
  maskedFrom: number[];
  unmask: ClientMessage[];
}

/** The benchmark's input vectors (as scripts/bench/secagg.ts): structured, small, prefix-stable in P. */
const inputOf = (i: number, P: number) => Uint32Array.from({ length: P }, (_, j) => ((i * 7919 + j * 104_729) % 2001) - 1000);

async function record(): Promise<void> {
  const n = numberOption('--n');
  const P = numberOption('--p');
  const dropout = numberOption('--dropout', 0.1);
  const out = option('--out');
  if (out === undefined) throw new RangeError('"--out" is required');
  const { k, t } = chooseParameters({ n, dropoutRate: Math.max(0.1, dropout), corruptFraction: CORRUPT_FRACTION });
  const random = cryptoRandomSource;
  const config: SecAggRoundConfig = { roundId: `bench-unmask-${n}-${dropout}`, n, k, t, graphSeed: random(new Uint8Array(32)), vectorLength: P, prg: 'aes-ctr' };
  const enrollment = Array.from({ length: n }, () => generateSigningKeyPair(random));
  const dropped = new Set(Array.from({ length: Math.round(dropout * n) }, (_, i) => n - i));
  const server = new SecAggServerSession({ config, verifyKey: (i) => enrollment[i - 1]?.publicKey, verifySignature: nodeEd25519Verify });
  const clients = enrollment.map((e, i) =>
    new SecAggClient({ config, index: i + 1, input: inputOf(i, P), signingSecretKey: e.secretKey, verifyKey: (j) => enrollment[j - 1]?.publicKey, random, binaryMaskedInput: true }));
  const transcript: Transcript = {
    config: { ...config, graphSeed: toBase64(config.graphSeed) },
    verifyKeys: enrollment.map((e) => toBase64(e.publicKey)),
    advertise: [],
    share: [],
    maskedFrom: [],
    unmask: [],
  };
  fs.mkdirSync(out, { recursive: true });
  const masked = fs.openSync(path.join(out, 'masked.bin'), 'w');
  const started = performance.now();
  for (const c of clients) {
    const m = c.advertiseKeys();
    transcript.advertise.push(m);
    server.receive(c.index, m);
  }
  let outcome = await server.closeStage();
  while (outcome.status === 'continue' && server.stage !== 'unmask') {
    for (const message of outcome.messages as readonly ServerMessage[]) {
      const c = clients[message.to - 1]!;
      if (message.type === 'forwarded-shares' && dropped.has(c.index)) continue;
      const reply = await c.receive(message);
      if (reply === null) continue;
      server.receive(c.index, reply);
      if (reply.type === 'share-keys') transcript.share.push(reply);
      if (reply.type === 'masked-input') {
        transcript.maskedFrom.push(reply.from);
        fs.writeSync(masked, reply.maskedInput as Uint8Array);
      }
    }
    outcome = await server.closeStage();
    process.stderr.write(`closed -> ${server.stage} after ${((performance.now() - started) / 1000).toFixed(0)} s\n`);
  }
  if (outcome.status !== 'continue') throw new Error(`round ended early: ${outcome.status}`);
  for (const message of outcome.messages as readonly ServerMessage[]) {
    const reply = await clients[message.to - 1]!.receive(message);
    if (reply !== null) transcript.unmask.push(reply);
  }
  fs.closeSync(masked);
  fs.writeFileSync(path.join(out, 'transcript.json'), JSON.stringify(transcript));
  process.stderr.write(`recorded n=${n} k=${k} t=${t} P=${P} dropout=${dropout} in ${((performance.now() - started) / 1000).toFixed(0)} s to ${out}\n`);
}

async function replay(): Promise<void> {
  const dir = option('--in');
  if (dir === undefined) throw new RangeError('"--in" is required');
  const transcript = JSON.parse(fs.readFileSync(path.join(dir, 'transcript.json'), 'utf8')) as Transcript;
  const recordedP = transcript.config.vectorLength;
  const P = numberOption('--p', recordedP);
  if (P > recordedP) throw new RangeError(`"--p" expected at most the recorded ${recordedP}, got ${P}`);
  const repeat = numberOption('--repeat', 3);
  if (!Number.isInteger(repeat) || repeat < 1) throw new RangeError(`"--repeat" expected a positive integer, got ${repeat}`);
  const native = (option('--crypto') ?? 'native') === 'native';
  const config: SecAggRoundConfig = { ...transcript.config, graphSeed: fromBase64('graphSeed', transcript.config.graphSeed), vectorLength: P };
  const maskedFile = fs.readFileSync(path.join(dir, 'masked.bin'));
  const masked = transcript.maskedFrom.map((u, s): MaskedInputMessage =>
    ({ type: 'masked-input', roundId: config.roundId, from: u, maskedInput: new Uint8Array(maskedFile.buffer, maskedFile.byteOffset + s * 4 * recordedP, 4 * P) }));
  const expected = new Uint32Array(P);
  for (const u of transcript.maskedFrom) addModular(expected, inputOf(u - 1, P));
  const round: RoundTranscript = {
    config,
    verifyKeys: transcript.verifyKeys.map((key) => fromBase64('verifyKey', key)),
    advertise: transcript.advertise,
    share: transcript.share,
    masked,
    unmask: transcript.unmask,
  };
  const ratios: number[] = [];
  for (let r = 0; r < repeat; r++) {
    const run = await replayUnmask(round, expected, { native, probeMs: 500 });
    ratios.push(run.ratio);
    const line = `n=${config.n} k=${config.k} t=${config.t} P=${P} survivors=${masked.length} dropped=${run.dropped} expansions=${run.expansions} ` +
      `crypto=${native ? 'native' : 'isomorphic'} masked inputs received and summed ${run.arrivalMs.toFixed(0)} ms, unmask shares received and decoded ${run.sharesMs.toFixed(0)} ms; ` +
      `unmask ${run.unmaskMs.toFixed(0)} ms, ${((run.expansions * 4 * P) / 1e3 / run.unmaskMs).toFixed(0)} MB/s, raw ${run.raw.best.toFixed(0)} MB/s (WebCrypto ${run.raw.webcrypto.toFixed(0)}, OpenSSL ${run.raw.openssl.toFixed(0)}), ratio ${run.ratio.toFixed(2)}`;
    process.stdout.write(`${line}\n`);
  }
  const { median, min, max } = spread(ratios);
  process.stdout.write(`ratio over ${repeat} replays: median ${median.toFixed(2)}, range ${min.toFixed(2)}-${max.toFixed(2)}\n`);
}

const mode = process.argv[2];
if (mode === 'record') await record();
else if (mode === 'replay') await replay();
else throw new RangeError(`expected "record" or "replay" as the first argument, got ${String(mode)}`);
