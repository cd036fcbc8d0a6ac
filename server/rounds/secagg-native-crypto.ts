/**
 * The coordinator's native (OpenSSL, node:crypto) mask-key work for the SecAgg+ unmask stage
 * (Bonawitz et al. 2017, Sec. 4, Round 4; Bell et al. 2020, Sec. 3): X25519 (RFC 7748, Sec. 5/6.1)
 * and HKDF-SHA-512 (RFC 5869), the same bytes and refusals as the isomorphic tweetnacl / WebCrypto
 * path in shared/secagg/keys.ts, run on worker threads (one per core, up to 4) so that the main
 * thread, which rebuilds seeds and feeds the mask workers (secagg-native-masks.ts), is not held up
 * and the agreements use every core: at 10% dropout and n = 1,000 the server agrees ~10^4 pairs
 * per round, ~0.045 ms each in OpenSSL against ~0.14 ms through WebCrypto (docs/secagg.md,
 * "Performance"). Requests of at most INLINE_AGREEMENTS agreements run on the calling thread
 * instead. Every secret received or derived is zeroed once sent back, except the JWK string a
 * private key is imported from (see agreeAll).
 */
import { createHmac, createPrivateKey, createPublicKey, diffieHellman, type KeyObject } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { concatBytes, expectBytes, wipe } from '../../shared/secagg/bytes.ts';
import { ProtocolError } from '../../shared/secagg/errors.ts';
import { SECAGG_KDF_SALT } from '../../shared/secagg/kdf.ts';
import { pairwiseInfo, PUBLIC_KEY_BYTES, type MaskKeyCrypto, type MaskKeySeeds } from '../../shared/secagg/keys.ts';

/** What an agreement needs besides its inputs: node:crypto, and the public-key KeyObjects made so far. */
interface AgreementTools {
  readonly createHmac: typeof createHmac;
  readonly createPrivateKey: typeof createPrivateKey;
  readonly createPublicKey: typeof createPublicKey;
  readonly diffieHellman: typeof diffieHellman;
  /** Public-key KeyObjects by base64url key (public data; each is used by up to k dropped neighbours). */
  readonly publicKeyObjects: Map<string, KeyObject>;
}

/**
 * X25519 of `secret` (zeroed here) with each 32-byte key in `publicKeys`, and with `infos` each agreed
 * secret through HKDF-SHA-512 to a 32-byte seed (RFC 5869, Sec. 2.2-2.3: one Expand block, by two
 * HMACs, about half the time of hkdfSync here): the secret's public key and the m outputs in one
 * buffer, or null when a public key is of low order (an all-zero agreement). Written once, run in two
 * places: in the workers (as source text: it may use only its arguments and globals) and on the
 * calling thread for requests too small to be worth a worker's round trip.
 *
 * The private key is imported from a JWK, whose "d" string (and the buffer node:crypto decodes it
 * into) cannot be zeroed, not from a zeroable PKCS#8 DER buffer: OpenSSL 3.0's DER decoder took
 * 0.58 ms per import here against 0.07 ms (docs/secagg.md, "Key import"), and the key is one the
 * protocol hands the server anyway, that of a client dropped before its masked input (Bonawitz et
 * al. 2017, Sec. 4, Round 4). node:crypto reads only "d" of a private JWK; the public key is derived
 * from it, and the caller compares that with the advertised one.
 */
function agreeAll(tools: AgreementTools, secret: Uint8Array, publicKeys: Uint8Array, infos: readonly Uint8Array[] | undefined, salt: Uint8Array): { publicKey: Uint8Array; out: Uint8Array } | null {
  // No nested function definitions here: tsx's keepNames would wrap them in a helper the worker lacks.
  const d = Buffer.from(secret.buffer, secret.byteOffset, 32).toString('base64url');
  secret.fill(0);
  const count = publicKeys.length / 32;
  const out = new Uint8Array(32 * count);
  const privateKey = tools.createPrivateKey({ key: { kty: 'OKP', crv: 'X25519', d, x: '' }, format: 'jwk' });
  const publicKey = new Uint8Array(Buffer.from(tools.createPublicKey(privateKey).export({ format: 'jwk' }).x!, 'base64url'));
  try {
    for (let j = 0; j < count; j++) {
      const x = Buffer.from(publicKeys.buffer, publicKeys.byteOffset + 32 * j, 32).toString('base64url');
      let peer = tools.publicKeyObjects.get(x);
      if (peer === undefined) {
        peer = tools.createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x }, format: 'jwk' });
        if (tools.publicKeyObjects.size >= 65536) tools.publicKeyObjects.clear();
        tools.publicKeyObjects.set(x, peer);
      }
      let shared: Uint8Array;
      try {
        shared = tools.diffieHellman({ privateKey, publicKey: peer });
      } catch {
        shared = new Uint8Array(32);
      }
      let bits = 0;
      for (let i = 0; i < 32; i++) bits |= shared[i]!;
      if (bits === 0) {
        out.fill(0);
        return null;
      }
      if (infos === undefined) {
        out.set(shared, 32 * j);
      } else {
        const prk = tools.createHmac('sha512', salt).update(shared).digest();
        const okm = tools.createHmac('sha512', prk).update(infos[j]!).update(Uint8Array.of(1)).digest();
        prk.fill(0);
        out.set(okm.subarray(0, 32), 32 * j);
        okm.fill(0);
      }
      shared.fill(0);
    }
  } catch (err) {
    out.fill(0); // seeds made before the throw
    throw err;
  }
  return { publicKey, out };
}

/**
 * The worker, as plain CommonJS (eval'd, so it runs the same under tsx, vitest and a bundle). One
 * request: a private key, m public keys and, for seeds, m HKDF infos; the answer is agreeAll's.
 */
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHmac, createPrivateKey, createPublicKey, diffieHellman } = require('node:crypto');
const tools = { createHmac, createPrivateKey, createPublicKey, diffieHellman, publicKeyObjects: new Map() };
${agreeAll.toString()}
parentPort.on('message', (m) => {
  const secret = new Uint8Array(m.secretKey);
  try {
    const answer = ${agreeAll.name}(tools, secret, new Uint8Array(m.publicKeys), m.infos, m.salt);
    if (answer === null) parentPort.postMessage({ id: m.id, error: 'BAD_KEY' });
    else parentPort.postMessage({ id: m.id, publicKey: answer.publicKey.buffer, out: answer.out.buffer }, [answer.publicKey.buffer, answer.out.buffer]);
  } catch (err) {
    secret.fill(0);
    parentPort.postMessage({ id: m.id, error: String((err && err.message) || err) });
  }
});
`;

interface WorkerAnswer {
  readonly id: number;
  readonly error?: string;
  readonly publicKey?: ArrayBuffer;
  readonly out?: ArrayBuffer;
}

interface Pending {
  readonly resolve: (answer: { publicKey: Uint8Array; out: Uint8Array }) => void;
  readonly reject: (err: unknown) => void;
}

const lowOrder = () => new ProtocolError('BAD_KEY', 'X25519 agreement gave the all-zero secret: low-order public key');

/** One lazily started worker, referenced only while a request is pending (it never keeps the process alive). */
class X25519Worker {
  #worker: Worker | undefined;
  readonly #pending = new Map<number, Pending>();
  #nextId = 0;

  get pending(): number {
    return this.#pending.size;
  }

  request(secretKey: Uint8Array, publicKeys: readonly Uint8Array[], infos?: readonly Uint8Array[]): Promise<{ publicKey: Uint8Array; out: Uint8Array }> {
    const worker = this.#start();
    const id = this.#nextId++;
    const secret = secretKey.slice();
    const keys = concatBytes(...publicKeys) as Uint8Array<ArrayBuffer>; // a fresh array over its own buffer
    const answer = new Promise<{ publicKey: Uint8Array; out: Uint8Array }>((resolve, reject) => this.#pending.set(id, { resolve, reject }));
    if (this.#pending.size === 1) worker.ref();
    try {
      // Transferred, not copied: the worker holds the only copy of the secret and zeroes it.
      worker.postMessage({ id, secretKey: secret.buffer, publicKeys: keys.buffer, infos, salt: SECAGG_KDF_SALT }, [secret.buffer, keys.buffer]);
    } catch (err) {
      if (secret.byteLength > 0) wipe(secret);
      this.#pending.delete(id);
      throw err;
    }
    return answer;
  }

  #start(): Worker {
    if (this.#worker !== undefined) return this.#worker;
    const worker = new Worker(WORKER_SOURCE, { eval: true });
    worker.unref();
    worker.on('message', (answer: WorkerAnswer) => {
      const pending = this.#pending.get(answer.id);
      if (pending === undefined) return;
      this.#pending.delete(answer.id);
      if (this.#pending.size === 0) worker.unref();
      if (answer.error === 'BAD_KEY') pending.reject(lowOrder());
      else if (answer.error !== undefined || answer.publicKey === undefined || answer.out === undefined) pending.reject(new Error(`X25519 worker: ${answer.error ?? 'empty answer'}`));
      else pending.resolve({ publicKey: new Uint8Array(answer.publicKey), out: new Uint8Array(answer.out) });
    });
    worker.on('error', (err) => this.#retire(worker, err));
    worker.on('exit', (code) => this.#retire(worker, new Error(`X25519 worker exited with code ${code}`)));
    this.#worker = worker;
    return worker;
  }

  /** Stops the worker (its pending requests fail); a later request starts a new one. */
  async terminate(): Promise<void> {
    const worker = this.#worker;
    if (worker === undefined) return;
    this.#retire(worker, new Error('X25519 worker terminated'));
    await worker.terminate();
  }

  /**
   * Fails what waits on `worker` once, when it errs, exits or is terminated, and lets the next
   * request start a new one. Later events of a worker already retired (an exit after its error) leave
   * the requests of its successor alone.
   */
  #retire(worker: Worker, err: unknown): void {
    if (this.#worker !== worker) return;
    this.#worker = undefined;
    for (const pending of this.#pending.values()) pending.reject(err instanceof Error ? err : new Error(`X25519 worker failed: ${String(err)}`));
    this.#pending.clear();
  }
}

/**
 * One worker per core (up to 4), each request to the least busy: at 10% dropout and n = 1,000 the
 * unmask's ~10^4 agreements and KDF calls (~0.65 s on one thread) were its longest part.
 */
class X25519Pool {
  readonly #workers: X25519Worker[];

  constructor(size: number) {
    this.#workers = Array.from({ length: size }, () => new X25519Worker());
  }

  /** Starts every worker (one agreement-free request each), so that no unmask waits for a thread to start. */
  async start(): Promise<void> {
    await Promise.all(this.#workers.map((worker) => worker.request(new Uint8Array(32), [])));
  }

  request(secretKey: Uint8Array, publicKeys: readonly Uint8Array[], infos?: readonly Uint8Array[]): Promise<{ publicKey: Uint8Array; out: Uint8Array }> {
    const idlest = this.#workers.reduce((best, worker) => (worker.pending < best.pending ? worker : best));
    return idlest.request(secretKey, publicKeys, infos);
  }

  async terminate(): Promise<void> {
    await Promise.all(this.#workers.map((worker) => worker.terminate()));
  }
}

const x25519Pool = new X25519Pool(Math.max(1, Math.min(4, availableParallelism())));

/** Starts the X25519 / HKDF workers ahead of an unmask (the coordinator does when a SecAgg+ round begins). */
export function startX25519Workers(): Promise<void> {
  return x25519Pool.start();
}

/** Stops the X25519 / HKDF workers: requests in flight fail (an unmask waiting on them aborts); later ones start new workers. */
export function terminateX25519Workers(): Promise<void> {
  return x25519Pool.terminate();
}

function checkKeys(secretKey: Uint8Array, publicKeys: readonly Uint8Array[]): void {
  expectBytes('secretKey', secretKey, 32);
  for (const key of publicKeys) expectBytes('publicKey', key, PUBLIC_KEY_BYTES);
}

const split = (out: Uint8Array): Uint8Array[] => Array.from({ length: out.length / 32 }, (_, j) => out.subarray(32 * j, 32 * j + 32));

/**
 * Requests of at most this many agreements run on the calling thread: ~0.05 ms each here, against a
 * worker round trip of 0.3-2 ms (n = 10 with one client dropped: 9 agreements took 2-12 ms in the
 * workers, ~0.6 ms inline). Larger ones go to the workers, which keeps the main thread free for
 * seeds and masks (docs/secagg.md, "Key import").
 */
export const INLINE_AGREEMENTS = 16;

const MAIN_THREAD_TOOLS: AgreementTools = { createHmac, createPrivateKey, createPublicKey, diffieHellman, publicKeyObjects: new Map() };

type Agreed = { publicKey: Uint8Array; out: Uint8Array };

/** agreeAll on this thread for at most `inlineAgreements` public keys, else on the least busy worker. */
function agreeNative(secretKey: Uint8Array, publicKeys: readonly Uint8Array[], infos: readonly Uint8Array[] | undefined, inlineAgreements: number): Agreed | Promise<Agreed> {
  if (publicKeys.length > inlineAgreements) return x25519Pool.request(secretKey, publicKeys, infos);
  const answer = agreeAll(MAIN_THREAD_TOOLS, secretKey.slice(), concatBytes(...publicKeys), infos, SECAGG_KDF_SALT);
  if (answer === null) throw lowOrder();
  return answer;
}

/**
 * X25519 of one secret key with each public key through OpenSSL (for tests and checks): the public
 * key and the agreed secrets. `inlineAgreements` as for nativeMaskKeyCrypto.
 */
export function nodeX25519(secretKey: Uint8Array, publicKeys: readonly Uint8Array[], inlineAgreements = INLINE_AGREEMENTS): Promise<{ publicKey: Uint8Array; shared: Uint8Array[] }> {
  checkKeys(secretKey, publicKeys);
  let answer: Agreed | Promise<Agreed>;
  try {
    answer = agreeNative(secretKey, publicKeys, undefined, inlineAgreements);
  } catch (err) {
    return Promise.reject(err);
  }
  return Promise.resolve(answer).then(({ publicKey, out }) => ({ publicKey, shared: split(out) }));
}

/** The native mask-key crypto: requests of at most `inlineAgreements` agreements on the calling thread, larger ones on the workers. */
export function nativeMaskKeyCrypto(inlineAgreements = INLINE_AGREEMENTS): MaskKeyCrypto {
  return {
    pairwiseSeeds(secretKey, publicKeys, roundId, self, peers): MaskKeySeeds | Promise<MaskKeySeeds> {
      checkKeys(secretKey, publicKeys);
      if (publicKeys.length !== peers.length) throw new RangeError(`"peers" expected ${publicKeys.length} indices (one per public key), got ${peers.length}`);
      const infos = peers.map((peer) => pairwiseInfo(roundId, self, peer));
      const seeds = ({ publicKey, out }: Agreed): MaskKeySeeds => ({ publicKey, seeds: split(out) });
      const answer = agreeNative(secretKey, publicKeys, infos, inlineAgreements);
      return answer instanceof Promise ? answer.then(seeds) : seeds(answer);
    },
  };
}

export const nodeMaskKeyCrypto: MaskKeyCrypto = nativeMaskKeyCrypto();
