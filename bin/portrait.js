#!/usr/bin/env node
// Entry for `npx portrait`: registers tsx so the TypeScript sources run as they are, then hands over to the CLI.
import { register } from 'tsx/esm/api';

register();
await import('../scripts/portrait.ts');
