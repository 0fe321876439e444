/**
 * Real numpy through the CLI and real servers: numpy results are written per the type table, and the
 * sample scoring network (py/models/scoring_network.py) gives the same scores in both styles.
 * The interpreter is PYSTAGE_NUMPY_PYTHON when set (.ci/run sets it when it had to install Debian's
 * python3-numpy for an interpreter other than the default python3), else python3. numpy missing fails.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { jsonLines, modelsDir, runCli, summaryOf } from './support/cli-runner.js';
import { seededRandom } from './support/seeded-random.js';

const python = process.env.PYSTAGE_NUMPY_PYTHON ?? 'python3';
const fixtures = fileURLToPath(new URL('../../test/fixtures/models/', import.meta.url));
const scoringFile = join(modelsDir, 'scoring_network.py');

describe('numpy models', () => {
  before(() => {
    try {
      execFileSync(python, ['-c', 'import numpy'], { stdio: 'pipe' });
    } catch (err) {
      assert.fail(`${python} cannot import numpy, which these tests need: install it (Debian: apt-get install python3-numpy, as .ci/run does) or set PYSTAGE_NUMPY_PYTHON. ${(err as Error).message}`);
    }
  });

  test('numpy scalars and arrays come out as plain JSON', async () => {
    const input = `${JSON.stringify({ key: 'a', x: [1, 2, 3] })}\n${JSON.stringify({ key: 'b', x: [0.5] })}\n`;
    const result = await runCli(['run', '--model', `n=${join(fixtures, 'numpy_outputs.py')}`, '--python', python, '--partitions', '1'], input);
    assert.equal(result.code, 0, result.stderr);
    const lines = result.stdout.trim().split('\n');
    assert.deepEqual(lines, [
      '{"offset":0,"key":"a","partition":0,"model":"n","output":{"score":8.0,"label":1,"vec":[2.0,4.0,6.0],"f32":1.5,"flag":true}}',
      '{"offset":1,"key":"b","partition":0,"model":"n","output":{"score":0.0,"label":1,"vec":[1.0],"f32":1.5,"flag":true}}',
    ]);
  });

  test('the scoring network scores alike one message at a time and vectorised; a bad message fails alone', async () => {
    const random = seededRandom(11);
    const messages: object[] = Array.from({ length: 3000 }, (_, i) => ({
      key: `k${i % 50}`, x: Array.from({ length: 16 }, () => Math.round((random() * 2 - 1) * 1e4) / 1e4),
    }));
    messages[1234] = { key: 'k34', x: [1, 2] };
    const input = messages.map((m) => JSON.stringify(m)).join('\n') + '\n';
    const scores = new Map<string, Map<number, number>>();
    for (const [style, cls] of [['one', 'ScoringNetwork'], ['vectorised', 'BatchScoringNetwork']] as const) {
      const result = await runCli([
        'run', '--model', `score=${scoringFile}:${cls}`, '--init', `score=${join(modelsDir, 'scoring_network.weights.json')}`, '--python', python,
      ], input);
      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual(summaryOf(result.stderr), { ...summaryOf(result.stderr), in: 3000, out: 2999, errors: 1 });
      const errorLine = jsonLines(result.stderr).find((l) => l.offset !== undefined)!;
      assert.equal(errorLine.offset, 1234);
      assert.match(errorLine.error.message, /must be a list of 16 numbers/);
      scores.set(style, new Map(jsonLines(result.stdout).map((l) => [l.offset as number, l.output.score as number])));
    }
    const one = scores.get('one')!;
    const vectorised = scores.get('vectorised')!;
    assert.equal(one.size, 2999);
    assert.deepEqual([...vectorised.keys()].sort((a, b) => a - b), [...one.keys()].sort((a, b) => a - b));
    for (const [offset, score] of one) {
      assert.ok(score > 0 && score < 1, `score ${score} of ${offset} is a probability`);
      assert.ok(Math.abs(score - vectorised.get(offset)!) < 1e-12, `offset ${offset}: ${score} vs ${vectorised.get(offset)}`);
    }
  });
});
