// The state of the storage pages' tables — filter text, sort column and direction, page — and the
// rows it shows, as in the VM list (ui/src/table/sort-filter.ts does the sorting and filtering).
import type { ThProps } from "@patternfly/react-table";
import { useState } from "react";
import { filterRows, pageRows, sortRows, type SortDirection, type SortValue } from "../table/sort-filter.ts";

export interface Column<T> { title: string; value(row: T): SortValue }

export const storageRowsPerPageDefault = 20;

export function useTableState<T>(all: readonly T[], columns: readonly Column<T>[], text: (row: T) => readonly string[]) {
  const [filter, setFilterText] = useState("");
  const [sort, setSort] = useState<{ index: number; direction: SortDirection }>({ index: 0, direction: "asc" });
  const [page, setPage] = useState(1);
  const [perPage, setPerPage] = useState(storageRowsPerPageDefault);
  const filtered = sortRows(filterRows(all, filter, text), columns[sort.index]!.value, sort.direction);
  const shown = pageRows(filtered, page, perPage);
  return {
    filter,
    setFilter: (v: string) => { setFilterText(v); setPage(1); },
    filtered,
    shown,
    perPage,
    setPage,
    setPerPage: (n: number) => { setPerPage(n); setPage(1); },
    sortBy: (index: number): ThProps["sort"] => ({
      sortBy: { index: sort.index, direction: sort.direction },
      onSort: (_e, i, direction) => setSort({ index: i, direction }),
      columnIndex: index,
    }),
  };
}
