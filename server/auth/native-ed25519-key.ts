/**
 * A native Ed25519 check bound to one public key, its OpenSSL key object built once: every device
 * handshake verifies its enrollment token under the same platform key, and building the key from
 * its raw bytes (what nodeEd25519Verify does per call) cost more than the check itself here
 * (~0.3 ms of ~0.5 ms a handshake). The answers are nodeEd25519Verify's: false for a malformed
 * signature, never a throw; a call for another key goes to nodeEd25519Verify.
 */
import { createPublicKey, verify } from 'node:crypto';
import type { Ed25519Verify } from '../../shared/secagg/keys.ts';
import { nodeEd25519Verify } from './native-ed25519.ts';

export function nativeEd25519VerifierFor(publicKey: Uint8Array): Ed25519Verify {
  if (!(publicKey instanceof Uint8Array)) throw new TypeError('"publicKey" expected a Uint8Array');
  if (publicKey.length !== 32) throw new RangeError(`"publicKey" expected 32 bytes, got ${publicKey.length}`);
  const bound = Uint8Array.from(publicKey);
  // JWK (RFC 8037, Sec. 2): an OKP key on Ed25519 with the raw public key as x.
  const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(bound).toString('base64url') }, format: 'jwk' });
  return (message, signature, candidate) => {
    if (!(candidate.length === 32 && candidate.every((b, i) => b === bound[i]))) return nodeEd25519Verify(message, signature, candidate);
    try {
      return verify(null, message, key, signature);
    } catch {
      return false;
    }
  };
}
