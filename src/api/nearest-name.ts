/**
 * "Did you mean": the valid name nearest to a mistyped one, for option keys, model keys and CLI flags.
 * Nearness is the edit distance (insertions, deletions, substitutions, and swaps of neighbours, the
 * commonest typo); a name further than a third of its length from every candidate gets no suggestion,
 * since a far-fetched guess misleads more than none.
 */

/** The candidate nearest to `word`, or null when none is near enough to be what was meant. */
export function nearestName(word: string, candidates: Iterable<string>): string | null {
  let best: string | null = null;
  let bestDistance = Math.max(2, Math.ceil(word.length / 3)) + 1;
  for (const candidate of candidates) {
    const d = editDistance(word.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

/** `; did you mean "x"?` for the nearest candidate, or nothing. */
export function didYouMean(word: string, candidates: Iterable<string>, quote = (name: string) => `"${name}"`): string {
  const near = nearestName(word, candidates);
  return near === null ? '' : `; did you mean ${quote(near)}?`;
}

/** Optimal string alignment distance: Levenshtein plus the transposition of two adjacent characters. */
function editDistance(a: string, b: string): number {
  const rows: number[][] = [];
  for (let i = 0; i <= a.length; i++) {
    rows.push([i]);
    for (let j = 1; j <= b.length; j++) {
      if (i === 0) {
        rows[0]!.push(j);
        continue;
      }
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(rows[i - 1]![j]! + 1, rows[i]![j - 1]! + 1, rows[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, rows[i - 2]![j - 2]! + 1);
      rows[i]!.push(d);
    }
  }
  return rows[a.length]![b.length]!;
}
