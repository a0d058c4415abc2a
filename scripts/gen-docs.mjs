#!/usr/bin/env node
// Writes docs/cli.md and docs/errors.md from the built sources (run `npm run build` first).
import { writeFileSync } from 'node:fs';
const { cliReference, errorReference } = await import('../dist/src/docs/reference.js');
writeFileSync('docs/cli.md', cliReference());
writeFileSync('docs/errors.md', errorReference());
console.log('wrote docs/cli.md and docs/errors.md');
