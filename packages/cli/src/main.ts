#!/usr/bin/env node
import 'reflect-metadata';
import { runCli } from './cli';

// `svasim [command]`; with no command it runs the default one (default-command.ts).
runCli(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`svasim: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exitCode = 1;
  },
);
