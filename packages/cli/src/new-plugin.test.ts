import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as ts from 'typescript';
import { PAGE_SIZE, type Plugin } from '@svasim/kernel';
import {
  firstDifference,
  formatConformanceResult,
  runAcceleratorConformance,
  type AcceleratorConformanceTarget,
} from '@svasim/testkit';
import { runCli } from './cli';
import type { CliIo } from './io';

const repoRoot = resolve(__dirname, '../../..');

/** Run the command line in process; what it printed and its exit code. */
async function cli(argv: string[], cwd = repoRoot) {
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIo = { out: (t) => void out.push(t), err: (t) => void err.push(t), cwd };
  const code = await runCli(argv, io);
  return { code, out: out.join(''), err: err.join('') };
}

/** Every file under @dir, relative, sorted. */
function tree(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string, pre: string) => {
    for (const e of readdirSync(d, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1)))
      if (e.isDirectory()) walk(join(d, e.name), `${pre}${e.name}/`);
      else out.push(`${pre}${e.name}`);
  };
  walk(dir, '');
  return out;
}

/**
 * Type-check @files with the repository's compiler options, '@svasim/*' mapped to the packages'
 * sources (the generated package is not linked into node_modules).
 */
function typeCheck(files: string[]): string[] {
  const base = ts.readConfigFile(join(repoRoot, 'tsconfig.base.json'), ts.sys.readFile);
  const parsed = ts.parseJsonConfigFileContent(
    { compilerOptions: base.config.compilerOptions },
    ts.sys,
    repoRoot,
  );
  const options: ts.CompilerOptions = {
    ...parsed.options,
    noEmit: true,
    declaration: false,
    declarationMap: false,
    composite: false,
    typeRoots: [join(repoRoot, 'node_modules/@types')],
    paths: {
      '@svasim/*': [join(repoRoot, 'packages/*/src')],
      '@jest/globals': [join(repoRoot, 'node_modules/@jest/globals')],
    },
  };
  const program = ts.createProgram(files, options);
  const diags = [...program.getOptionsDiagnostics(), ...program.getGlobalDiagnostics()];
  for (const f of files) {
    const sf = program.getSourceFile(f);
    if (!sf) throw new Error(`${f} was not loaded`);
    diags.push(...program.getSyntacticDiagnostics(sf), ...program.getSemanticDiagnostics(sf));
  }
  return diags.map((d) => {
    const where = d.file
      ? `${d.file.fileName}:${d.file.getLineAndCharacterOfPosition(d.start ?? 0).line + 1}: `
      : '';
    return where + ts.flattenDiagnosticMessageText(d.messageText, '\n');
  });
}

let tmp = '';
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'svasim-new-plugin-'));
});
afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('svasim new-plugin', () => {
  const accelDir = () => join(tmp, 'accel-demo');
  const pinDir = () => join(tmp, 'pin-demo');

  it('generates both kinds: the files, the package, what to do next', async () => {
    const a = await cli(['new-plugin', 'accel-demo', '--kind', 'accelerator', '--dir', accelDir()]);
    expect(a.err).toBe(''); // formatted by the repository's prettier: no note
    expect(a.code).toBe(0);
    expect(tree(accelDir())).toEqual([
      'README.md',
      'package.json',
      'src/accel-demo.test.ts',
      'src/index.ts',
      'tsconfig.json',
    ]);
    const pkg = JSON.parse(readFileSync(join(accelDir(), 'package.json'), 'utf8'));
    expect(pkg).toMatchObject({
      name: '@svasim/accel-demo',
      private: true,
      main: 'dist/index.js',
      types: 'dist/index.d.ts',
      dependencies: { '@svasim/kernel': '*' },
      devDependencies: { '@svasim/testkit': '*', '@svasim/user': '*' },
    });
    const tsconfig = JSON.parse(readFileSync(join(accelDir(), 'tsconfig.json'), 'utf8'));
    expect(tsconfig.compilerOptions).toEqual({ composite: true, rootDir: 'src', outDir: 'dist' });
    expect(resolve(accelDir(), tsconfig.extends)).toBe(join(repoRoot, 'tsconfig.base.json'));
    expect(resolve(accelDir(), tsconfig.references[0].path)).toBe(join(repoRoot, 'packages/kernel'));
    expect(a.out).toContain('add { "path": ');
    expect(a.out).toContain('npm install');
    expect(a.out).toContain('npm test');

    const p = await cli(['new-plugin', 'pin-demo', '--kind', 'pin-strategy', '--dir', pinDir()]);
    expect(p).toMatchObject({ code: 0, err: '' });
    expect(tree(pinDir())).toEqual([
      'README.md',
      'package.json',
      'src/index.ts',
      'src/pin-demo.test.ts',
      'tsconfig.json',
    ]);
    expect(readFileSync(join(pinDir(), 'src/index.ts'), 'utf8')).toContain("name: 'demo',");
  });

  it('the generated TypeScript type-checks with the repository options (and the check can fail)', () => {
    const files = ['src/index.ts', 'src/accel-demo.test.ts']
      .map((f) => join(accelDir(), f))
      .concat(['src/index.ts', 'src/pin-demo.test.ts'].map((f) => join(pinDir(), f)));
    // One program for both: a file misusing the generated exports shows the check catches errors.
    const broken = join(tmp, 'broken.ts');
    writeFileSync(
      broken,
      "import { accelDemoPlugin } from './accel-demo/src/index';\nexport const n: number = accelDemoPlugin;\n",
    );
    const diags = typeCheck([...files, broken]);
    expect(diags.filter((d) => !d.includes('broken.ts'))).toEqual([]);
    expect(diags.join('\n')).toMatch(/broken\.ts:2: Type 'Plugin<.*>' is not assignable to type 'number'/);
  });

  it('the generated accelerator passes the conformance suite, and its op is right', async () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const mod = require(join(accelDir(), 'src/index.ts')) as {
      accelDemoPlugin: Plugin;
      ACCEL_DEMO_ALG: string;
      xorBytes(src: Uint8Array, key: Uint8Array): Uint8Array;
    };
    expect(mod.xorBytes(new Uint8Array([1, 2, 3]), new Uint8Array([3]))).toEqual(new Uint8Array([2, 1, 0]));
    const target: AcceleratorConformanceTarget = {
      plugin: mod.accelDemoPlugin,
      alg: mod.ACCEL_DEMO_ALG,
      uaccePrefix: 'accel_demo',
      sample({ proc, alloc, bytes }) {
        const len = 2 * PAGE_SIZE + 3;
        const src = alloc(len);
        const dst = alloc(len);
        const data = bytes(len);
        const key = bytes(8, 1);
        proc.write(src, data);
        return {
          req: { op: 'encrypt', alg: mod.ACCEL_DEMO_ALG, src, srcLen: len, dst, dstLen: len, key },
          verify: (c, p) =>
            c.status !== 0
              ? `status ${c.status}`
              : (firstDifference(p.read(dst, len), mod.xorBytes(data, key)) ?? undefined),
        };
      },
    };
    const r = await runAcceleratorConformance(target);
    expect(formatConformanceResult(r)).not.toContain('FAIL');
    expect(r.pass).toBe(true);
    expect(r.checks.find((c) => c.name === 'appears in sysfs and /dev')?.message).toBe(
      'accel_demo-0: api accel_demo_v1, flags 1, 4 queues, algorithms xor',
    );
  });

  it('writes to plugins/NAME of the repository found from the working directory', async () => {
    const fake = join(tmp, 'repo');
    mkdirSync(join(fake, 'packages/kernel'), { recursive: true });
    writeFileSync(
      join(fake, 'package.json'),
      JSON.stringify({ name: 'svasim', workspaces: ['packages/*', 'plugins/*'] }),
    );
    writeFileSync(join(fake, 'tsconfig.base.json'), '{}');
    writeFileSync(join(fake, 'packages/kernel/package.json'), JSON.stringify({ name: '@svasim/kernel' }));
    mkdirSync(join(fake, 'deep/down'), { recursive: true });
    const r = await cli(['new-plugin', 'pin-x', '--kind', 'pin-strategy'], join(fake, 'deep/down'));
    expect(r.code).toBe(0);
    expect(r.out).toContain('Created plugins/pin-x (@svasim/pin-x, a pin-strategy plugin)');
    expect(r.out).toContain('add { "path": "plugins/pin-x" }');
    // No prettier in that repository: the files stay as generated, and the user is told.
    expect(r.err).toMatch(/^svasim new-plugin: not formatted: prettier is not installed/);
    const tsconfig = JSON.parse(readFileSync(join(fake, 'plugins/pin-x/tsconfig.json'), 'utf8'));
    expect(tsconfig.extends).toBe('../../tsconfig.base.json');
    expect(readFileSync(join(fake, 'plugins/pin-x/README.md'), 'utf8')).toContain(
      '[plugin-authoring.md](../../docs/plugin-authoring.md)',
    );
    // A name an existing workspace package has.
    const dup = await cli(['new-plugin', 'kernel', '--kind', 'accelerator'], fake);
    expect(dup).toMatchObject({
      code: 1,
      out: '',
      err: 'svasim new-plugin: @svasim/kernel already exists in the repository (packages/kernel)\n',
    });
    expect(readdirSync(join(fake, 'plugins'))).toEqual(['pin-x']);
  });

  it.each([
    ['Upper', "invalid plugin name: 'Upper' has upper-case letters (npm package names are lower case)"],
    ['my plugin', "invalid plugin name: 'my plugin' contains white space"],
    ['.hidden', "invalid plugin name: '.hidden' starts with '.' (npm refuses it)"],
    ['', 'invalid plugin name: a plugin name is required'],
    [
      '9lives',
      "invalid plugin name: '9lives' must start with a lower-case letter and hold only a-z, 0-9 and '-'",
    ],
    ['a/b', "invalid plugin name: 'a/b' must start with a lower-case letter and hold only a-z, 0-9 and '-'"],
    ['trailing-', "invalid plugin name: 'trailing-' has a trailing or doubled '-'"],
    ['x'.repeat(41), `invalid plugin name: '${'x'.repeat(41)}' is longer than 40 characters`],
  ])('refuses the name %j: a message on stderr, exit 1, nothing written', async (name, message) => {
    const before = tree(tmp);
    const r = await cli(['new-plugin', name, '--kind', 'accelerator', '--dir', join(tmp, 'bad')]);
    expect(r).toEqual({ code: 1, out: '', err: `svasim new-plugin: ${message}\n` });
    expect(tree(tmp)).toEqual(before);
  });

  it('refuses an unknown --kind, a missing one, a non-empty or file target', async () => {
    const before = tree(tmp);
    expect(await cli(['new-plugin', 'good', '--kind', 'gpu', '--dir', join(tmp, 'good')])).toEqual({
      code: 1,
      out: '',
      err: "svasim new-plugin: unknown --kind 'gpu' (one of: accelerator, pin-strategy)\n",
    });
    const missing = await cli(['new-plugin', 'good', '--dir', join(tmp, 'good')]);
    expect(missing.code).toBe(1);
    expect(missing.err).toContain("error: required option '--kind <kind>' not specified");
    expect(await cli(['new-plugin', 'good', '--kind', 'accelerator', '--dir', accelDir()])).toEqual({
      code: 1,
      out: '',
      err: `svasim new-plugin: ${accelDir()} exists and is not empty\n`,
    });
    const file = join(tmp, 'broken.ts');
    expect((await cli(['new-plugin', 'good', '--kind', 'accelerator', '--dir', file])).err).toBe(
      `svasim new-plugin: ${file} exists and is not a directory\n`,
    );
    expect(tree(tmp)).toEqual(before);
    // An empty directory is fine.
    mkdirSync(join(tmp, 'empty'));
    expect(
      (await cli(['new-plugin', 'good', '--kind', 'pin-strategy', '--dir', join(tmp, 'empty')])).code,
    ).toBe(0);
    expect(tree(join(tmp, 'empty'))).toHaveLength(5);
  });
});

describe('svasim', () => {
  it('demo runs the memory-model walk-through', async () => {
    const r = await cli(['demo']);
    expect(r.code).toBe(0);
    expect(r.out).toContain('invariants: all hold');
  });

  it('an unknown command or --help', async () => {
    const bad = await cli(['bogus']);
    expect(bad.code).toBe(1);
    expect(bad.err).toContain("error: unknown command 'bogus'");
    const help = await cli(['--help']);
    expect(help.code).toBe(0);
    expect(help.out).toContain('new-plugin [options] <name>');
  });
});
