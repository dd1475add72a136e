// Sorting, filtering and paging of table rows, kept apart from the components so the behaviour
// a user sees (what "sort by last contact" or "filter: n2" shows) is tested without a browser.

export type SortDirection = "asc" | "desc";
export type SortValue = string | number | boolean;

/** Rows sorted by `value` (stable: equal rows keep their order); strings compare naturally (n2 < n10). */
export function sortRows<T>(rows: readonly T[], value: (row: T) => SortValue, direction: SortDirection): T[] {
  const sign = direction === "asc" ? 1 : -1;
  const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });
  return rows
    .map((row, i) => ({ row, i, v: value(row) }))
    .sort((a, b) => {
      const c = typeof a.v === "string" && typeof b.v === "string" ? collator.compare(a.v, b.v) : Number(a.v) - Number(b.v);
      return c !== 0 ? sign * c : a.i - b.i;
    })
    .map((x) => x.row);
}

/** Rows where any of `text(row)` contains every word of `query` (case-insensitive). */
export function filterRows<T>(rows: readonly T[], query: string, text: (row: T) => readonly string[]): T[] {
  const words = query.toLowerCase().split(/\s+/).filter((w) => w !== "");
  if (words.length === 0) return [...rows];
  return rows.filter((row) => {
    const hay = text(row).join(" ").toLowerCase();
    return words.every((w) => hay.includes(w));
  });
}

/** One page (1-based) of rows; a page past the end gives the last page. */
export function pageRows<T>(rows: readonly T[], page: number, perPage: number): { rows: T[]; page: number } {
  const last = Math.max(1, Math.ceil(rows.length / perPage));
  const p = Math.min(Math.max(1, page), last);
  return { rows: rows.slice((p - 1) * perPage, p * perPage), page: p };
}
