/** SecAgg+ at n=100 on a random Harary graph (Bell et al. 2020, Sec. 3): exact sum with dropouts at every stage. */
import { describe, expect, it } from 'vitest';
import { chooseParameters } from '../../../shared/secagg/parameters.ts';
import { expectExactSum, setupRound, spreadOut } from './helpers.ts';

// Client time is dominated by tweetnacl Ed25519 verification (k = 8 per client, several ms each).
describe('correctness at n=100', () => {
  it('n=100, random Harary graph of degree k=8, dropouts at every stage', async () => {
    const p = chooseParameters({ n: 100, dropoutRate: 0, corruptFraction: 0 });
    expect(p.completeGraph).toBe(false);
    const setup = { n: 100, k: p.k, t: p.t, vectorLength: 64, label: 'n100', serverVerifies: false };
    const [a, b, c, d, e, f, g, h] = spreadOut(setupRound(setup), 8);
    expect(h).toBeDefined();
    await expectExactSum(setup, { 'advertise-keys': [a!, b!], 'share-keys': [c!, d!], 'masked-input': [e!, f!], unmask: [g!, h!] });
  });

});
