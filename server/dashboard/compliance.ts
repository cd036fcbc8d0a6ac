/**
 * The compliance page of the coordinator's dashboard, at /dashboard/compliance/: one static page
 * (inline JS and SVG, nothing fetched from elsewhere, the dashboard's look and header) that reads
 * the ledger report with a read token and shows the verify status, the signed tree head an
 * auditor keeps (the report's `head`), the budget used against the deployment cap over rounds (or,
 * without a cap, says so and gives the cumulative spend), and the round table.
 */
import type express from 'express';
import { renderDashboardPage, staticPageRouter } from './index.ts';

/** The REST endpoints the page reads; a test checks the page references each. */
export const COMPLIANCE_ENDPOINTS = ['/api/v1/ledger/report'] as const;

export function complianceRouter(): express.Router {
  return staticPageRouter(renderDashboardPage('compliance'));
}
