/** SecAgg+ state machines end to end in memory: exact sums under dropouts at every stage, aborts, refusals, uniformity. */
import { describe, expect, it } from 'vitest';
import { SecAggClient } from '../../../shared/secagg/client.ts';
import { ProtocolError } from '../../../shared/secagg/errors.ts';
import type { ClientMessage, ServerMessage, UnmaskRequestMessage } from '../../../shared/secagg/messages.ts';
import { chooseParameters } from '../../../shared/secagg/parameters.ts';
import { SecAggServerSession } from '../../../shared/secagg/server.ts';
import { CLIENT_EVENTS, clientNextStage, SERVER_TRANSITIONS, STAGES, type Stage } from '../../../shared/secagg/stages.ts';
import { fromBase64, toBase64 } from '../../../shared/secagg/bytes.ts';
import { chiSquareTopByte, expectExactSum, plainSum, playRound, setupRound, type Drops } from './helpers.ts';

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof ProtocolError) return err.code;
    throw err;
  }
  throw new Error('expected a ProtocolError');
}

async function asyncCodeOf(fn: () => Promise<unknown>): Promise<string> {
  try {
    await fn();
  } catch (err) {
    if (err instanceof ProtocolError) return err.code;
    throw err;
  }
  throw new Error('expected a ProtocolError');
}

describe('correctness: the unmasked sum equals the plain sum mod 2^32', () => {
  const n3 = chooseParameters({ n: 3, dropoutRate: 1 / 3, corruptFraction: 0 });
  it.each<[string, Drops]>([
    ['no dropout', {}],
    ['drop at advertise-keys', { 'advertise-keys': [2] }],
    ['drop at share-keys', { 'share-keys': [1] }],
    ['drop at masked-input', { 'masked-input': [3] }],
    ['drop at unmask', { unmask: [2] }],
  ])('n=3: %s', async (_name, drops) => {
    await expectExactSum({ n: 3, k: n3.k, t: n3.t, vectorLength: 64, label: `n3-${_name}` }, drops);
  });

  it('n=10, complete graph, a dropout at every stage (both PRGs)', async () => {
    const p = chooseParameters({ n: 10, dropoutRate: 0.4, corruptFraction: 0 });
    expect(p).toMatchObject({ k: 9, completeGraph: true });
    const drops: Drops = { 'advertise-keys': [4], 'share-keys': [7], 'masked-input': [1], unmask: [10] };
    await expectExactSum({ n: 10, k: p.k, t: p.t, vectorLength: 256, label: 'n10-aes' }, drops);
    await expectExactSum({ n: 10, k: p.k, t: p.t, vectorLength: 256, prg: 'xsalsa20', label: 'n10-xsalsa' }, drops);
  });

  it('the sum wraps mod 2^32 exactly', async () => {
    const inputs = [Uint32Array.of(0xffffffff, 1), Uint32Array.of(0xffffffff, 2), Uint32Array.of(3, 0x80000000)];
    const round = setupRound({ n: 3, k: 2, t: 2, vectorLength: 2, inputs, label: 'wrap' });
    const { outcome } = await playRound(round);
    expect(outcome.status === 'done' && Array.from(outcome.sum)).toEqual([1, 0x80000003]);
  });
});

describe('aborts below threshold name the stage', () => {
  it.each([
    ['advertise-keys', { 'advertise-keys': [2, 3] }],
    ['share-keys', { 'share-keys': [1, 2] }],
    ['masked-input', { 'masked-input': [1, 3] }],
    ['unmask', { unmask: [2, 3] }],
  ] as const)('%s', async (stage, drops) => {
    const round = setupRound({ n: 3, k: 2, t: 2, vectorLength: 8, label: `abort-${stage}` });
    const { outcome } = await playRound(round, drops);
    expect(outcome.status).toBe('aborted');
    if (outcome.status !== 'aborted') return;
    expect(outcome.stage).toBe(stage);
    expect(outcome.code).toBe('BELOW_THRESHOLD');
    expect(outcome.reason).toContain(`stage "${stage}"`);
    expect(round.server.stage).toBe('aborted');
    expect(round.server.summary().abort?.stage).toBe(stage);
    const withheld = new Set(Object.values(drops).flat());
    for (const m of outcome.messages) if (!withheld.has(m.to)) expect(round.clients[m.to - 1]!.stage).toBe('aborted');
  });

  it.each(['advertise-keys', 'share-keys'] as const)('everybody gone at %s: aborts there, not at a later stage', async (stage) => {
    const round = setupRound({ n: 3, k: 2, t: 2, vectorLength: 8, label: `abort-all-${stage}` });
    const { outcome } = await playRound(round, { [stage]: [1, 2, 3] });
    expect(outcome.status === 'aborted' && [outcome.stage, outcome.code, outcome.reason]).toEqual([stage, 'BELOW_THRESHOLD', `stage "${stage}" fell short: no client answered (all 3 dropped or declined)`]);
    expect(round.server.summary().abort?.stage).toBe(stage);
  });

  it('n=10: a survivor that loses too many neighbours aborts at that stage', async () => {
    const round = setupRound({ n: 10, k: 9, t: 6, vectorLength: 8, label: 'abort-n10', serverVerifies: false });
    const { outcome } = await playRound(round, { 'share-keys': [1, 2, 3], 'masked-input': [4, 5] });
    expect(outcome.status === 'aborted' && outcome.stage).toBe('masked-input');
  });
});

/** Drives a fresh n=3 round to the given server stage and returns sample messages of every type. */
async function roundAt(stage: Stage) {
  const round = setupRound({ n: 3, k: 2, t: 2, vectorLength: 4, label: 'transitions' });
  // Well-formed samples of every message type from a twin round (same seeds) played to completion.
  const samples = new Map<string, ClientMessage>();
  const twin = setupRound({ n: 3, k: 2, t: 2, vectorLength: 4, label: 'transitions' });
  for (const m of (await playRound(twin)).received) samples.set(m.type, m);
  const { server, clients } = round;
  const ads = clients.map((c) => c.advertiseKeys());
  if (stage === 'advertise-keys') return { round, samples };
  ads.forEach((m, i) => server.receive(i + 1, m));
  for (const next of ['share-keys', 'masked-input', 'unmask', 'done'] as const) {
    const outcome = await server.closeStage();
    if (next === stage || outcome.status !== 'continue') break;
    const replies = await Promise.all(outcome.messages.map((m) => clients[m.to - 1]!.receive(m)));
    replies.forEach((r, i) => r && server.receive(i + 1, r));
  }
  return { round, samples };
}

describe('reconstruction failures abort the unmask and release nothing', () => {
  it.each([['aes-ctr'], ['xsalsa20']] as const)('%s: tampered key shares of a dropped client give RECONSTRUCTION_FAILED', async (prg) => {
    const round = setupRound({ n: 10, k: 9, t: 6, vectorLength: 150_000, prg, label: `tamper-${prg}` });
    const flipLastByte = (share: string) => {
      const bytes = fromBase64('share', share);
      bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 1;
      return toBase64(bytes);
    };
    const { outcome } = await playRound(round, { 'masked-input': [4, 9] }, (m) =>
      m.type === 'unmask-shares' ? { ...m, keyShares: m.keyShares.map((s) => (s.of === 9 ? { ...s, share: flipLastByte(s.share) } : s)) } : m);
    expect(outcome.status).toBe('aborted');
    if (outcome.status !== 'aborted') return;
    expect(outcome.stage).toBe('unmask');
    expect(outcome.code).toBe('RECONSTRUCTION_FAILED');
    expect(outcome.reason).toContain('client 9');
    expect(round.server.summary().abort?.code).toBe('RECONSTRUCTION_FAILED');
  });
});

describe('every invalid stage transition is refused', () => {
  const clientTypes = ['advertise-keys', 'share-keys', 'masked-input', 'unmask-shares'] as const;

  it('server: every (stage, message) pair outside the table throws and leaves the stage unchanged', async () => {
    let checked = 0;
    for (const stage of ['advertise-keys', 'share-keys', 'masked-input', 'unmask', 'done'] as const) {
      const { round, samples } = await roundAt(stage);
      expect(round.server.stage).toBe(stage);
      const row = SERVER_TRANSITIONS[stage];
      for (const type of clientTypes) {
        if (row !== null && row.accepts === type) continue;
        const sample = samples.get(type)!;
        const code = codeOf(() => round.server.receive(sample.from, sample));
        expect(['INVALID_TRANSITION', 'LATE_MESSAGE']).toContain(code);
        expect(round.server.stage).toBe(stage);
        checked++;
      }
    }
    const aborted = setupRound({ n: 3, k: 2, t: 2, vectorLength: 4, label: 'transitions' });
    await playRound(aborted, { 'advertise-keys': [1, 2] });
    expect(aborted.server.stage).toBe('aborted');
    const { samples } = await roundAt('advertise-keys');
    for (const type of clientTypes) {
      const sample = samples.get(type)!;
      expect(codeOf(() => aborted.server.receive(sample.from, sample))).toBe('INVALID_TRANSITION');
      checked++;
    }
    await expect(aborted.server.closeStage()).rejects.toThrow(ProtocolError);
    // 4 live stages x 3 other message types + done x 4 + aborted x 4.
    expect(checked).toBe(4 * 3 + 4 + 4);
  });

  it('client: every (stage, event) pair outside the table throws and leaves the stage unchanged', async () => {
    const twin = setupRound({ n: 3, k: 2, t: 2, vectorLength: 4, label: 'client-transitions' });
    const run = await playRound(twin);
    const serverSamples = new Map<string, ServerMessage>();
    for (const m of run.sent) if (m.to === 1) serverSamples.set(m.type, m);
    serverSamples.set('abort', { type: 'abort', roundId: twin.config.roundId, to: 1, stage: 'share-keys', code: 'BELOW_THRESHOLD', reason: 'test' });
    let checked = 0;
    const reach = async (target: Stage) => {
      const round = setupRound({ n: 3, k: 2, t: 2, vectorLength: 4, label: 'client-transitions' });
      const client = round.clients[0]!;
      if (target === 'aborted') {
        client.advertiseKeys();
        await client.receive(serverSamples.get('abort'));
        return client;
      }
      const path: ('start' | string)[] = ['start', 'round-keys', 'forwarded-shares', 'unmask-request'];
      for (const event of path) {
        if (client.stage === target) break;
        if (event === 'start') client.advertiseKeys();
        else await client.receive(serverSamples.get(event));
      }
      return client;
    };
    for (const stage of STAGES) {
      const client = await reach(stage);
      expect(client.stage).toBe(stage);
      for (const event of CLIENT_EVENTS) {
        if (clientNextStage(stage, event) !== undefined) continue;
        const code = event === 'start'
          ? codeOf(() => client.advertiseKeys())
          : await asyncCodeOf(() => client.receive(serverSamples.get(event)));
        expect(code).toBe(stage === 'aborted' || STAGES.indexOf(stage) <= CLIENT_EVENTS.indexOf(event) ? 'INVALID_TRANSITION' : 'LATE_MESSAGE');
        expect(client.stage).toBe(stage);
        checked++;
      }
    }
    // 4 live stages x (5 events - 2 allowed) + done (5 - 1 allowed) + aborted (5).
    expect(checked).toBe(4 * 3 + 4 + 5);
  });
});

describe('replayed, late, duplicated and mis-addressed messages are refused without disturbing the round', () => {
  it('server refusals, then the round still completes exactly', async () => {
    const round = setupRound({ n: 3, k: 2, t: 2, vectorLength: 16, label: 'refusals' });
    const other = setupRound({ n: 3, k: 2, t: 2, vectorLength: 16, label: 'other-round' });
    const { server, clients } = round;
    const ads = clients.map((c) => c.advertiseKeys());
    server.receive(1, ads[0]!);
    expect(codeOf(() => server.receive(1, ads[0]!))).toBe('DUPLICATE_MESSAGE');
    expect(codeOf(() => server.receive(2, ads[0]!))).toBe('MISADDRESSED');
    expect(codeOf(() => server.receive(9, ads[0]!))).toBe('UNKNOWN_SENDER');
    expect(codeOf(() => server.receive(2, other.clients[1]!.advertiseKeys()))).toBe('WRONG_ROUND');
    expect(codeOf(() => server.receive(2, { ...ads[1]!, signature: ads[0]!.signature }))).toBe('BAD_SIGNATURE');
    expect(codeOf(() => server.receive(2, { ...ads[1]!, maskPublicKey: 'not base64!' }))).toBe('MALFORMED');
    server.receive(2, ads[1]!);
    server.receive(3, ads[2]!);
    let outcome = await server.closeStage();
    expect(codeOf(() => server.receive(3, ads[2]!))).toBe('LATE_MESSAGE');
    const shares = await Promise.all(outcome.status === 'continue' ? outcome.messages.map((m) => clients[m.to - 1]!.receive(m)) : []);
    const s1 = shares[0]!;
    if (s1.type !== 'share-keys') throw new Error('expected share-keys');
    expect(codeOf(() => server.receive(1, { ...s1, ciphertexts: s1.ciphertexts.slice(1) }))).toBe('MISADDRESSED');
    shares.forEach((s, i) => server.receive(i + 1, s!));
    expect(codeOf(() => server.receive(1, s1))).toBe('DUPLICATE_MESSAGE');
    outcome = await server.closeStage();
    const masked = await Promise.all(outcome.status === 'continue' ? outcome.messages.map((m) => clients[m.to - 1]!.receive(m)) : []);
    masked.forEach((m, i) => server.receive(i + 1, m!));
    outcome = await server.closeStage();
    const unmask = await Promise.all(outcome.status === 'continue' ? outcome.messages.map((m) => clients[m.to - 1]!.receive(m)) : []);
    expect(codeOf(() => server.receive(1, masked[0]))).toBe('LATE_MESSAGE');
    // A share that is not a field element (>= p, or not 33 bytes) refuses the whole message on arrival;
    // nothing of it is kept, so the same client's good message is still taken.
    const u1 = unmask[0]!;
    if (u1.type !== 'unmask-shares') throw new Error('expected unmask-shares');
    const withShare = (share: string) => ({ ...u1, selfMaskShares: u1.selfMaskShares.map((s, j) => (j === u1.selfMaskShares.length - 1 ? { ...s, share } : s)) });
    expect(codeOf(() => server.receive(1, withShare(toBase64(new Uint8Array(33).fill(0xff)))))).toBe('MALFORMED');
    expect(codeOf(() => server.receive(1, withShare(toBase64(new Uint8Array(32).fill(1)))))).toBe('MALFORMED');
    expect(codeOf(() => server.receive(1, withShare('not base64!')))).toBe('MALFORMED');
    unmask.forEach((m, i) => server.receive(i + 1, m!));
    const done = await server.closeStage();
    expect(done.status === 'done' && Array.from(done.sum)).toEqual(Array.from(plainSum(round.inputs, [1, 2, 3])));
  });

  it('a client that dropped cannot rejoin a later stage', async () => {
    const round = setupRound({ n: 3, k: 2, t: 2, vectorLength: 4, label: 'rejoin' });
    const { server, clients } = round;
    const ads = clients.map((c) => c.advertiseKeys());
    server.receive(1, ads[0]!);
    server.receive(2, ads[1]!);
    const outcome = await server.closeStage();
    if (outcome.status !== 'continue') throw new Error('expected continue');
    const reply = await clients[0]!.receive(outcome.messages[0]);
    const fromThree = { ...reply!, from: 3 };
    expect(codeOf(() => server.receive(3, fromThree))).toBe('DROPPED_CLIENT');
  });

  it('client refusals: wrong round, wrong recipient, replay, tampered ciphertext', async () => {
    const round = setupRound({ n: 3, k: 2, t: 2, vectorLength: 4, label: 'client-refusals' });
    const run = await playRound(setupRound({ n: 3, k: 2, t: 2, vectorLength: 4, label: 'client-refusals' }));
    const client = round.clients[0]!;
    client.advertiseKeys();
    const roundKeys = run.sent.find((m) => m.type === 'round-keys' && m.to === 1)!;
    expect(await asyncCodeOf(() => client.receive({ ...roundKeys, roundId: 'r-old' }))).toBe('WRONG_ROUND');
    expect(await asyncCodeOf(() => client.receive({ ...roundKeys, to: 2 }))).toBe('MISADDRESSED');
    expect(await asyncCodeOf(() => client.receive({ ...roundKeys, extra: 1, keys: 'x' }))).toBe('MALFORMED');
    await client.receive(roundKeys);
    expect(await asyncCodeOf(() => client.receive(roundKeys))).toBe('LATE_MESSAGE');
    const forwarded = run.sent.find((m) => m.type === 'forwarded-shares' && m.to === 1)!;
    if (forwarded.type !== 'forwarded-shares') throw new Error('expected forwarded-shares');
    // The twin round used the same seeds, so its ciphertexts are valid; flip one byte to forge.
    const bytes = fromBase64('c', forwarded.ciphertexts[0]!.ciphertext);
    bytes[20] = bytes[20]! ^ 1;
    const { toBase64 } = await import('../../../shared/secagg/bytes.ts');
    const forged = { ...forwarded, ciphertexts: [{ ...forwarded.ciphertexts[0]!, ciphertext: toBase64(bytes) }, ...forwarded.ciphertexts.slice(1)] };
    expect(await asyncCodeOf(() => client.receive(forged))).toBe('DECRYPTION_FAILED');
    const swapped = { ...forwarded, ciphertexts: forwarded.ciphertexts.map((c) => ({ ...c, from: c.from === 2 ? 3 : 2 })) };
    expect(await asyncCodeOf(() => client.receive(swapped))).toBe('DECRYPTION_FAILED');
    expect(client.stage).toBe('masked-input');
    expect((await client.receive(forwarded))?.type).toBe('masked-input');
  });
});

describe('unmask requests: a client never reveals both shares of one peer and checks the survivor lists', () => {
  async function clientAtUnmask(label: string) {
    const round = setupRound({ n: 6, k: 5, t: 4, vectorLength: 4, label, serverVerifies: false });
    const twin = setupRound({ n: 6, k: 5, t: 4, vectorLength: 4, label, serverVerifies: false });
    const run = await playRound(twin);
    const client = round.clients[0]!;
    client.advertiseKeys();
    for (const type of ['round-keys', 'forwarded-shares'] as const) await client.receive(run.sent.find((m) => m.type === type && m.to === 1));
    const request = run.sent.find((m) => m.type === 'unmask-request' && m.to === 1) as UnmaskRequestMessage;
    expect(client.stage).toBe('unmask');
    return { client, request };
  }

  it('refuses to reveal the self-mask share and the key share of the same peer', async () => {
    const { client, request } = await clientAtUnmask('both-shares');
    const both = { ...request, survivors: request.survivors, dropped: [2] };
    expect(await asyncCodeOf(() => client.receive(both))).toBe('BOTH_SHARES_REQUESTED');
    const moved = { ...request, survivors: request.survivors.filter((u) => u !== 2), dropped: [2] };
    const reply = await client.receive(moved);
    expect(reply?.type).toBe('unmask-shares');
    if (reply?.type !== 'unmask-shares') return;
    expect(reply.keyShares.map((s) => s.of)).toEqual([2]);
    expect(reply.selfMaskShares.map((s) => s.of)).not.toContain(2);
    expect(await asyncCodeOf(() => client.receive(request))).toBe('LATE_MESSAGE');
  });

  it('refuses survivor lists inconsistent with what it saw', async () => {
    const { client, request } = await clientAtUnmask('inconsistent');
    const cases: [Partial<UnmaskRequestMessage>, string][] = [
      [{ survivors: request.survivors.filter((u) => u !== 1) }, 'INCONSISTENT_SURVIVORS'],
      [{ survivors: request.survivors.filter((u) => u !== 5) }, 'INCONSISTENT_SURVIVORS'],
      [{ survivors: [...request.survivors.filter((u) => u !== 5)], dropped: [5, 99] }, 'INCONSISTENT_SURVIVORS'],
      [{ survivors: [1, 2, 3], dropped: [4, 5, 6] }, 'BELOW_THRESHOLD'],
      [{ survivors: [1, 1, 2, 3, 4, 5, 6] }, 'MALFORMED'],
    ];
    for (const [patch, code] of cases) {
      expect(await asyncCodeOf(() => client.receive({ ...request, ...patch }))).toBe(code);
      expect(client.stage).toBe('unmask');
    }
    expect((await client.receive(request))?.type).toBe('unmask-shares');
  });
});

describe('privacy of what the server receives', () => {
  function correlation(a: ArrayLike<number>, b: ArrayLike<number>): number {
    const n = a.length;
    let ma = 0, mb = 0;
    for (let i = 0; i < n; i++) { ma += a[i]!; mb += b[i]!; }
    ma /= n; mb /= n;
    let sab = 0, saa = 0, sbb = 0;
    for (let i = 0; i < n; i++) { sab += (a[i]! - ma) * (b[i]! - mb); saa += (a[i]! - ma) ** 2; sbb += (b[i]! - mb) ** 2; }
    return sab / Math.sqrt(saa * sbb);
  }

  it('masked inputs look uniform and do not correlate with highly structured inputs', async () => {
    const P = 1000;
    // Structured inputs: small ramps, as DP-quantised updates are (far from uniform mod 2^32).
    const inputs = Array.from({ length: 10 }, (_, u) => Uint32Array.from({ length: P }, (_, i) => (i * (u + 1)) % 4096));
    const round = setupRound({ n: 10, k: 9, t: 6, vectorLength: P, inputs, label: 'uniform' });
    const { outcome, received } = await playRound(round, { 'masked-input': [10] });
    expect(outcome.status).toBe('done');
    const masked = received.filter((m) => m.type === 'masked-input');
    expect(masked).toHaveLength(9);
    const all = new Uint32Array(masked.length * P);
    // chi-square 0.999 quantile for 255 degrees of freedom is about 330.5.
    const critical = 330.5;
    masked.forEach((m, j) => {
      const y = new Uint32Array((typeof m.maskedInput === 'string' ? fromBase64('y', m.maskedInput) : m.maskedInput).slice().buffer);
      all.set(y, j * P);
      const x = inputs[m.from - 1]!;
      expect(Math.abs(correlation(x, y))).toBeLessThan(4 / Math.sqrt(P));
      expect(y.some((v, i) => v === x[i])).toBe(false);
    });
    expect(chiSquareTopByte(all)).toBeLessThan(critical);
    // The same statistic rejects the unmasked inputs, so the test has power.
    const raw = new Uint32Array(masked.length * P);
    inputs.slice(0, 9).forEach((x, j) => raw.set(x, j * P));
    expect(chiSquareTopByte(raw)).toBeGreaterThan(critical);
    // No payload the server received contains a client's input bytes verbatim.
    const transcript = JSON.stringify(received);
    const { toBase64 } = await import('../../../shared/secagg/bytes.ts');
    const { u32VectorToBytes } = await import('../../../shared/secagg/bytes.ts');
    for (const x of inputs) expect(transcript).not.toContain(toBase64(u32VectorToBytes(x.subarray(0, 48))).slice(0, 60));
  });
});

describe('config', () => {
  it('refuses structurally unsafe k and t, naming the field', () => {
    const base = { roundId: 'r', n: 10, k: 9, t: 6, graphSeed: new Uint8Array(32), vectorLength: 4, prg: 'aes-ctr' as const };
    expect(() => new SecAggServerSession({ config: { ...base, t: 5 } })).toThrow(/"t"/);
    expect(() => new SecAggServerSession({ config: { ...base, t: 10 } })).toThrow(/"t"/);
    expect(() => new SecAggServerSession({ config: { ...base, k: 10 } })).toThrow(/"k"/);
    expect(() => new SecAggServerSession({ config: { ...base, n: 9, k: 3, t: 3 } })).toThrow(/"k" must be even/);
    expect(() => new SecAggServerSession({ config: { ...base, graphSeed: new Uint8Array(31) } })).toThrow('"graphSeed" expected 32 bytes, got 31');
    expect(() => new SecAggClient({ config: base, index: 11, input: new Uint32Array(4), signingSecretKey: new Uint8Array(64), verifyKey: () => undefined, random: (b) => b })).toThrow(/"index"/);
  });
});
