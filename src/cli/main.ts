#!/usr/bin/env node
// Placeholder entry point; the daemon and subcommands are wired in as the parts land.
console.log('sos-milter: not yet wired');
