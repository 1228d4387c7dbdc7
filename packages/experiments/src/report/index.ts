/**
 * Reports of an experiment: the terminal comparison table, the `--json` document, the HTML
 * report with its SVG charts, and the Chrome/Perfetto trace.
 */
export * from './format';
export * from './rows';
export * from './table';
export * from './json';
export * from './svg';
export * from './html';
export * from './trace';
