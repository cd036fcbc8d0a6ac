/**
 * SecAgg+ against the coordinator plus a colluding coalition at the bound, on real protocol runs:
 * the coordinator's whole transcript and every secret of t - 1 clients leave an honest survivor's
 * input masked, and what they can unmask of the honest clients adds up to no more than the sum the
 * protocol outputs (Bonawitz et al. 2017, Sec. 6, Thm. 6.3/6.4: the joint view of the server and
 * fewer than t clients is simulated from the honest survivors' sum; Bell et al. 2020, Sec. 3: with a
 * sparse graph the bound is per neighbourhood, since only u's k neighbours hold u's shares).
 */
import nacl from 'tweetnacl';
import { describe, expect, it } from 'vitest';
import { bytesToU32Vector, fromBase64, toBase64 } from '../../../shared/secagg/bytes.ts';
import { SecAggClient } from '../../../shared/secagg/client.ts';
import type { SecAggRoundConfig } from '../../../shared/secagg/config.ts';
import { ProtocolError } from '../../../shared/secagg/errors.ts';
import { decryptShares, generateRoundKeys, generateSigningKeyPair, pairwiseSeed, type RoundKeys, type SharePair } from '../../../shared/secagg/keys.ts';
import type { ClientMessage } from '../../../shared/secagg/messages.ts';
import { chooseParameters, type ParameterRequest } from '../../../shared/secagg/parameters.ts';
import { addMaskInto, prgByName } from '../../../shared/secagg/prg.ts';
import { randomBytes } from '../../../shared/secagg/random.ts';
import { bytesToBigint, interpolateAtZero, reconstructSecret, type Share } from '../../../shared/secagg/shamir.ts';
import { SecAggServerSession } from '../../../shared/secagg/server.ts';
import { chiSquareTopByte, plainSum, playRound, seededRandom, type Drops, type Round, type RoundRun } from './helpers.ts';

/** Coordinates per input: 16 expected counts per top-byte bin for the chi-square test. */
const P = 4096;
const VICTIM = 5;
/** 0.999 quantile of chi-square with 255 degrees of freedom. */
const CHI_SQUARE_CRITICAL = 330.5;
/** Four standard deviations of the sample correlation of independent vectors of length P. */
const CORRELATION_BOUND = 4 / Math.sqrt(P);

interface Scenario {
  readonly name: string;
  readonly request: ParameterRequest;
  readonly expected: { readonly k: number; readonly t: number; readonly completeGraph: boolean };
}

const SCENARIOS: readonly Scenario[] = [
  // The default choice for n <= 20: the complete graph, 2t > n + ceil(0.3 n).
  { name: 'complete graph', request: { n: 10, dropoutRate: 0.1, corruptFraction: 0.3 }, expected: { k: 9, t: 7, completeGraph: true } },
  // A SecAgg+ random 6-regular graph (a round-config override, accepted at 10 security bits for n=10).
  { name: 'sparse graph', request: { n: 10, dropoutRate: 0.1, corruptFraction: 0.1, securityBits: 10, k: 6 }, expected: { k: 6, t: 6, completeGraph: false } },
];

const clientLabel = (label: string, index: number): string => `collusion/${label}/client-${index}`;

/** A DP-quantised-looking update: small centred integers mod 2^32, far from uniform. */
function structuredInput(index: number): Uint32Array {
  return Uint32Array.from({ length: P }, (_, i) => (Math.round(300 * Math.sin((i * index) / 97)) + (i % 11) - 5) >>> 0);
}

function buildRound(label: string, n: number, k: number, t: number): Round {
  const random = seededRandom(`collusion/${label}/coordinator`);
  const config: SecAggRoundConfig = { roundId: `collusion-${label}`, n, k, t, graphSeed: random(new Uint8Array(32)), vectorLength: P, prg: 'aes-ctr' };
  const enrollment = Array.from({ length: n }, () => generateSigningKeyPair(random));
  const verifyKey = (i: number) => enrollment[i - 1]?.publicKey;
  const inputs = Array.from({ length: n }, (_, u) => structuredInput(u + 1));
  const server = new SecAggServerSession({ config, verifyKey });
  const clients = inputs.map((input, i) => new SecAggClient({
    config, index: i + 1, input, signingSecretKey: enrollment[i]!.secretKey, verifyKey, random: seededRandom(clientLabel(label, i + 1)),
  }));
  return { config, server, clients, inputs, enrollment };
}

interface ClientSecrets {
  readonly keys: RoundKeys;
  readonly selfMaskSeed: Uint8Array;
}

/**
 * A client's round secrets from a fresh copy of its seeded source, drawn in the order client.ts
 * consumes it: c_u then s_u (32 bytes each, advertiseKeys), then b_u (32 bytes, first draw of the
 * share-keys handler; Shamir coefficients and nonces come after and are not needed).
 */
function replaySecrets(label: string, index: number): ClientSecrets {
  const random = seededRandom(clientLabel(label, index));
  const keys = generateRoundKeys(random);
  return { keys, selfMaskSeed: randomBytes(random, 32) };
}

type Received<T extends ClientMessage['type']> = Extract<ClientMessage, { type: T }>;

function receivedOf<T extends ClientMessage['type']>(run: RoundRun, type: T): Received<T>[] {
  return run.received.filter((m): m is Received<T> => m.type === type);
}

function advertisedBy(run: RoundRun, u: number): Received<'advertise-keys'> {
  const found = receivedOf(run, 'advertise-keys').find((m) => m.from === u);
  if (found === undefined) throw new Error(`no advertise-keys message from client ${u} in the transcript`);
  return found;
}

function maskedInputOf(run: RoundRun, u: number): Uint32Array {
  const found = receivedOf(run, 'masked-input').find((m) => m.from === u);
  if (found === undefined) throw new Error(`no masked-input message from client ${u} in the transcript`);
  const bytes = typeof found.maskedInput === 'string' ? fromBase64('maskedInput', found.maskedInput) : found.maskedInput;
  return bytesToU32Vector('maskedInput', bytes, P);
}

/** Every share of `owner`'s secret of one kind that the coordinator received in unmask responses. */
function revealedShares(run: RoundRun, owner: number, kind: 'selfMaskShares' | 'keyShares'): Share[] {
  return receivedOf(run, 'unmask-shares').flatMap((m) => m[kind].filter((s) => s.of === owner).map((s) => ({ x: m.from, y: fromBase64('share', s.share) })));
}

/** The share pair `from` encrypted to `to`, opened with `to`'s encryption secret key (as `to` itself would). */
function openForwarded(run: RoundRun, round: Round, from: number, to: number, toSecrets: ClientSecrets): SharePair {
  const forwarded = run.sent.find((m) => m.type === 'forwarded-shares' && m.to === to);
  const entry = forwarded?.type === 'forwarded-shares' ? forwarded.ciphertexts.find((c) => c.from === from) : undefined;
  if (entry === undefined) throw new Error(`no ciphertext from client ${from} forwarded to client ${to}`);
  const senderKey = fromBase64('encryptionPublicKey', advertisedBy(run, from).encryptionPublicKey);
  const sealed = { nonce: fromBase64('nonce', entry.nonce), ciphertext: fromBase64('ciphertext', entry.ciphertext) };
  return decryptShares(toSecrets.keys.encryption.secretKey, senderKey, round.config.roundId, from, to, sealed);
}

/**
 * y_u minus PRG(b_u) and minus the pairwise masks u shares with every client whose mask secret key
 * is in `knownMaskKeys` (u added +PRG(s_{u,w}) for u < w and -PRG(s_{u,w}) otherwise, client.ts).
 */
async function unmaskWhatIsKnown(run: RoundRun, round: Round, u: number, selfMaskSeed: Uint8Array, knownMaskKeys: ReadonlyMap<number, Uint8Array>): Promise<Uint32Array> {
  const prg = prgByName(round.config.prg);
  const residual = maskedInputOf(run, u);
  addMaskInto(residual, await prg.expand(selfMaskSeed, P), -1);
  const uPublic = fromBase64('maskPublicKey', advertisedBy(run, u).maskPublicKey);
  for (const w of round.server.graph.neighbours(u)) {
    const key = knownMaskKeys.get(w);
    if (key === undefined) continue;
    const seed = pairwiseSeed(key, uPublic, round.config.roundId, w, u);
    addMaskInto(residual, await prg.expand(seed, P), u < w ? -1 : 1);
  }
  return residual;
}


/** Sample correlation of the two vectors read as centred (signed) 32-bit integers. */
function correlation(a: Uint32Array, b: Uint32Array): number {
  const x = new Int32Array(a.buffer, a.byteOffset, a.length);
  const y = new Int32Array(b.buffer, b.byteOffset, b.length);
  let mx = 0;
  let my = 0;
  for (let i = 0; i < x.length; i++) {
    mx += x[i]!;
    my += y[i]!;
  }
  mx /= x.length;
  my /= y.length;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < x.length; i++) {
    sxy += (x[i]! - mx) * (y[i]! - my);
    sxx += (x[i]! - mx) ** 2;
    syy += (y[i]! - my) ** 2;
  }
  return sxy / Math.sqrt(sxx * syy);
}

function equalCoordinates(a: Uint32Array, b: Uint32Array): number {
  let count = 0;
  for (let i = 0; i < a.length; i++) if (a[i] === b[i]) count++;
  return count;
}

function expectMasked(residual: Uint32Array, input: Uint32Array): void {
  expect(chiSquareTopByte(residual)).toBeLessThan(CHI_SQUARE_CRITICAL);
  expect(Math.abs(correlation(residual, input))).toBeLessThan(CORRELATION_BOUND);
  expect(equalCoordinates(residual, input)).toBeLessThan(4);
}

describe.each(SCENARIOS)('SecAgg+ collusion at the bound: $name', ({ name, request, expected }) => {
  const params = chooseParameters(request);
  const { n, k, t } = params;

  it('parameters are the documented choice', () => {
    expect(params).toMatchObject(expected);
  });

  it('the coordinator plus t - 1 colluding neighbours of a victim cannot unmask it', async () => {
    const label = `${name}/coalition`;
    const round = buildRound(label, n, k, t);
    const run = await playRound(round);
    expect(run.outcome.status).toBe('done');
    if (run.outcome.status !== 'done') return;
    const everyone = Array.from({ length: n }, (_, i) => i + 1);
    expect(Array.from(run.outcome.sum)).toEqual(Array.from(plainSum(round.inputs, everyone)));

    const { roundId } = round.config;
    const prg = prgByName(round.config.prg);
    const graph = round.server.graph;
    const victimNeighbours = graph.neighbours(VICTIM);
    // As many of the victim's share holders as the bound allows: t - 1 of its k neighbours.
    const coalition = victimNeighbours.slice(0, t - 1);
    const honestNeighbours = victimNeighbours.filter((w) => !coalition.includes(w));
    expect(coalition).toHaveLength(t - 1);
    expect(honestNeighbours.length).toBeGreaterThan(0);

    // 1. Each colluder's secrets, regenerated from its source, are the ones it used in the round.
    const colluderSecrets = new Map(coalition.map((c) => [c, replaySecrets(label, c)] as const));
    for (const [c, secrets] of colluderSecrets) {
      const advertised = advertisedBy(run, c);
      expect(toBase64(secrets.keys.encryption.publicKey)).toBe(advertised.encryptionPublicKey);
      expect(toBase64(secrets.keys.mask.publicKey)).toBe(advertised.maskPublicKey);
    }
    // A colluder strips all its own masks and gets its own input back: b_c and the mask arithmetic are right.
    for (const [c, secrets] of colluderSecrets) {
      const own = maskedInputOf(run, c);
      addMaskInto(own, await prg.expand(secrets.selfMaskSeed, P), -1);
      for (const w of graph.neighbours(c)) {
        const wPublic = fromBase64('maskPublicKey', advertisedBy(run, w).maskPublicKey);
        addMaskInto(own, await prg.expand(pairwiseSeed(secrets.keys.mask.secretKey, wPublic, roundId, c, w), P), c < w ? -1 : 1);
      }
      expect(Array.from(own)).toEqual(Array.from(round.inputs[c - 1]!));
    }

    // 2. The victim's shares the coalition holds: t - 1 of each kind, from the ciphertexts forwarded to it.
    const victimTruth = replaySecrets(label, VICTIM);
    const victimAdvertised = advertisedBy(run, VICTIM);
    expect(toBase64(victimTruth.keys.mask.publicKey)).toBe(victimAdvertised.maskPublicKey);
    const held = coalition.map((c) => ({ x: c, pair: openForwarded(run, round, VICTIM, c, colluderSecrets.get(c)!) }));
    const heldSelf: Share[] = held.map((h) => ({ x: h.x, y: h.pair.selfMaskShare }));
    const heldKey: Share[] = held.map((h) => ({ x: h.x, y: h.pair.keyShare }));
    expect(heldSelf).toHaveLength(t - 1);

    // The victim's ciphertexts to honest holders stay closed to every colluder's keys.
    const victimShareKeys = receivedOf(run, 'share-keys').find((m) => m.from === VICTIM)!;
    const victimEncryptionKey = fromBase64('encryptionPublicKey', victimAdvertised.encryptionPublicKey);
    for (const h of honestNeighbours) {
      const entry = victimShareKeys.ciphertexts.find((c) => c.to === h)!;
      const sealed = { nonce: fromBase64('nonce', entry.nonce), ciphertext: fromBase64('ciphertext', entry.ciphertext) };
      for (const secrets of colluderSecrets.values()) {
        expect(() => decryptShares(secrets.keys.encryption.secretKey, victimEncryptionKey, roundId, VICTIM, h, sealed)).toThrow(ProtocolError);
      }
    }

    // The transcript adds no key share of the victim (a survivor), so the coalition has t - 1 of them.
    expect(revealedShares(run, VICTIM, 'keyShares')).toHaveLength(0);
    expect(() => reconstructSecret(heldKey, t)).toThrow(RangeError);
    const asPoints = (shares: readonly Share[]) => shares.map((s) => ({ x: BigInt(s.x), y: bytesToBigint(s.y) }));
    const keyGuess = interpolateAtZero(asPoints(heldKey));
    expect(keyGuess).not.toBe(bytesToBigint(victimTruth.keys.mask.secretKey));
    if (keyGuess < 1n << 256n) {
      const guessBytes = Uint8Array.from({ length: 32 }, (_, i) => Number((keyGuess >> BigInt(8 * (31 - i))) & 0xffn));
      expect(toBase64(nacl.scalarMult.base(guessBytes))).not.toBe(victimAdvertised.maskPublicKey);
    }
    expect(interpolateAtZero(asPoints(heldSelf))).not.toBe(bytesToBigint(victimTruth.selfMaskSeed));
    // Control: one more genuine share, from an honest holder (opened with its keys, which the coalition lacks), completes both.
    const honestHolder = honestNeighbours[0]!;
    const honestPair = openForwarded(run, round, VICTIM, honestHolder, replaySecrets(label, honestHolder));
    const fullKey = reconstructSecret([...heldKey, { x: honestHolder, y: honestPair.keyShare }], t);
    expect(toBase64(nacl.scalarMult.base(fullKey))).toBe(victimAdvertised.maskPublicKey);
    expect(reconstructSecret([...heldSelf, { x: honestHolder, y: honestPair.selfMaskShare }], t)).toEqual(victimTruth.selfMaskSeed);

    // The honest coordinator does learn b_victim (it unmasks survivors' self masks by design).
    const transcriptSelf = revealedShares(run, VICTIM, 'selfMaskShares');
    expect(transcriptSelf.length).toBeGreaterThanOrEqual(t);
    const victimSeed = reconstructSecret(transcriptSelf, t);
    expect(victimSeed).toEqual(victimTruth.selfMaskSeed);

    // 3. Everything the coalition can strip: b_victim and the pairwise masks with colluders. Still masked.
    const colluderKeys = new Map([...colluderSecrets].map(([c, s]) => [c, s.keys.mask.secretKey] as const));
    const input = round.inputs[VICTIM - 1]!;
    const residual = await unmaskWhatIsKnown(run, round, VICTIM, victimSeed, colluderKeys);
    expectMasked(residual, input);
    // The statistic has power: the input itself fails the uniformity test by far.
    expect(chiSquareTopByte(input)).toBeGreaterThan(CHI_SQUARE_CRITICAL);
    // Control: every mask removed (the honest pairwise ones need the t-share key) gives the input exactly.
    const everyKey = new Map(colluderKeys);
    for (const h of honestNeighbours) {
      const hPublic = fromBase64('maskPublicKey', advertisedBy(run, h).maskPublicKey);
      const seed = pairwiseSeed(fullKey, hPublic, roundId, VICTIM, h);
      addMaskInto(residual, await prg.expand(seed, P), VICTIM < h ? -1 : 1);
      everyKey.set(h, replaySecrets(label, h).keys.mask.secretKey);
    }
    expect(Array.from(residual)).toEqual(Array.from(input));
    expect(Array.from(await unmaskWhatIsKnown(run, round, VICTIM, victimSeed, everyKey))).toEqual(Array.from(input));

    // 4. The same stripping applied to every honest client: the residuals sum to exactly the honest
    // clients' sum (the output minus the colluders' inputs), as honest-honest masks cancel only in the sum.
    const honest = everyone.filter((u) => !coalition.includes(u));
    const residualSum = new Uint32Array(P);
    for (const u of honest) {
      const seed = reconstructSecret(revealedShares(run, u, 'selfMaskShares'), t);
      addMaskInto(residualSum, await unmaskWhatIsKnown(run, round, u, seed, colluderKeys), 1);
    }
    expect(Array.from(residualSum)).toEqual(Array.from(plainSum(round.inputs, honest)));
  });

  it('the coordinator alone, with a dropout at masked-input, never gets both shares of one client', async () => {
    const label = `${name}/server-alone`;
    const round = buildRound(label, n, k, t);
    const dropped = round.server.graph.neighbours(VICTIM)[0]!;
    const drops: Drops = { 'masked-input': [dropped] };
    const run = await playRound(round, drops);
    expect(run.outcome.status).toBe('done');
    if (run.outcome.status !== 'done') return;
    const survivors = Array.from({ length: n }, (_, i) => i + 1).filter((u) => u !== dropped);
    expect(run.outcome.survivors).toEqual(survivors);
    expect(Array.from(run.outcome.sum)).toEqual(Array.from(plainSum(round.inputs, survivors)));
    expect(receivedOf(run, 'masked-input').map((m) => m.from)).not.toContain(dropped);

    // Which kinds of share of each client reached the coordinator, over every unmask response.
    const responses = receivedOf(run, 'unmask-shares');
    expect(responses.map((m) => m.from).sort((a, b) => a - b)).toEqual(survivors);
    const kinds = new Map<number, Set<'self-mask' | 'key'>>();
    const note = (u: number, kind: 'self-mask' | 'key') => kinds.set(u, (kinds.get(u) ?? new Set()).add(kind));
    for (const m of responses) {
      for (const s of m.selfMaskShares) note(s.of, 'self-mask');
      for (const s of m.keyShares) note(s.of, 'key');
    }
    for (const u of survivors) expect([...(kinds.get(u) ?? [])]).toEqual(['self-mask']);
    expect([...(kinds.get(dropped) ?? [])]).toEqual(['key']);
    expect(revealedShares(run, dropped, 'selfMaskShares')).toHaveLength(0);
    expect(revealedShares(run, dropped, 'keyShares').length).toBeGreaterThanOrEqual(t);
    for (const u of survivors) expect(revealedShares(run, u, 'keyShares')).toHaveLength(0);

    // With what it legitimately rebuilds (b_victim and the dropped neighbour's mask key), the
    // coordinator strips the victim's self mask and its pairwise mask with the dropout: still masked.
    const droppedKey = reconstructSecret(revealedShares(run, dropped, 'keyShares'), t);
    expect(toBase64(nacl.scalarMult.base(droppedKey))).toBe(advertisedBy(run, dropped).maskPublicKey);
    const victimSeed = reconstructSecret(revealedShares(run, VICTIM, 'selfMaskShares'), t);
    expect(victimSeed).toEqual(replaySecrets(label, VICTIM).selfMaskSeed);
    const input = round.inputs[VICTIM - 1]!;
    expectMasked(await unmaskWhatIsKnown(run, round, VICTIM, victimSeed, new Map([[dropped, droppedKey]])), input);
    // Control: with every other neighbour's key too (which it never receives) the input comes out exactly.
    const everyKey = new Map(round.server.graph.neighbours(VICTIM).map((w) => [w, replaySecrets(label, w).keys.mask.secretKey] as const));
    expect(Array.from(await unmaskWhatIsKnown(run, round, VICTIM, victimSeed, everyKey))).toEqual(Array.from(input));
  });
});
