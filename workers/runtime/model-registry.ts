/**
 * The models a partition's Python server must have: the worker's own record,
 * replayed onto every new server after a restart. It changes only when the
 * server confirmed a command, so a replay never repeats a failed one.
 */
import type { ModelSpec } from '../../src/engine/worker-protocol.js';

/** The confirmed models of one partition, in the order they were added. */
export class ModelRegistry {
  private readonly models = new Map<string, ModelSpec>();

  /** Model names in the order messages run through them. */
  names(): string[] {
    return [...this.models.keys()];
  }

  /** Record a model the server loaded (add) or reloaded (update, which keeps its position). */
  set(spec: ModelSpec): void {
    const previous = this.models.get(spec.name);
    this.models.set(spec.name, { ...spec, initData: spec.initData ?? previous?.initData });
  }

  /** Record the data file a model was initialised with, so a restart initialises it again. */
  setInitData(name: string, dataFile: string): void {
    const spec = this.models.get(name);
    if (spec) spec.initData = dataFile;
  }

  delete(name: string): void {
    this.models.delete(name);
  }

  /** Every model, for replaying onto a new server. */
  specs(): ModelSpec[] {
    return [...this.models.values()];
  }
}
