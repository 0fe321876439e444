/** Progress lines on stderr, stamped with the time since the harness started. */

const started = performance.now();

/** Print one progress line. */
export function progress(message: string): void {
  process.stderr.write(`[bench ${((performance.now() - started) / 1000).toFixed(1).padStart(6)} s] ${message}\n`);
}
