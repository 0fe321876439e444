/**
 * SIGTERM/SIGINT for a stage reading Redis: the first one stops reading (what was read is finished and
 * stored), and the exit code becomes 0 (SIGTERM: a consumer stopped by its supervisor has ended
 * normally) or 130 (SIGINT); a second one exits at once.
 */
import type { StageLogger } from '../telemetry/stage-logger.js';

export function onStopSignals(logger: StageLogger, message: string, stop: () => void): { exitCode: number } {
  const state = { exitCode: 0 };
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    if (++signals > 1) process.exit(signal === 'SIGINT' ? 130 : 143);
    logger.warn({ signal }, message);
    state.exitCode = signal === 'SIGINT' ? 130 : 0;
    stop();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return state;
}
