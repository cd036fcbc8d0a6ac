/**
 * `portrait platform keygen|token`: the shop platform's side of enrollment, for deployments where
 * the platform and the coordinator are separate. `keygen` writes the platform's Ed25519 key pair
 * (mode 0600) and prints its public key for `portrait server --platform-public-key`; `token`
 * signs pseudonymous enrollment tokens with it (what the shop's backend hands each signed-in
 * shopper's page; a backend in TypeScript calls `issueEnrollmentToken` directly).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { ENROLLMENT_BATCH_LIMITS, issueEnrollmentTokens } from '../../shared/protocol/enrollment.ts';
import { createPlatformKeyFile, readPlatformKeyFile } from '../../server/auth/platform-key.ts';
import { action, CliError, emit, parseInteger } from './output.ts';

export function registerPlatformCommands(program: Command): void {
  const platform = program.command('platform').description("the shop platform's enrollment key and tokens (when it is separate from the coordinator)");

  platform
    .command('keygen')
    .description('create the platform key pair file (never overwrites) and print its public key')
    .requiredOption('--out <file>', 'key pair file to create (keep it with the platform, mode 0600)')
    .option('--json', 'machine-readable output')
    .action(
      action((options: { out: string; json?: boolean }) => {
        const file = path.resolve(options.out);
        if (fs.existsSync(file)) throw new CliError('INVALID_ARGUMENT', `"out": ${file} exists; refusing to overwrite a platform key`);
        const pair = createPlatformKeyFile(file);
        const publicKey = Buffer.from(pair.publicKey).toString('hex');
        emit(options, { keyFile: file, publicKey }, () => `platform key pair written to ${file}\npublic key (for portrait server --platform-public-key): ${publicKey}`);
      }),
    );

  platform
    .command('token')
    .description('sign pseudonymous enrollment tokens with the platform key')
    .requiredOption('--key <file>', 'platform key pair file (portrait platform keygen)')
    .option('--count <n>', 'how many tokens', '1')
    .option('--ttl-seconds <s>', 'validity of each token', String(ENROLLMENT_BATCH_LIMITS.defaultTtlSeconds))
    .option('--json', 'machine-readable output')
    .action(
      action((options: { key: string; count: string; ttlSeconds: string; json?: boolean }) => {
        if (!fs.existsSync(options.key)) throw new CliError('NOT_FOUND', `"key": no platform key file at ${path.resolve(options.key)}`);
        const { maxCount, maxTtlSeconds } = ENROLLMENT_BATCH_LIMITS;
        const count = parseInteger('count', options.count, 1);
        if (count > maxCount) throw new CliError('INVALID_ARGUMENT', `"count" expected at most ${maxCount}, got ${count}`);
        const ttlSeconds = parseInteger('ttl-seconds', options.ttlSeconds, 1);
        if (ttlSeconds > maxTtlSeconds) throw new CliError('INVALID_ARGUMENT', `"ttl-seconds" expected at most ${maxTtlSeconds}, got ${ttlSeconds}`);
        const { secretKey } = readPlatformKeyFile(options.key);
        const batch = issueEnrollmentTokens(secretKey, { count, ttlSeconds, now: Date.now() });
        secretKey.fill(0);
        emit(options, batch, () => batch.tokens.join('\n'));
      }),
    );
}
