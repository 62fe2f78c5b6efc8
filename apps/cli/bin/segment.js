#!/usr/bin/env node
// The `segment` command. Sources are TypeScript run by Node's type stripping: no build step.
import '../src/main.ts';
