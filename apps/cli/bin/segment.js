#!/usr/bin/env -S node --max-semi-space-size=16
// The `segment` command. Sources are TypeScript run by Node's type stripping: no build step.
// V8's young generation may otherwise grow to 128 MB (semi-spaces of 64 MB): 16 MB took ~200 MB
// off the derivation worker's RSS for the same CPU (measured on 1M events). The bench passes the same flag.
import '../src/main.ts';
