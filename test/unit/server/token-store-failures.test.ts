/** The API token table's writes fail as UNAVAILABLE when the storage cannot take them (a read-only or full database), like the other stores. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { prepareApiTokenTable, SqliteApiTokenStore } from '../../../server/storage/sqlite-tokens.ts';

describe('SqliteApiTokenStore on storage that refuses writes', () => {
  it('answers UNAVAILABLE naming the storage code, and keeps reading', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portrait-tokens-'));
    const file = path.join(dir, 'portrait.db');
    const writable = new Database(file);
    prepareApiTokenTable(writable);
    const store = new SqliteApiTokenStore(writable);
    await store.add('first', 'auditor', new Uint8Array(32).fill(1), new Date(0).toISOString());
    writable.close();

    const readOnly = new Database(file, { readonly: true });
    const refusing = new SqliteApiTokenStore(readOnly);
    await expect(refusing.add('second', 'operator', new Uint8Array(32).fill(2), new Date(0).toISOString())).rejects.toMatchObject({ code: 'UNAVAILABLE', message: expect.stringContaining('SQLITE_READONLY') });
    await expect(refusing.revoke(1, new Date(0).toISOString())).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    expect((await refusing.all()).map((t) => t.name)).toEqual(['first']);
    readOnly.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
