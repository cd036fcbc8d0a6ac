/** Size and SHA-256 of a model version's bytes (model.json as stored plus weights), for its record and ETag. */
import { createHash } from 'node:crypto';
import type { ModelFiles } from '../../shared/model/artifacts.ts';

export function modelDigest(files: ModelFiles): { bytes: number; sha256: string } {
  const json = Buffer.from(JSON.stringify(files.modelJson));
  const hash = createHash('sha256').update(json).update(files.weights).digest('hex');
  return { bytes: json.byteLength + files.weights.byteLength, sha256: hash };
}
