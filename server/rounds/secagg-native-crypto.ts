/**
 * The coordinator's native (OpenSSL, node:crypto) mask-key work for the SecAgg+ unmask stage
 * (Bonawitz et al. 2017, Sec. 4, Round 4; Bell et al. 2020, Sec. 3): X25519 (RFC 7748, Sec. 5/6.1)
 * and HKDF-SHA-512 (RFC 5869), the same bytes and refusals as the isomorphic tweetnacl / WebCrypto
 * path in shared/secagg/keys.ts, run on worker threads (one per core, up to 4) so that the main
 * thread, which rebuilds seeds and feeds the mask workers (secagg-native-masks.ts), is not held up
 * and the agreements use every core: at 10% dropout and n = 1,000 the server agrees ~10^4 pairs
 * per round, ~0.045 ms each in OpenSSL against ~0.14 ms through WebCrypto (docs/secagg.md,
 * "Performance"). The worker caches public-key KeyObjects (public data; each is used by up to k
 * dropped neighbours); every secret it receives or derives is zeroed once sent back, and a private
 * key is imported from a DER buffer zeroed at once (OpenSSL clears the key when it is freed).
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { expectBytes, wipe } from '../../shared/secagg/bytes.ts';
import { ProtocolError } from '../../shared/secagg/errors.ts';
import { SECAGG_KDF_SALT } from '../../shared/secagg/kdf.ts';
import { pairwiseInfo, PUBLIC_KEY_BYTES, type MaskKeyCrypto, type MaskKeySeeds } from '../../shared/secagg/keys.ts';

/**
 * The worker, as plain CommonJS (eval'd, so it runs the same under tsx, vitest and a bundle). One
 * request: a private key, m public keys and, for seeds, m HKDF infos; the answer is the private key's
 * public key and m 32-byte outputs (agreed secrets, or seeds when infos are given) in one buffer.
 */
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHmac, createPrivateKey, createPublicKey, diffieHellman } = require('node:crypto');
const ONE = Buffer.from([1]);
/** HKDF-SHA-512 to 32 bytes (RFC 5869, Sec. 2.2-2.3: one Expand block) by two HMACs: about half the time of hkdfSync here. */
function hkdf32(ikm, salt, info) {
  const prk = createHmac('sha512', salt).update(ikm).digest();
  const okm = createHmac('sha512', prk).update(info).update(ONE).digest();
  prk.fill(0);
  const seed = new Uint8Array(okm.subarray(0, 32));
  okm.fill(0);
  return seed;
}
const PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');
const publicKeyObjects = new Map();
function publicKeyObject(raw) {
  const x = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('base64url');
  let key = publicKeyObjects.get(x);
  if (key === undefined) {
    key = createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x }, format: 'jwk' });
    if (publicKeyObjects.size >= 65536) publicKeyObjects.clear();
    publicKeyObjects.set(x, key);
  }
  return key;
}
parentPort.on('message', (m) => {
  const secret = new Uint8Array(m.secretKey);
  const der = Buffer.concat([PKCS8_PREFIX, secret]);
  secret.fill(0);
  const publicKeys = new Uint8Array(m.publicKeys);
  const count = publicKeys.length / 32;
  const out = new Uint8Array(32 * count);
  try {
    const privateKey = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
    der.fill(0);
    const publicKey = new Uint8Array(Buffer.from(createPublicKey(privateKey).export({ format: 'jwk' }).x, 'base64url'));
    for (let j = 0; j < count; j++) {
      let shared;
      try {
        shared = diffieHellman({ privateKey, publicKey: publicKeyObject(publicKeys.subarray(32 * j, 32 * j + 32)) });
      } catch {
        shared = Buffer.alloc(32);
      }
      if (shared.every((b) => b === 0)) {
        out.fill(0);
        parentPort.postMessage({ id: m.id, error: 'BAD_KEY' });
        return;
      }
      if (m.infos) {
        const seed = hkdf32(shared, m.salt, m.infos[j]);
        out.set(seed, 32 * j);
        seed.fill(0);
      } else {
        out.set(shared, 32 * j);
      }
      shared.fill(0);
    }
    parentPort.postMessage({ id: m.id, publicKey: publicKey.buffer, out: out.buffer }, [publicKey.buffer, out.buffer]);
  } catch (err) {
    der.fill(0);
    out.fill(0);
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
    const keys = new Uint8Array(PUBLIC_KEY_BYTES * publicKeys.length);
    publicKeys.forEach((key, j) => keys.set(key, PUBLIC_KEY_BYTES * j));
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
    const fail = (err: unknown) => {
      if (this.#worker === worker) this.#worker = undefined;
      for (const pending of this.#pending.values()) pending.reject(err instanceof Error ? err : new Error(`X25519 worker exited: ${String(err)}`));
      this.#pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', fail);
    this.#worker = worker;
    return worker;
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
}

const x25519Pool = new X25519Pool(Math.max(1, Math.min(4, availableParallelism())));

/** Starts the X25519 / HKDF workers ahead of an unmask (the coordinator does when a SecAgg+ round begins). */
export function startX25519Workers(): Promise<void> {
  return x25519Pool.start();
}

function checkKeys(secretKey: Uint8Array, publicKeys: readonly Uint8Array[]): void {
  expectBytes('secretKey', secretKey, 32);
  for (const key of publicKeys) expectBytes('publicKey', key, PUBLIC_KEY_BYTES);
}

const split = (out: Uint8Array): Uint8Array[] => Array.from({ length: out.length / 32 }, (_, j) => out.subarray(32 * j, 32 * j + 32));

/** X25519 of one secret key with each public key through OpenSSL (for tests and checks): the public key and the agreed secrets. */
export function nodeX25519(secretKey: Uint8Array, publicKeys: readonly Uint8Array[]): Promise<{ publicKey: Uint8Array; shared: Uint8Array[] }> {
  checkKeys(secretKey, publicKeys);
  return x25519Pool.request(secretKey, publicKeys).then(({ publicKey, out }) => ({ publicKey, shared: split(out) }));
}

export const nodeMaskKeyCrypto: MaskKeyCrypto = {
  pairwiseSeeds(secretKey, publicKeys, roundId, self, peers): Promise<MaskKeySeeds> {
    checkKeys(secretKey, publicKeys);
    if (publicKeys.length !== peers.length) throw new RangeError(`"peers" expected ${publicKeys.length} indices (one per public key), got ${peers.length}`);
    const infos = peers.map((peer) => pairwiseInfo(roundId, self, peer));
    return x25519Pool.request(secretKey, publicKeys, infos).then(({ publicKey, out }) => ({ publicKey, seeds: split(out) }));
  },
};
