/**
 * Summarise a V8 .cpuprofile (from `node --cpu-prof`): the functions with the most self time.
 * `node dist/bench/tools/cpuprofile-top.js FILE [N]`
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Self time per function (name, file:line), largest first, in microseconds. */
export function selfTimes(profile: CpuProfile): { total: number; rows: [string, number][] } {
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const byFunction = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0;
    total += dt;
    const frame = nodes.get(id)!.callFrame;
    const where = frame.url === '' ? '' : ` ${frame.url.split('/').slice(-2).join('/')}:${frame.lineNumber + 1}`;
    const key = `${frame.functionName || '(anonymous)'}${where}`;
    byFunction.set(key, (byFunction.get(key) ?? 0) + dt);
  });
  return { total, rows: [...byFunction].sort((a, b) => b[1] - a[1]) };
}

if (process.argv[1]?.endsWith('cpuprofile-top.js')) {
  const [file, count = '15'] = process.argv.slice(2);
  if (!file) {
    process.stderr.write('usage: node dist/bench/tools/cpuprofile-top.js FILE [N]\n');
    process.exit(2);
  }
  const { total, rows } = selfTimes(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile);
  // Busy time leaves out "(idle)", so the percentages say what the thread spent its CPU on.
  const busy = total - (rows.find(([k]) => k === '(idle)')?.[1] ?? 0);
  process.stdout.write(`${file}: ${(total / 1e6).toFixed(2)} s sampled, ${(busy / 1e6).toFixed(2)} s busy\n`);
  for (const [name, us] of rows.filter(([k]) => k !== '(idle)').slice(0, Number(count))) {
    process.stdout.write(`${(us / busy * 100).toFixed(1).padStart(5)}% of busy  ${(us / 1000).toFixed(0).padStart(6)} ms  ${name}\n`);
  }
}
