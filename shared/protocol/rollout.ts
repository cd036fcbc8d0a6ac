/**
 * Which model version a device profiles with (issue 18): the serving version, or, for the share
 * of devices in a staged rollout's arm, the candidate. The arm is a deterministic function of a
 * key the device keeps (not of the page load), so a shopper sees one model across visits and the
 * rollout's share is what it says. It is not a secret and leaves nothing: the device decides.
 */
import { hashString } from '../features/vocabulary.ts';
import type { ModelAnnouncement, ModelRef } from './messages.ts';

/** A number in [0, 1) fixed by the device's key and the candidate version (a new candidate reshuffles the arms). */
export function rolloutPosition(deviceKey: string, candidateVersion: number): number {
  if (typeof deviceKey !== 'string' || deviceKey.length === 0) throw new TypeError('"deviceKey" expected a non-empty string');
  return hashString(`${deviceKey}:${candidateVersion}`) / 2 ** 32;
}

/** The version this device profiles with: the candidate inside its arm, else the serving version, else the latest. */
export function profileModel(announcement: ModelAnnouncement, deviceKey: string): ModelRef & { arm: 'candidate' | 'serving' | 'latest' } {
  const { candidate, serving } = announcement;
  if (candidate && rolloutPosition(deviceKey, candidate.version) < candidate.fraction) return { version: candidate.version, modelUrl: candidate.modelUrl, parameters: candidate.parameters, arm: 'candidate' };
  if (serving) return { ...serving, arm: 'serving' };
  return { version: announcement.version, modelUrl: announcement.modelUrl, parameters: announcement.parameters, arm: 'latest' };
}
