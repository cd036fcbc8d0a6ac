/**
 * The compliance page of the coordinator's dashboard, at /dashboard/compliance/: one static page
 * (inline JS and SVG, nothing fetched from elsewhere) that reads the ledger report with a read
 * token and shows budget used against the cap over rounds, the round table and the verify status.
 */
import type express from 'express';
import { staticPageRouter } from './index.ts';

/** The REST endpoints the page reads; a test checks the page references each. */
export const COMPLIANCE_ENDPOINTS = ['/api/v1/ledger/report'] as const;

export function complianceRouter(): express.Router {
  return staticPageRouter(new URL('./compliance.html', import.meta.url));
}
