/**
 * The offset a cut-short CLI run resumes from: the lowest offset whose outcome was not written yet.
 * Partitions finish out of global order, so written offsets are marked in a window and the point
 * advances over the contiguous prefix; every offset below it was written. Marking costs a byte
 * store, and the window slides down only once its unused front outgrows the rest.
 */
export class ResumePoint {
  /** window[head + k] is 1 when offset base + k was written. */
  private window = new Uint8Array(8192);
  private head = 0;
  private base: number;

  constructor(first: number) {
    this.base = first;
  }

  /** The lowest offset not written; every one before it was. */
  get offset(): number {
    return this.base;
  }

  /** Mark one offset as written. */
  mark(offset: number): void {
    const k = offset - this.base;
    if (k < 0) return;
    let i = this.head + k;
    if (i >= this.window.length) {
      this.compact(k + 1);
      i = k;
    }
    this.window[i] = 1;
    if (k !== 0) return;
    i = this.head;
    while (i < this.window.length && this.window[i] === 1) i++;
    this.base += i - this.head;
    this.head = i;
  }

  /** Slide the marks to the front, growing the window if `need` slots do not fit. */
  private compact(need: number): void {
    const used = this.window.subarray(this.head);
    const size = need > this.window.length / 2 ? Math.max(this.window.length * 2, need * 2) : this.window.length;
    const next = new Uint8Array(size);
    next.set(used);
    this.window = next;
    this.head = 0;
  }
}
