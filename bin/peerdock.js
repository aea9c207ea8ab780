#!/usr/bin/env node
// Runs the TypeScript CLI directly through tsx, so `npx peerdock` works right after `npm ci`
// with no separate compile step to forget.
import { register } from 'tsx/esm/api';

register();
await import('../cli/main.ts');
