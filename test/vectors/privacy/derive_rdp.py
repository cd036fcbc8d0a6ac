"""Derives test/vectors/privacy/rdp-epsilon.json (run: python3 derive_rdp.py > rdp-epsilon.json).

Two independent computations per vector:
  * `reference`: the algorithm of Google's dp_accounting 0.6.0 RdpAccountant (Mironov, Talwar,
    Zhang 2019 Sec. 3.2/3.3; Canonne, Kamath, Steinke 2020 Prop. 12), re-implemented here with
    scipy's gammaln and log_ndtr. It reproduces dp_accounting's two published values.
  * `mpmath`: the RDP of every default order evaluated at 60 significant digits with mpmath,
    directly from the definition: integer orders by the exact binomial sum, fractional orders by
    numerical quadrature of E_{x~N(0,s^2)}[(1 - q + q exp((2x - 1)/(2 s^2)))^alpha]
    (Mironov et al. 2019, Sec. 3.1, A_alpha), then the same conversion.
The JSON records both; the tests compare the TypeScript accountant against `reference`
(1e-9 relative) and check it is never below `mpmath` beyond 1e-9 relative.
"""
import json
import math
import sys

import mpmath
from scipy import special

ORDERS = [1 + x / 10.0 for x in range(1, 100)] + list(range(11, 64)) + [128, 256, 512, 1024]


def log_add(a, b):
    lo, hi = min(a, b), max(a, b)
    if lo == -math.inf:
        return hi
    return math.log1p(math.exp(lo - hi)) + hi


def log_comb(n, k):
    return special.gammaln(n + 1) - special.gammaln(k + 1) - special.gammaln(n - k + 1)


def log_erfc(x):
    return math.log(2) + special.log_ndtr(-x * 2**0.5)


def log_a_int(q, s, a):
    out = -math.inf
    for i in range(a + 1):
        out = log_add(out, log_comb(a, i) + i * math.log(q) + (a - i) * math.log1p(-q) + (i * i - i) / (2 * s * s))
    return out


def log_a_frac(q, s, a):
    a0 = a1 = -math.inf
    z0 = s * s * math.log(1 / q - 1) + 0.5
    last0 = last1 = -math.inf
    for i in range(1000):
        lc = log_comb(a, i)
        j = a - i
        t0 = lc + i * math.log(q) + j * math.log1p(-q)
        t1 = lc + j * math.log(q) + i * math.log1p(-q)
        e0 = math.log(0.5) + log_erfc((i - z0) / (math.sqrt(2) * s))
        e1 = math.log(0.5) + log_erfc((z0 - j) / (math.sqrt(2) * s))
        s0 = t0 + (i * i - i) / (2 * s * s) + e0
        s1 = t1 + (j * j - j) / (2 * s * s) + e1
        a0, a1 = log_add(a0, s0), log_add(a1, s1)
        tot = log_add(a0, a1)
        if s0 < last0 and s1 < last1 and max(s0, s1) < tot - 30:
            return tot
        last0, last1 = s0, s1
    return math.inf


def rdp_reference(q, z, order):
    if q == 1:
        return order / (2 * z * z)
    la = log_a_int(q, z, int(order)) if float(order).is_integer() else log_a_frac(q, z, order)
    return la / (order - 1)


def rdp_mpmath(q, z, order):
    mpmath.mp.dps = 60
    q, s, a = mpmath.mpf(q), mpmath.mpf(z), mpmath.mpf(order)
    if q == 1:
        return a / (2 * s * s)
    if float(order).is_integer():
        n = int(order)
        tot = mpmath.fsum(mpmath.binomial(n, i) * q**i * (1 - q) ** (n - i) * mpmath.exp((i * i - i) / (2 * s * s)) for i in range(n + 1))
    else:
        def f(x):
            ratio = 1 - q + q * mpmath.exp((2 * x - 1) / (2 * s * s))
            return mpmath.npdf(x, 0, s) * ratio**a
        # The integrand's mass sits near 0 and near the tilted mean a*(1) region; split generously.
        z0 = s * s * mpmath.log(1 / q - 1) + mpmath.mpf(0.5)
        pts = sorted({-mpmath.inf, -10 * s, 0, z0, a, a + 10 * s, mpmath.inf})
        tot = mpmath.quad(f, pts, maxdegree=10)
    return mpmath.log(tot) / (a - 1)


def epsilon(orders, rdp, delta):
    best, best_order = math.inf, orders[0]
    for a, r in zip(orders, rdp):
        if delta**2 + math.expm1(-r) > 0:
            e = 0.0
        elif a > 1.01:
            e = r + math.log1p(-1 / a) - math.log(delta * a) / (a - 1)
        else:
            e = math.inf
        if e < best:
            best, best_order = e, a
    return max(0.0, best), best_order


CASES = [
    (0.01, 1.0, 1000, 1e-5),
    (256 / 60000, 1.1, 14063, 1e-5),
    (1.0, 1.0, 1, 1e-5),
    (1.0, 5.0, 100, 1e-6),
    (0.001, 0.8, 10000, 1e-6),
    (0.05, 2.0, 500, 1e-6),
    (0.1, 0.6, 100, 1e-5),
    (0.5, 3.0, 50, 1e-6),
    (1e-4, 1.5, 100000, 1e-6),
    (0.02, 4.0, 10, 1e-8),
    (0.3, 10.0, 1000, 1e-5),
]

out = []
for q, z, steps, delta in CASES:
    ref = [steps * rdp_reference(q, z, a) for a in ORDERS]
    eps_ref, ord_ref = epsilon(ORDERS, ref, delta)
    mp = [steps * float(rdp_mpmath(q, z, a)) for a in ORDERS]
    eps_mp, ord_mp = epsilon(ORDERS, mp, delta)
    print(f'q={q} z={z} T={steps} d={delta}: ref {eps_ref!r} @ {ord_ref}, mpmath {eps_mp!r} @ {ord_mp}', file=sys.stderr)
    out.append({'q': q, 'noiseMultiplier': z, 'steps': steps, 'delta': delta,
                'reference': {'epsilon': eps_ref, 'order': ord_ref},
                'mpmath': {'epsilon': eps_mp, 'order': ord_mp}})
json.dump({'generator': 'test/vectors/privacy/derive_rdp.py (scipy ' + __import__('scipy').__version__ + ', mpmath ' + mpmath.__version__ + ')',
           'cases': out}, sys.stdout, indent=2)
print()
