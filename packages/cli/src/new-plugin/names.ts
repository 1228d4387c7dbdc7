/**
 * The names a new plugin is known by, all derived from the one NAME the user types: the npm
 * package (@svasim/NAME), the directory, the plugin's name for createKernel, the TypeScript
 * identifiers of its exports and, for an accelerator, the uacce interface name.
 */

/** The kinds `svasim new-plugin --kind` generates. */
export const NEW_PLUGIN_KINDS = ['accelerator', 'pin-strategy'] as const;
export type NewPluginKind = (typeof NEW_PLUGIN_KINDS)[number];

/**
 * Longest NAME: the uacce interface name derived from it must stay well under the kernel's 63
 * characters with its "-<id>" suffix, and the identifiers readable.
 */
export const MAX_PLUGIN_NAME = 40;

/**
 * validatePluginName - why @name cannot be a plugin's NAME, or null when it can.
 *
 * The rule is the intersection of what each use accepts: npm package names (lower case,
 * URL-safe, not starting with '.' or '_'), definePlugin's names, a directory name, and the
 * start of TypeScript identifiers: a lower-case letter, then lower-case letters, digits and
 * single hyphens, not ending with a hyphen.
 */
export function validatePluginName(name: string): string | null {
  if (name === '') return 'a plugin name is required';
  if (/\s/.test(name)) return `'${name}' contains white space`;
  if (/[A-Z]/.test(name)) return `'${name}' has upper-case letters (npm package names are lower case)`;
  if (name.startsWith('.') || name.startsWith('_'))
    return `'${name}' starts with '${name[0]}' (npm refuses it)`;
  if (name.length > MAX_PLUGIN_NAME) return `'${name}' is longer than ${MAX_PLUGIN_NAME} characters`;
  if (!/^[a-z][a-z0-9-]*$/.test(name))
    return `'${name}' must start with a lower-case letter and hold only a-z, 0-9 and '-'`;
  if (name.endsWith('-') || name.includes('--')) return `'${name}' has a trailing or doubled '-'`;
  return null;
}

/** PluginNames - everything generated code calls the plugin. */
export interface PluginNames {
  /** NAME as typed: the directory and the plugin's name (kernel.plugin(NAME)). */
  name: string;
  /** '@svasim/NAME'. */
  pkg: string;
  /** camelCase of NAME ('accel-foo' -> 'accelFoo'). */
  camel: string;
  /** PascalCase of NAME ('AccelFoo'). */
  pascal: string;
  /** SCREAMING_SNAKE_CASE of NAME ('ACCEL_FOO'). */
  upper: string;
  /** The uacce interface name ('accel_foo': the device is /dev/accel_foo-<id>). */
  uacce: string;
  /** A pin strategy's own name: NAME without a leading 'pin-' ('pin-foo' -> 'foo'). */
  strategy: string;
}

/** pluginNames - derive every name from a valid @name (see validatePluginName). */
export function pluginNames(name: string): PluginNames {
  const parts = name.split('-');
  const cap = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);
  const pascal = parts.map(cap).join('');
  return {
    name,
    pkg: `@svasim/${name}`,
    camel: pascal.charAt(0).toLowerCase() + pascal.slice(1),
    pascal,
    upper: parts.join('_').toUpperCase(),
    uacce: parts.join('_'),
    strategy: name.startsWith('pin-') && name.length > 4 ? name.slice(4) : name,
  };
}
