/**
 * Tests of PipelineQueue (src/engine/pipeline-queue.ts): scripted sequences with counts written by hand,
 * the assertions that guard the conversation's order, compaction after many answers, and a
 * model-based property test against a plain array model.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { PipelineQueue } from '../src/engine/pipeline-queue.js';

/** running / pending / size at once. */
const counts = <T>(q: PipelineQueue<T>): [number, number, number] => [q.running, q.pending, q.size];

/** Every unanswered item, head first, through at(). */
function contents<T>(q: PipelineQueue<T>): (T | undefined)[] {
  const all: (T | undefined)[] = [];
  for (let i = 0; i < q.size; i++) all.push(q.at(i));
  return all;
}

test('a new queue is empty', () => {
  const q = new PipelineQueue<string>();
  assert.deepEqual(counts(q), [0, 0, 0]);
  assert.equal(q.first(), undefined);
  assert.equal(q.nextPending(), undefined);
  assert.equal(q.at(0), undefined);
  assert.deepEqual(q.drain(), []);
  assert.equal(q.unsendAll(), 0);
});

test('a scripted sequence: counts, first, nextPending and at', () => {
  const q = new PipelineQueue<string>();
  q.push('a');
  q.push('b');
  q.push('c');
  assert.deepEqual(counts(q), [0, 3, 3]);
  assert.equal(q.first(), 'a');
  assert.equal(q.nextPending(), 'a');

  assert.equal(q.markSent(), 'a');
  assert.deepEqual(counts(q), [1, 2, 3]);
  assert.equal(q.first(), 'a');
  assert.equal(q.nextPending(), 'b');

  assert.equal(q.markSent(), 'b');
  assert.deepEqual(counts(q), [2, 1, 3]);
  assert.equal(q.nextPending(), 'c');

  assert.equal(q.answer('a'), 'a');
  assert.deepEqual(counts(q), [1, 1, 2]);
  assert.equal(q.first(), 'b');
  assert.deepEqual(contents(q), ['b', 'c']);

  q.push('d');
  assert.deepEqual(counts(q), [1, 2, 3]);
  assert.equal(q.markSent(), 'c');
  assert.equal(q.markSent(), 'd');
  assert.deepEqual(counts(q), [3, 0, 3]);
  assert.equal(q.nextPending(), undefined);

  assert.equal(q.answer(), 'b'); // without naming the item
  assert.equal(q.answer('c'), 'c');
  assert.deepEqual(counts(q), [1, 0, 1]);
  assert.equal(q.at(0), 'd');
  assert.equal(q.at(1), undefined);

  assert.equal(q.answer('d'), 'd');
  assert.deepEqual(counts(q), [0, 0, 0]);
  assert.equal(q.first(), undefined);
  assert.equal(q.nextPending(), undefined);
});

test('answering anything but the head throws, and changes nothing', () => {
  const q = new PipelineQueue<{ id: number }>();
  const items = [{ id: 1 }, { id: 2 }, { id: 3 }];
  for (const it of items) q.push(it);
  q.markSent();
  q.markSent();
  assert.throws(() => q.answer(items[1]), assert.AssertionError); // running, but not the head
  assert.throws(() => q.answer(items[2]), assert.AssertionError); // pending
  assert.throws(() => q.answer({ id: 1 }), assert.AssertionError); // equal, but not the same item
  assert.deepEqual(counts(q), [2, 1, 3]);
  assert.equal(q.first(), items[0]);
  assert.equal(q.answer(items[0]), items[0]);
  assert.equal(q.answer(items[1]), items[1]);
});

test('answer with nothing running throws', () => {
  const q = new PipelineQueue<number>();
  assert.throws(() => q.answer(), assert.AssertionError);
  q.push(1);
  assert.throws(() => q.answer(), assert.AssertionError); // pending only
  assert.throws(() => q.answer(1), assert.AssertionError);
  assert.deepEqual(counts(q), [0, 1, 1]);
  q.markSent();
  q.answer(1);
  assert.throws(() => q.answer(), assert.AssertionError); // all answered
  assert.deepEqual(counts(q), [0, 0, 0]);
});

test('markSent with nothing pending throws', () => {
  const q = new PipelineQueue<number>();
  assert.throws(() => q.markSent(), assert.AssertionError);
  q.push(1);
  q.markSent();
  assert.throws(() => q.markSent(), assert.AssertionError); // running only
  assert.deepEqual(counts(q), [1, 0, 1]);
});

test('unsendAll moves everything running back to pending, in order, and returns the count', () => {
  const q = new PipelineQueue<number>();
  for (let i = 0; i < 5; i++) q.push(i);
  q.markSent();
  q.markSent();
  q.markSent();
  q.answer(0);
  assert.deepEqual(counts(q), [2, 2, 4]);
  assert.equal(q.unsendAll(), 2);
  assert.deepEqual(counts(q), [0, 4, 4]);
  assert.equal(q.first(), 1);
  assert.equal(q.nextPending(), 1);
  assert.deepEqual(contents(q), [1, 2, 3, 4]);
  assert.equal(q.unsendAll(), 0);
  assert.throws(() => q.answer(), assert.AssertionError);
  // They are sent again in the same order.
  assert.deepEqual([q.markSent(), q.markSent(), q.markSent(), q.markSent()], [1, 2, 3, 4]);
  assert.deepEqual(counts(q), [4, 0, 4]);
});

test('dropFirst of a running head, and of a pending head', () => {
  const q = new PipelineQueue<string>();
  q.push('a');
  q.push('b');
  q.push('c');
  q.markSent();
  q.markSent();
  assert.equal(q.dropFirst(), 'a'); // running head
  assert.deepEqual(counts(q), [1, 1, 2]);
  assert.equal(q.first(), 'b');
  assert.equal(q.nextPending(), 'c');
  assert.equal(q.answer('b'), 'b');
  assert.deepEqual(counts(q), [0, 1, 1]);

  assert.equal(q.dropFirst(), 'c'); // pending head (nothing runs)
  assert.deepEqual(counts(q), [0, 0, 0]);
  assert.equal(q.nextPending(), undefined);
  assert.throws(() => q.dropFirst(), assert.AssertionError);

  q.push('d');
  q.push('e');
  assert.equal(q.dropFirst(), 'd');
  assert.deepEqual(counts(q), [0, 1, 1]);
  assert.equal(q.markSent(), 'e');
  assert.equal(q.dropFirst(), 'e');
  assert.deepEqual(counts(q), [0, 0, 0]);
});

test('removePending removes exactly the next pending item', () => {
  const q = new PipelineQueue<string>();
  for (const s of ['a', 'b', 'c', 'd']) q.push(s);
  q.markSent();
  assert.equal(q.removePending(), 'b');
  assert.deepEqual(counts(q), [1, 2, 3]);
  assert.deepEqual(contents(q), ['a', 'c', 'd']);
  assert.equal(q.first(), 'a');
  assert.equal(q.nextPending(), 'c');
  assert.equal(q.markSent(), 'c');
  assert.equal(q.removePending(), 'd');
  assert.deepEqual(counts(q), [2, 0, 2]);
  assert.throws(() => q.removePending(), assert.AssertionError);
  assert.deepEqual(contents(q), ['a', 'c']);
  assert.equal(q.answer('a'), 'a');
  assert.equal(q.answer('c'), 'c');
});

test('unshift puts items before everything pending, and only while nothing runs', () => {
  const q = new PipelineQueue<string>();
  q.push('x');
  q.push('y');
  q.unshift('a', 'b');
  assert.deepEqual(counts(q), [0, 4, 4]);
  assert.deepEqual(contents(q), ['a', 'b', 'x', 'y']);
  assert.equal(q.nextPending(), 'a');

  q.markSent();
  assert.throws(() => q.unshift('z'), assert.AssertionError);
  assert.deepEqual(contents(q), ['a', 'b', 'x', 'y']);
  q.answer('a');
  // Nothing runs again, though items were answered before: the new ones go at the head.
  q.unshift('c');
  assert.deepEqual(contents(q), ['c', 'b', 'x', 'y']);
  assert.deepEqual(counts(q), [0, 4, 4]);
  assert.equal(q.first(), 'c');
  assert.equal(q.markSent(), 'c');
  assert.equal(q.answer('c'), 'c');

  // After unsendAll, unshift is allowed again.
  q.markSent();
  assert.equal(q.unsendAll(), 1);
  q.unshift();
  q.unshift('d');
  assert.deepEqual(contents(q), ['d', 'b', 'x', 'y']);
});

test('drain returns every unanswered item and empties the queue', () => {
  const q = new PipelineQueue<number>();
  for (let i = 0; i < 6; i++) q.push(i);
  q.markSent();
  q.markSent();
  q.markSent();
  q.answer(0);
  assert.deepEqual(q.drain(), [1, 2, 3, 4, 5]);
  assert.deepEqual(counts(q), [0, 0, 0]);
  assert.equal(q.first(), undefined);
  q.push(9);
  assert.deepEqual(counts(q), [0, 1, 1]);
  assert.equal(q.markSent(), 9);
  assert.equal(q.answer(9), 9);
});

test('compaction after more than 1024 answers keeps order and counts', () => {
  const N = 5000;
  const q = new PipelineQueue<number>();
  for (let i = 0; i < N; i++) q.push(i);
  const answered: number[] = [];
  let sent = 0;
  // Keep up to 7 in flight; answer one at a time.
  while (answered.length < N) {
    while (q.running < 7 && q.pending > 0) {
      assert.equal(q.markSent(), sent);
      sent++;
    }
    const head = q.first()!;
    assert.equal(head, answered.length);
    answered.push(q.answer(head));
    assert.deepEqual(counts(q), [sent - answered.length, N - sent, N - answered.length]);
    assert.equal(q.at(0), answered.length < N ? answered.length : undefined);
    assert.equal(q.nextPending(), sent < N ? sent : undefined);
  }
  assert.deepEqual(answered, Array.from({ length: N }, (_, i) => i));
  assert.deepEqual(counts(q), [0, 0, 0]);
});

test('compaction with items arriving while answering, and with dropFirst, removePending, unsendAll and unshift', () => {
  const q = new PipelineQueue<number>();
  const model: number[] = []; // unanswered, head first
  let sent = 0; // how many of model are running
  let next = 0;
  const out: number[] = [];
  for (let round = 0; round < 6000; round++) {
    q.push(next);
    model.push(next++);
    if (round % 2 === 0) {
      q.push(next);
      model.push(next++);
    }
    if (q.pending > 0) {
      assert.equal(q.markSent(), model[sent]);
      sent++;
    }
    if (round % 97 === 0 && q.pending > 0) {
      assert.equal(q.removePending(), model.splice(sent, 1)[0]);
    }
    if (round % 131 === 0) {
      assert.equal(q.unsendAll(), sent);
      sent = 0;
      q.unshift(-round, -round - 0.5);
      model.unshift(-round, -round - 0.5);
    }
    if (round % 53 === 0) {
      const was = model.shift()!;
      if (sent > 0) sent--;
      assert.equal(q.dropFirst(), was);
    }
    if (sent > 0) {
      const head = model.shift()!;
      sent--;
      out.push(q.answer(head));
    }
    if (q.running > 0 && round % 3 === 0) {
      const head = model.shift()!;
      sent--;
      out.push(q.answer(head));
    }
    assert.deepEqual(counts(q), [sent, model.length - sent, model.length]);
    assert.equal(q.first(), model[0]);
    assert.equal(q.nextPending(), model[sent]);
    if (round % 500 === 0) assert.deepEqual(contents(q), model);
  }
  assert.ok(out.length > 3000);
  assert.deepEqual(q.drain(), model);
});

// ---------------------------------------------------------------------------------------------
// Model-based: random operations against a plain array model. Items are unique numbers so that
// identity is meaningful for answer(item).

type Op =
  | { op: 'push' }
  | { op: 'markSent' }
  | { op: 'answer'; named: boolean }
  | { op: 'answerWrong'; pick: number }
  | { op: 'dropFirst' }
  | { op: 'removePending' }
  | { op: 'unsendAll' }
  | { op: 'unshift'; n: number }
  | { op: 'drain' };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.constant<Op>({ op: 'push' }) },
  { weight: 6, arbitrary: fc.constant<Op>({ op: 'markSent' }) },
  { weight: 5, arbitrary: fc.boolean().map<Op>((named) => ({ op: 'answer', named })) },
  { weight: 1, arbitrary: fc.nat().map<Op>((pick) => ({ op: 'answerWrong', pick })) },
  { weight: 1, arbitrary: fc.constant<Op>({ op: 'dropFirst' }) },
  { weight: 1, arbitrary: fc.constant<Op>({ op: 'removePending' }) },
  { weight: 1, arbitrary: fc.constant<Op>({ op: 'unsendAll' }) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 3 }).map<Op>((n) => ({ op: 'unshift', n })) },
  { weight: 1, arbitrary: fc.constant<Op>({ op: 'drain' }) },
);

/**
 * Apply `ops` to a queue and to an array model, comparing counts and both ends after every step and the
 * whole contents every `contentsEvery` steps and at the end (all of it at every step makes long sequences quadratic).
 */
function runModel(ops: readonly Op[], contentsEvery = 1): void {
  const q = new PipelineQueue<number>();
  let items: number[] = []; // unanswered, head first
  let running = 0; // items[0, running) were sent
  let fresh = 0;
  const check = (step: number, op: Op): void => {
    const where = `step ${step}: ${JSON.stringify(op)}`;
    assert.deepEqual(counts(q), [running, items.length - running, items.length], where);
    assert.equal(q.first(), items[0], where);
    assert.equal(q.nextPending(), items[running], where);
    if (step % contentsEvery === 0) assert.deepEqual(contents(q), items, where);
    assert.equal(q.at(items.length), undefined, where);
  };
  ops.forEach((op, step) => {
    switch (op.op) {
      case 'push':
        q.push(fresh);
        items.push(fresh++);
        break;
      case 'markSent':
        if (running < items.length) assert.equal(q.markSent(), items[running++]);
        else assert.throws(() => q.markSent(), assert.AssertionError);
        break;
      case 'answer':
        if (running > 0) {
          assert.equal(q.answer(op.named ? items[0] : undefined), items[0]);
          items.shift();
          running--;
        } else {
          assert.throws(() => q.answer(op.named ? items[0] : undefined), assert.AssertionError);
        }
        break;
      case 'answerWrong': {
        // Any item other than the head: another unanswered one, or one never queued.
        const others = [...items.slice(1), -1, fresh + 1000];
        assert.throws(() => q.answer(others[op.pick % others.length]), assert.AssertionError);
        break;
      }
      case 'dropFirst':
        if (items.length > 0) {
          assert.equal(q.dropFirst(), items.shift());
          if (running > 0) running--;
        } else {
          assert.throws(() => q.dropFirst(), assert.AssertionError);
        }
        break;
      case 'removePending':
        if (running < items.length) assert.equal(q.removePending(), items.splice(running, 1)[0]);
        else assert.throws(() => q.removePending(), assert.AssertionError);
        break;
      case 'unsendAll':
        assert.equal(q.unsendAll(), running);
        running = 0;
        break;
      case 'unshift': {
        const added = Array.from({ length: op.n }, () => fresh++);
        if (running === 0) {
          q.unshift(...added);
          items.unshift(...added);
        } else {
          assert.throws(() => q.unshift(...added), assert.AssertionError);
        }
        break;
      }
      case 'drain':
        assert.deepEqual(q.drain(), items);
        items = [];
        running = 0;
        break;
    }
    check(step, op);
  });
  assert.deepEqual(contents(q), items);
  assert.deepEqual(q.drain(), items);
}

test('model-based: random operation sequences agree with an array model (property)', { timeout: 60_000 }, () => {
  fc.assert(
    fc.property(fc.array(opArb, { maxLength: 200 }), (ops) => runModel(ops)),
    { numRuns: 500 },
  );
});

test('model-based: long sequences that answer past the compaction threshold (property)', { timeout: 120_000 }, () => {
  // Mostly push / send / answer so that more than 1024 answers accumulate between drains.
  const busyOp: fc.Arbitrary<Op> = fc.oneof(
    { weight: 30, arbitrary: fc.constant<Op>({ op: 'push' }) },
    { weight: 30, arbitrary: fc.constant<Op>({ op: 'markSent' }) },
    { weight: 30, arbitrary: fc.boolean().map<Op>((named) => ({ op: 'answer', named })) },
    { weight: 20, arbitrary: opArb.filter((o) => o.op !== 'drain') },
  );
  let answersSeen = 0;
  fc.assert(
    fc.property(fc.array(busyOp, { minLength: 4000, maxLength: 6000 }), (ops) => {
      answersSeen = Math.max(answersSeen, ops.filter((o) => o.op === 'answer').length);
      runModel(ops, 256);
    }),
    { numRuns: 15 },
  );
  assert.ok(answersSeen > 1024);
});
