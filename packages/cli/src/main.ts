#!/usr/bin/env node
import 'reflect-metadata';
import { runDemo } from './demo';

// The experiment runner (svasim run/list/validate/new-plugin) arrives with the experiments
// issue; until then the command boots the default machine and runs the memory-model demo.
const violations = runDemo((line) => process.stdout.write(line + '\n'));
process.exitCode = violations.length === 0 ? 0 : 1;
