/**
 * Polls a process tree while it runs, keeping each process's peak RSS and latest CPU time.
 * Peaks come from VmHWM, which the kernel keeps, so a sample interval only bounds how late
 * a process's final value is seen, not how high a short spike may go between samples.
 */
import { descendantsOf, peakRssKb, readStat } from './proc-stats.js';

/** Peak RSS and sampled CPU, split into the Node process(es) and the Python ones. */
export interface TreePeaks {
  /** Sum over node processes of each one's peak RSS, in MB. */
  nodeMb: number;
  /** Sum over python processes of each one's peak RSS, in MB (servers live at the same time). */
  pythonMb: number;
  /** CPU seconds of the python processes at their last sample (a lower bound: the last ~interval is missed). */
  pythonCpuSeconds: number;
  /** How many distinct processes were seen. */
  processes: number;
}

interface Seen {
  python: boolean;
  peakKb: number;
  cpuSeconds: number;
}

/** Samples the tree rooted at one pid until stopped. */
export class TreeSampler {
  private readonly seen = new Map<number, Seen>();
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly root: number, intervalMs = 100) {
    this.sample();
    this.timer = setInterval(() => this.sample(), intervalMs);
  }

  /** Take a last sample (if the tree is still there) and return the peaks. */
  stop(): TreePeaks {
    clearInterval(this.timer);
    this.sample();
    let nodeKb = 0;
    let pythonKb = 0;
    let pythonCpuSeconds = 0;
    for (const s of this.seen.values()) {
      if (s.python) {
        pythonKb += s.peakKb;
        pythonCpuSeconds += s.cpuSeconds;
      } else {
        nodeKb += s.peakKb;
      }
    }
    return { nodeMb: nodeKb / 1024, pythonMb: pythonKb / 1024, pythonCpuSeconds, processes: this.seen.size };
  }

  private sample(): void {
    const root = readStat(this.root);
    if (root === null) return;
    for (const stat of [root, ...descendantsOf(this.root)]) {
      const peakKb = peakRssKb(stat.pid);
      if (peakKb === null) continue;
      const python = stat.comm.startsWith('python');
      // A child sampled between fork and exec still looks like its parent: its exec starts a new peak.
      const prev = this.seen.get(stat.pid)?.python === python ? this.seen.get(stat.pid) : undefined;
      this.seen.set(stat.pid, { python, peakKb: Math.max(prev?.peakKb ?? 0, peakKb), cpuSeconds: stat.cpuSeconds });
    }
  }
}
