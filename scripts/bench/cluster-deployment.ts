/**
 * A cluster deployment for the cluster benchmark (scripts/bench/cluster.ts): coordinator node
 * processes (`portrait server --postgres --redis`, the built CLI, as test/integration/
 * cluster-harness.ts starts them) on port 0, sharing a fresh PostgreSQL database, one key
 * directory and their own Redis stream; each node's RSS and CPU time from /proc; and one cleanup
 * that kills every process, drops every database and deletes every stream this process made,
 * also on SIGINT / SIGTERM / an uncaught error. Kept apart from the test harness because that one
 * registers its cleanup with vitest.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { createClient } from 'redis';
import { readApiTokens } from '../../server/auth/bootstrap-tokens.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = path.join(ROOT, 'bin/portrait.js');
export const POSTGRES_SERVER = 'postgres://postgres@127.0.0.1:5432';
export const REDIS_URL = 'redis://127.0.0.1:6379';
/** Linux clock ticks per second (USER_HZ), the unit of /proc/PID/stat's CPU times. */
const TICKS_PER_SECOND = 100;

/** Everything this process started or created, undone by `cleanUp` in reverse order. */
const undo: { name: string; run: () => Promise<void> | void }[] = [];
let cleaning: Promise<void> | undefined;

export function onCleanUp(name: string, run: () => Promise<void> | void): () => void {
  const entry = { name, run };
  undo.push(entry);
  return () => {
    const i = undo.indexOf(entry);
    if (i >= 0) undo.splice(i, 1);
  };
}

export function cleanUp(): Promise<void> {
  return (cleaning ??= (async () => {
    while (undo.length > 0) {
      const entry = undo.pop()!;
      try {
        await entry.run();
      } catch (err) {
        process.stderr.write(`cleanup: ${entry.name}: ${err instanceof Error ? err.message : String(err)}\n`);
      }
    }
    cleaning = undefined;
  })());
}

/** Runs the cleanup before this process ends on a signal or an uncaught error. */
export function cleanUpOnExit(): void {
  const bail = (code: number) => () => void cleanUp().finally(() => process.exit(code));
  process.once('SIGINT', bail(130));
  process.once('SIGTERM', bail(143));
  process.once('uncaughtException', (err) => {
    process.stderr.write(`${err.stack ?? String(err)}\n`);
    bail(1)();
  });
  process.once('unhandledRejection', (err) => {
    process.stderr.write(`unhandled rejection: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    bail(1)();
  });
}

async function onPostgresServer(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: `${POSTGRES_SERVER}/postgres`, connectionTimeoutMillis: 5_000 });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

export interface NodeProcess {
  nodeId: string;
  url: string;
  child: ChildProcess;
  /** Set once the process exited (or was killed). */
  gone: boolean;
  /** The last 64 KiB of its stderr. */
  stderr(): string;
  exited: Promise<void>;
}

/** Resident set size of a process in bytes, from /proc (0 once it is gone). */
export function rssOf(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const kb = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb ? Number(kb) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** User + system CPU time of a process in ms, from /proc (0 once it is gone). */
export function cpuMsOf(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_SECOND;
  } catch {
    return 0;
  }
}

/** The machine's busy and total CPU time in ms since boot, over every core (/proc/stat). */
export function machineCpuMs(): { busy: number; total: number } {
  const line = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = line.reduce((a, b) => a + b, 0);
  const idle = (line[3] ?? 0) + (line[4] ?? 0);
  return { busy: ((total - idle) * 1000) / TICKS_PER_SECOND, total: (total * 1000) / TICKS_PER_SECOND };
}

export interface DeploymentOptions {
  /** Extra `portrait server` flags for every node. */
  flags: string[];
  log: (line: string) => void;
}

/** One cluster: its database, key directory, Redis stream and node processes. */
export class Deployment {
  readonly nodes: NodeProcess[] = [];
  operator = '';
  auditor = '';
  private constructor(
    readonly database: string,
    readonly keyDir: string,
    readonly stream: string,
    private readonly options: DeploymentOptions,
  ) {}

  get url(): string {
    return `${POSTGRES_SERVER}/${this.database}`;
  }

  get live(): NodeProcess[] {
    return this.nodes.filter((n) => !n.gone);
  }

  /** A fresh database and key directory, then `size` nodes: the first alone (it makes the deployment's first start), the rest together. */
  static async start(size: number, options: DeploymentOptions): Promise<Deployment> {
    // Identifiers cannot be query parameters; the name is only hex from randomBytes.
    const database = `portrait_bench_${randomBytes(6).toString('hex')}`;
    await onPostgresServer(`CREATE DATABASE ${database}`);
    const keyDir = fs.mkdtempSync(path.join(os.tmpdir(), 'portrait-bench-cluster-'));
    const deployment = new Deployment(database, keyDir, `portrait-bench:${randomBytes(4).toString('hex')}`, options);
    const forget = onCleanUp(`deployment ${database}`, () => deployment.close());
    deployment.forget = forget;
    await deployment.startNode('n1');
    await Promise.all(Array.from({ length: size - 1 }, (_, i) => deployment.startNode(`n${i + 2}`)));
    const tokens = readApiTokens(keyDir);
    if (!tokens) throw new Error(`no API tokens were bootstrapped in ${keyDir}`);
    deployment.operator = tokens.operator;
    deployment.auditor = tokens.auditor;
    return deployment;
  }

  private forget: () => void = () => undefined;

  /** Starts one more node of this deployment; resolves with its address once it listens. */
  startNode(nodeId: string): Promise<NodeProcess> {
    const child = spawn(process.execPath, [BIN, 'server', '--port', '0', '--json', '--postgres', this.url, '--redis', REDIS_URL, '--data-dir', this.keyDir, '--node-id', nodeId, ...this.options.flags], {
      cwd: ROOT,
      env: { ...process.env, PORTRAIT_REDIS_STREAM: this.stream },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stderr!.on('data', (d: Buffer) => {
      err = (err + d.toString()).slice(-65_536);
    });
    const node: NodeProcess = { nodeId, url: '', child, gone: false, stderr: () => err, exited: Promise.resolve() };
    node.exited = new Promise<void>((resolve) =>
      child.once('exit', () => {
        node.gone = true;
        resolve();
      }),
    );
    this.nodes.push(node);
    return new Promise((resolve, reject) => {
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (node.url) return;
        try {
          node.url = (JSON.parse(out) as { url: string }).url;
          resolve(node);
        } catch {
          // Not the whole document yet.
        }
      });
      void node.exited.then(() => reject(new Error(`node ${nodeId} exited with ${child.exitCode ?? child.signalCode} before listening: ${err.slice(-2_000)}`)));
    });
  }

  /** kill -9, as a crash; resolves once the process is gone. */
  async kill(node: NodeProcess): Promise<void> {
    if (!node.gone) node.child.kill('SIGKILL');
    await node.exited;
  }

  /** Stops every node (SIGTERM, then SIGKILL after 10 s), drops the database, deletes the stream and the key directory. */
  async close(): Promise<void> {
    this.forget();
    for (const n of this.live) n.child.kill('SIGTERM');
    await Promise.all(this.nodes.map((n) => Promise.race([n.exited, new Promise((r) => setTimeout(r, 10_000))])));
    for (const n of this.live) n.child.kill('SIGKILL');
    await Promise.all(this.nodes.map((n) => n.exited));
    await onPostgresServer(`DROP DATABASE IF EXISTS ${this.database} WITH (FORCE)`);
    const redis = createClient({ url: REDIS_URL });
    await redis.connect();
    try {
      await redis.del(this.stream);
    } finally {
      redis.destroy();
    }
    fs.rmSync(this.keyDir, { recursive: true, force: true });
    this.options.log(`deployment ${this.database}: nodes stopped, database dropped, stream ${this.stream} deleted`);
  }
}
