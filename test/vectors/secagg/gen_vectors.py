"""Independent generator for the SecAgg+ test vectors (Python 3.11 big integers, hashlib/hmac, and
pyca/cryptography for AES-CTR and HKDF). Shares no code with shared/secagg. Run:
    python3 test/vectors/secagg/gen_vectors.py
It rewrites shamir.json and hkdf-sha512.json, and checks the published vectors in
aes-ctr-sp800-38a.json and hmac-sha512-rfc4231.json against pyca/cryptography and hmac."""
import hashlib, hmac, json, os, random
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives import hashes

HERE = os.path.dirname(os.path.abspath(__file__))
P = 2**256 + 297

def miller_rabin(n, rounds=64):
    d, s = n - 1, 0
    while d % 2 == 0:
        d //= 2; s += 1
    rng = random.Random(0)
    for _ in range(rounds):
        a = rng.randrange(2, n - 1); x = pow(a, d, n)
        if x in (1, n - 1): continue
        for _ in range(s - 1):
            x = x * x % n
            if x == n - 1: break
        else:
            return False
    return True

assert miller_rabin(P)
assert all(not miller_rabin(2**256 + i) for i in range(1, 297) if i % 2 == 1)  # smallest prime above 2^256

def evaluate(coeffs, x):
    return sum(c * pow(x, i, P) for i, c in enumerate(coeffs)) % P

def hexbe(v, n): return v.to_bytes(n, 'big').hex()

rng = random.Random(20200704)
cases = []
for (t, xs) in [(1, [1, 2, 3]), (2, [1, 2, 3]), (3, [1, 2, 3, 4, 5]), (4, [2, 5, 7, 11, 13, 17]), (5, [1, 100, 1000, 65536, 999999])]:
    secret = rng.getrandbits(256)
    coeffs = [secret] + [rng.randrange(P) for _ in range(t - 1)]
    cases.append({
        'threshold': t,
        'secret': hexbe(secret, 32),
        'coefficients': [hexbe(c, 33) for c in coeffs],
        'shares': [{'x': x, 'y': hexbe(evaluate(coeffs, x), 33)} for x in xs],
    })
with open(os.path.join(HERE, 'shamir.json'), 'w') as f:
    json.dump({
        'source': 'gen_vectors.py (Python big integers, independent of shared/secagg); prime checked by 64-round Miller-Rabin and by sympy.isprime',
        'prime': hex(P),
        'cases': cases,
    }, f, indent=2)

hk = []
for (ikm, salt, info, length) in [(b'\x0b' * 22, bytes(range(13)), bytes(range(0xf0, 0xfa)), 42),
                                  (bytes(range(80)), b'', b'pairwise-mask', 32),
                                  (b'portrait', b'portrait/secagg+/v1', b'share-encryption', 200)]:
    okm = HKDF(algorithm=hashes.SHA512(), length=length, salt=salt or None, info=info).derive(ikm)
    hk.append({'ikm': ikm.hex(), 'salt': salt.hex(), 'info': info.hex(), 'length': length, 'okm': okm.hex()})
with open(os.path.join(HERE, 'hkdf-sha512.json'), 'w') as f:
    json.dump({'source': 'gen_vectors.py: pyca/cryptography HKDF(SHA512); inputs of case 0 are RFC 5869 test case 1 inputs', 'cases': hk}, f, indent=2)

with open(os.path.join(HERE, 'aes-ctr-sp800-38a.json')) as f:
    for c in json.load(f)['cases']:
        enc = Cipher(algorithms.AES(bytes.fromhex(c['key'])), modes.CTR(bytes.fromhex(c['counter']))).encryptor()
        assert enc.update(bytes.fromhex(c['plaintext'])).hex() == c['ciphertext'], c['name']
with open(os.path.join(HERE, 'hmac-sha512-rfc4231.json')) as f:
    for c in json.load(f)['cases']:
        assert hmac.new(bytes.fromhex(c['key']), bytes.fromhex(c['data']), hashlib.sha512).hexdigest() == c['mac'], c['name']
print('ok')
