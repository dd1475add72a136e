// What a user sees when sorting, filtering and paging a table.
import { describe, expect, it } from "vitest";
import { filterRows, pageRows, sortRows } from "./sort-filter.ts";

const nodes = [
  { name: "n10", contact: 5 },
  { name: "n2", contact: -1 },
  { name: "n1", contact: 5 },
];

describe("table rows", () => {
  it("sorts names naturally, both ways", () => {
    expect(sortRows(nodes, (n) => n.name, "asc").map((n) => n.name)).toEqual(["n1", "n2", "n10"]);
    expect(sortRows(nodes, (n) => n.name, "desc").map((n) => n.name)).toEqual(["n10", "n2", "n1"]);
  });

  it("sorts numbers numerically and keeps equal rows in order", () => {
    expect(sortRows(nodes, (n) => n.contact, "asc").map((n) => n.name)).toEqual(["n2", "n10", "n1"]);
  });

  it("filters on every word of the query, ignoring case", () => {
    const rows = [{ a: "n1 Leader healthy" }, { a: "n2 follower DOWN" }];
    expect(filterRows(rows, "down", (r) => [r.a])).toEqual([rows[1]]);
    expect(filterRows(rows, "n1 leader", (r) => [r.a])).toEqual([rows[0]]);
    expect(filterRows(rows, "n1 down", (r) => [r.a])).toEqual([]);
    expect(filterRows(rows, "  ", (r) => [r.a])).toEqual(rows);
  });

  it("pages, clamping a page past the end to the last one", () => {
    const rows = Array.from({ length: 25 }, (_, i) => i);
    expect(pageRows(rows, 1, 10).rows).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(pageRows(rows, 9, 10)).toEqual({ rows: [20, 21, 22, 23, 24], page: 3 });
    expect(pageRows([], 1, 10)).toEqual({ rows: [], page: 1 });
  });
});
