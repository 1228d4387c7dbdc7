/**
 * A progress bar for experiments on a terminal (cli-progress on stderr), and nothing at all when
 * stderr is not a TTY, so CI logs, pipes and Jest output stay clean. Always stopped, so its
 * timer never keeps the process alive.
 */
import { Presets, SingleBar } from 'cli-progress';

/** ProgressSink - what runExperiment reports progress to. */
export interface ProgressSink {
  start(total: number): void;
  /** One more run finished; @label names it ('mlock seed 2'). */
  tick(label: string): void;
  /** Stop (idempotent); called in a finally block. */
  stop(): void;
}

/** A sink that shows nothing. */
export const SILENT_PROGRESS: ProgressSink = Object.freeze({ start() {}, tick() {}, stop() {} });

/**
 * terminalProgress - a cli-progress bar on @stream (default process.stderr) when it is a TTY,
 * else SILENT_PROGRESS.
 */
export function terminalProgress(stream: NodeJS.WriteStream = process.stderr): ProgressSink {
  if (!stream.isTTY) return SILENT_PROGRESS;
  const bar = new SingleBar(
    {
      stream,
      format: 'svasim {bar} {value}/{total} runs | {label}',
      hideCursor: true,
      clearOnComplete: true,
    },
    Presets.shades_classic,
  );
  let started = false;
  return {
    start(total) {
      bar.start(total, 0, { label: '' });
      started = true;
    },
    tick(label) {
      if (started) bar.increment(1, { label });
    },
    stop() {
      if (started) bar.stop();
      started = false;
    },
  };
}
