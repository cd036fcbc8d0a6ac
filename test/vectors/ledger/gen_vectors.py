"""
Writes rfc6962-merkle.json: the Certificate Transparency reference leaves and the tree heads
published for them (transparency-dev/merkle, testonly/constants.go: LeafInputs, RootHashes,
NodeHashes), re-derived here from the RFC 9162 Sec. 2.1.1 definition with Python's hashlib and
checked against the published values; then every inclusion proof (Sec. 2.1.3.1 PATH) and every
consistency proof (Sec. 2.1.4.1 PROOF) for trees of 1..8 of those leaves, from the same
definitions. Run: python3 gen_vectors.py > rfc6962-merkle.json
"""
import hashlib
import json

LEAVES = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"]
PUBLISHED_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
# Published hashes of the complete subtrees of the 8-leaf tree, by level.
PUBLISHED_NODES = [
    ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d", "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
     "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7", "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
     "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b", "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
     "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f", "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1"],
    ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125", "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
     "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a", "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"],
    ["d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7", "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"],
    ["5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"],
]


def k_of(n):
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(d):
    if len(d) == 0:
        return hashlib.sha256(b"").digest()
    if len(d) == 1:
        return hashlib.sha256(b"\x00" + d[0]).digest()
    k = k_of(len(d))
    return hashlib.sha256(b"\x01" + mth(d[:k]) + mth(d[k:])).digest()


def path(m, d):
    if len(d) == 1:
        return []
    k = k_of(len(d))
    if m < k:
        return path(m, d[:k]) + [mth(d[k:])]
    return path(m - k, d[k:]) + [mth(d[:k])]


def subproof(m, d, b):
    n = len(d)
    if m == n:
        return [] if b else [mth(d)]
    k = k_of(n)
    if m <= k:
        return subproof(m, d[:k], b) + [mth(d[k:])]
    return subproof(m - k, d[k:], False) + [mth(d[:k])]


data = [bytes.fromhex(x) for x in LEAVES]
roots = [mth(data[:n]).hex() for n in range(len(data) + 1)]
assert roots == PUBLISHED_ROOTS, "roots differ from the published ones"
for level, nodes in enumerate(PUBLISHED_NODES):
    size = 2 ** level
    assert [mth(data[i * size:(i + 1) * size]).hex() for i in range(len(nodes))] == nodes, f"level {level} differs"

print(json.dumps({
    "source": "Leaves and root hashes: transparency-dev/merkle testonly/constants.go (LeafInputs, RootHashes, NodeHashes), the Certificate Transparency reference vectors; re-derived and checked, and every proof generated, by gen_vectors.py from the RFC 9162 Sec. 2.1.1, 2.1.3.1 and 2.1.4.1 definitions with Python hashlib",
    "leaves": LEAVES,
    "roots": roots,
    "inclusion": [{"index": m, "size": n, "path": [h.hex() for h in path(m, data[:n])]} for n in range(1, 9) for m in range(n)],
    "consistency": [{"first": m, "second": n, "proof": [h.hex() for h in subproof(m, data[:n], True)]} for n in range(1, 9) for m in range(1, n + 1)],
}, indent=1))
