#!/usr/bin/env node
/**
 * Write docs/scenario.schema.json from the zod schema of scenario files (run after `tsc -b`;
 * the root `npm run schema` does both). The file is formatted with the repository's prettier
 * settings so `prettier --check` accepts it; scenario/json-schema.test.ts fails when it is stale.
 */
const { writeFileSync } = require('node:fs');
const { join } = require('node:path');

require('reflect-metadata');

async function main() {
  const { scenarioJsonSchema, SCENARIO_SCHEMA_PATH } = require('../dist/scenario');
  const root = join(__dirname, '..', '..', '..');
  const file = join(root, SCENARIO_SCHEMA_PATH);
  let text = JSON.stringify(scenarioJsonSchema(), null, 2) + '\n';
  try {
    const prettier = require('prettier');
    const options = (await prettier.resolveConfig(file)) ?? {};
    text = await prettier.format(text, { ...options, filepath: file });
  } catch (e) {
    process.stderr.write(`write-schema: not formatted with prettier (${e.message})\n`);
  }
  writeFileSync(file, text);
  process.stdout.write(`wrote ${SCENARIO_SCHEMA_PATH}\n`);
}

main().catch((e) => {
  process.stderr.write(`write-schema: ${e.stack ?? e}\n`);
  process.exit(1);
});
