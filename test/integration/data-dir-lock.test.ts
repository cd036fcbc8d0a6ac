/**
 * One writer per data directory: while a real coordinator runs on a directory, a second
 * coordinator and `portrait audit rotate-key` are refused with UNAVAILABLE and the ledger is
 * untouched; once it stops (or if its process is gone) they proceed. Racing starters, each its own
 * process, have exactly one winner, also when they race to take over a stale lock; a release
 * leaves a lock that is not its own.
 */
import { fork, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { acquireDataDirLock, DATA_DIR_LOCK_FILE } from '../../server/data-dir-lock.ts';
import { startTestCoordinator, tempDataDir } from './harness.ts';

const BIN = path.resolve('bin/portrait.js');

function rotate(dataDir: string): { status: number | null; body: { error?: { code: string; message: string }; publicKey?: string } } {
  const r = spawnSync(process.execPath, [BIN, 'audit', 'rotate-key', '--data-dir', dataDir, '--json'], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, body: JSON.parse(r.stdout) as { error?: { code: string; message: string }; publicKey?: string } };
}

describe('data directory lock', () => {
  it('refuses a second coordinator and a key rotation while one runs, and allows both after it stops', async () => {
    const dataDir = tempDataDir();
    const coordinator = await startTestCoordinator(dataDir);
    try {
      const ledgerBefore = fs.readFileSync(path.join(dataDir, 'ledger.db'));
      const refused = rotate(dataDir);
      expect(refused.status).toBe(1);
      expect(refused.body.error).toMatchObject({ code: 'UNAVAILABLE', message: expect.stringContaining(`pid ${process.pid}`) });
      expect(fs.readFileSync(path.join(dataDir, 'ledger.db')).equals(ledgerBefore)).toBe(true);
      await expect(startTestCoordinator(dataDir)).rejects.toThrow(/in use by a coordinator/);
      // The running one is unharmed by the refused attempts.
      expect((await fetch(`${coordinator.url}/healthz`)).status).toBe(200);
    } finally {
      await coordinator.close();
    }
    expect(fs.existsSync(path.join(dataDir, DATA_DIR_LOCK_FILE))).toBe(false);
    const rotated = rotate(dataDir);
    expect(rotated.status).toBe(0);
    expect(rotated.body.publicKey).toMatch(/^[0-9a-f]{64}$/);
  }, 120_000);

  it('takes over a lock whose process is gone', async () => {
    const dataDir = tempDataDir();
    // A pid that cannot be alive: a child that has already exited.
    const gone = spawnSync(process.execPath, ['-e', 'process.exit(0)']).pid;
    fs.writeFileSync(path.join(dataDir, DATA_DIR_LOCK_FILE), JSON.stringify({ pid: gone, host: os.hostname(), since: new Date(0).toISOString() }));
    const coordinator = await startTestCoordinator(dataDir);
    try {
      expect(JSON.parse(fs.readFileSync(path.join(dataDir, DATA_DIR_LOCK_FILE), 'utf8'))).toMatchObject({ pid: process.pid });
    } finally {
      await coordinator.close();
    }
  });

  it('treats a lock file still being written as held, and an old unreadable one as stale', () => {
    const dataDir = tempDataDir();
    const file = path.join(dataDir, DATA_DIR_LOCK_FILE);
    // A starter creates the file before it writes its body: a second starter must not delete it.
    fs.writeFileSync(file, '');
    expect(() => acquireDataDirLock(dataDir)).toThrow(/still writing the lock/);
    expect(fs.readFileSync(file, 'utf8')).toBe('');
    const old = new Date(Date.now() - 60_000);
    fs.utimesSync(file, old, old);
    const release = acquireDataDirLock(dataDir);
    expect(JSON.parse(fs.readFileSync(file, 'utf8'))).toMatchObject({ pid: process.pid });
    release();
    expect(fs.existsSync(file)).toBe(false);
  });
});

interface RaceAnswer {
  ready?: boolean;
  won?: boolean;
  code?: string;
  message?: string;
  released?: boolean;
}

/** A lock racer process (test/fixtures/lock-racer.ts) and its answers in order. */
class Racer {
  private readonly answers: RaceAnswer[] = [];
  private waiting: { resolve: (answer: RaceAnswer) => void; reject: (err: Error) => void } | null = null;

  constructor(readonly child: ChildProcess) {
    child.on('message', (answer: RaceAnswer) => {
      const waiting = this.waiting;
      this.waiting = null;
      if (waiting) waiting.resolve(answer);
      else this.answers.push(answer);
    });
    child.once('exit', (code) => this.waiting?.reject(new Error(`racer ${child.pid} exited with ${code}`)));
  }

  next(): Promise<RaceAnswer> {
    const queued = this.answers.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
    });
  }

  send(message: object): void {
    this.child.send(message);
  }
}

const RACERS = 8;
const TRIALS = 20;
const deadPid = () => spawnSync(process.execPath, ['-e', 'process.exit(0)']).pid as number;

describe('data directory lock under racing processes', () => {
  it(`has exactly one winner in each of ${TRIALS} races of ${RACERS} processes (no lock, a dead holder's lock, an old unreadable lock)`, async () => {
    const fixture = path.resolve('test/fixtures/lock-racer.ts');
    const racers = Array.from({ length: RACERS }, () => new Racer(fork(fixture, [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })));
    try {
      for (const r of racers) expect(await r.next()).toEqual({ ready: true });
      for (let trial = 0; trial < TRIALS; trial++) {
        const dataDir = tempDataDir();
        const file = path.join(dataDir, DATA_DIR_LOCK_FILE);
        const setup = (['none', 'dead holder', 'old unreadable'] as const)[trial % 3];
        if (setup === 'dead holder') fs.writeFileSync(file, JSON.stringify({ pid: deadPid(), host: os.hostname(), since: new Date(0).toISOString() }));
        if (setup === 'old unreadable') {
          fs.writeFileSync(file, '');
          const old = new Date(Date.now() - 60_000);
          fs.utimesSync(file, old, old);
        }
        const at = Date.now() + 300;
        for (const r of racers) r.send({ dir: dataDir, at });
        const answers = await Promise.all(racers.map((r) => r.next()));
        const winners = racers.filter((_, i) => answers[i]!.won);
        expect({ trial, setup, winners: winners.length }).toEqual({ trial, setup, winners: 1 });
        for (const a of answers.filter((x) => !x.won)) expect(a).toMatchObject({ code: 'UNAVAILABLE', message: expect.stringMatching(/in use by a coordinator|could not take the lock/) });
        expect(JSON.parse(fs.readFileSync(file, 'utf8'))).toMatchObject({ pid: winners[0]!.child.pid });
        winners[0]!.send({ release: true });
        expect(await winners[0]!.next()).toEqual({ released: true });
        // Nothing is left behind: no lock, no claim, no temporary file.
        expect(fs.readdirSync(dataDir)).toEqual([]);
      }
    } finally {
      for (const r of racers) r.send({ exit: true });
    }
  }, 180_000);

  it("releases only its own lock: a lock that has been replaced stays", () => {
    const dataDir = tempDataDir();
    const file = path.join(dataDir, DATA_DIR_LOCK_FILE);
    const release = acquireDataDirLock(dataDir);
    const other = JSON.stringify({ pid: process.pid, host: os.hostname(), since: new Date().toISOString(), nonce: 'another-holder' });
    fs.writeFileSync(file, other);
    release();
    expect(fs.readFileSync(file, 'utf8')).toBe(other);
  });
});
